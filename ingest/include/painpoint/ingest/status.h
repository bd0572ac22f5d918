#pragma once

// Error values of the ingest module. Kafka failures are expected operating conditions (a broker
// restarts, a topic is missing), so they travel as values the caller must look at, not exceptions.

#include <string>
#include <string_view>
#include <utility>

#include "painpoint/base/result.h"

namespace painpoint::ingest {

enum class KafkaErrc {
  kOk = 0,
  kInvalidConfig,    // a property was rejected by librdkafka, or a config field is out of range
  kInvalidArgument,  // bad topic/partition/offset passed by the caller
  kQueueFull,        // local producer queue stayed full for the whole backpressure timeout
  kTimedOut,         // the operation did not complete within its timeout
  kTransport,        // no broker reachable / connection failures
  kUnknownTopic,     // topic or partition does not exist on the cluster
  kMessageTooLarge,
  kOffsetOutOfRange,  // the requested offset is no longer (or not yet) on the broker
  kFatal,             // the client instance is unusable (e.g. idempotence violated); recreate it
  kState,             // call not valid in the current state (closed, not subscribed, ...)
  kUnsupported,       // the broker does not implement the request (the embedded broker)
  kOther,
};

// Stable lowercase name, e.g. "timed_out"; meant for logs and metric labels.
std::string_view to_string(KafkaErrc code);

// Outcome of an operation. `kafka_error` keeps librdkafka's rd_kafka_resp_err_t value (0 if the
// failure did not come from librdkafka) so logs can name the precise cause.
struct [[nodiscard]] Status {
  KafkaErrc code = KafkaErrc::kOk;
  std::string message;
  int kafka_error = 0;

  static Status Ok() { return {}; }
  static Status Error(KafkaErrc c, std::string msg, int native = 0) {
    return Status{c, std::move(msg), native};
  }
  bool ok() const { return code == KafkaErrc::kOk; }
  // What a Result built from an OK status holds instead (base::Result).
  static Status result_without_value() {
    return Error(KafkaErrc::kOther, "Result built from an OK status");
  }
  // "timed_out: flush: 3 messages still in flight" — for logs.
  std::string to_string() const;
};

// Either a value or a failed Status (base/result.h).
template <class T>
using Result = base::Result<T, Status>;

}  // namespace painpoint::ingest

#pragma once

// Error values of the ingest module. Kafka failures are expected operating conditions (a broker
// restarts, a topic is missing), so they travel as values the caller must look at, not exceptions.

#include <string>
#include <string_view>
#include <utility>

#include "painpoint/base/result.h"
#include "painpoint/base/status.h"

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

// The code base::Result uses when it is built from an OK status (a programming error).
constexpr KafkaErrc result_without_value_code(KafkaErrc) { return KafkaErrc::kOther; }

// Outcome of an operation; native_error() keeps librdkafka's rd_kafka_resp_err_t (0 when the
// failure did not come from librdkafka).
using Status = base::Status<KafkaErrc>;

// Either a value or a failed Status (base/result.h).
template <class T>
using Result = base::Result<T, Status>;

}  // namespace painpoint::ingest

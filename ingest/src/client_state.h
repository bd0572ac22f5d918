#pragma once

// Private: the state every Kafka client shares with its librdkafka callbacks (the conf opaque
// points here): whether a broker is reachable and, while none is, why not.

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <mutex>
#include <string>

#include "painpoint/ingest/status.h"

namespace painpoint::ingest::detail {

struct ClientState {
  std::atomic<bool> reachable{false};
  std::string what;  // "producer", "consumer", ... for logs

  virtual ~ClientState() = default;

  // Why the last connection attempt failed (wrong password, TLS handshake, wrong listener, ...),
  // as librdkafka said it; empty once a broker is up. Thread-safe.
  std::string connection_problem() const;

  // From librdkafka's error callback and its statistics (served by the client's polls).
  void on_error(rd_kafka_resp_err_t code, const char* reason);
  void on_broker_state(bool some_broker_up);

 private:
  void note_problem(const char* reason);

  mutable std::mutex mutex_;
  std::string problem_;
};

// `status` with the client's connection problem appended, when it has one.
Status with_connection_problem(Status status, const ClientState& state);

// The opaque, error, statistics and log callbacks on `conf`, all reporting to `state`.
void install_common_cbs(rd_kafka_conf_t* conf, ClientState* state);

}  // namespace painpoint::ingest::detail

#pragma once

// The embedded Kafka broker: librdkafka's mock cluster, speaking the Kafka protocol on
// 127.0.0.1, with Painpoint's topics created up front. Messages are kept in memory only; see
// DESIGN.md "Embedded default" for its retention limits.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

struct EmbeddedBrokerConfig {
  // TCP port of the (first) broker on 127.0.0.1; 0 picks a free ephemeral port.
  std::uint16_t port = 0;
  int partitions = 16;  // per Painpoint topic
  int num_brokers = 1;  // brokers 2..N always get ephemeral ports
  bool create_painpoint_topics = true;
  // The brokers' group.initial.rebalance.delay.ms: how long a new consumer group waits for more
  // members before its first assignment. The mock's default, 3 s like Apache Kafka's, was most of
  // serve's start-up; a member that joins later costs one more rebalance instead. Applied with
  // librdkafka >= 2.12 (rd_kafka_mock_group_initial_rebalance_delay_ms); Debian's 2.0.2 has no
  // such call and keeps 3 s.
  std::chrono::milliseconds group_initial_rebalance_delay{0};
};

// Owns a running mock cluster (its own threads serve the network). Stops on destruction.
// Thread safety: all methods are thread-safe. start() blocks only for socket setup.
class EmbeddedBroker {
 public:
  [[nodiscard]] static Result<std::unique_ptr<EmbeddedBroker>> start(
      const EmbeddedBrokerConfig& config);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // "127.0.0.1:PORT[,127.0.0.1:PORT2...]"
  std::string bootstrap() const;
  std::uint16_t port() const;

  Status create_topic(const std::string& name, int partitions);

  // Fault injection (for fault tests). Broker ids start at 1. `errors` are Kafka protocol error
  // codes (e.g. 7 REQUEST_TIMED_OUT), `api_key` a Kafka API key (0 Produce, 1 Fetch, 8
  // OffsetCommit, ...). The next requests of that API, on any broker, fail with them in order.
  Status set_broker_down(std::int32_t broker_id);
  Status set_broker_up(std::int32_t broker_id);
  Status set_broker_rtt(std::int32_t broker_id, std::chrono::milliseconds rtt);
  void push_request_errors(std::int16_t api_key, const std::vector<int>& errors);
  void clear_request_errors(std::int16_t api_key);

  struct Impl;

 private:
  explicit EmbeddedBroker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Applies one line of the fault-control protocol of `painpoint broker --fault-control` (fault
// tests drive a broker in another process through its stdin) and returns the reply line, without
// a newline: "ok" or "error: <why>". Commands (broker ids start at 1; -1 means every broker):
//   down <broker_id>                 refuse connections and drop the open ones
//   up <broker_id>                   accept connections again
//   rtt <broker_id> <ms>             delay every response by ms (0: none)
//   errors <api_key> <count> <code>  the next <count> requests of Kafka API <api_key> (0 Produce,
//                                    1 Fetch, 8 OffsetCommit, ...) fail with protocol error <code>
//   clear <api_key>                  drop the errors still queued for <api_key>
// Empty lines and lines starting with '#' are answered "ok" and ignored.
std::string apply_fault_command(EmbeddedBroker& broker, std::string_view line);

// `painpoint broker`: starts an EmbeddedBroker, writes its bootstrap address as the first line
// of `out` (flushed), then serves until `stop` becomes true (the caller sets it from its
// SIGINT/SIGTERM handler). With `control_fd` >= 0 it also reads fault-control commands (see
// apply_fault_command) line by line from that descriptor and writes one reply line per command to
// `out`; end of input just ends the control channel. Returns the process exit code: 0 after a
// clean stop, 1 if the broker could not start (reason logged and written to `err`).
int run_broker(const EmbeddedBrokerConfig& config, const std::atomic<bool>& stop, std::ostream& out,
               std::ostream& err, int control_fd = -1);

}  // namespace painpoint::ingest

#pragma once

// The ingest stage of `painpoint serve`: input topics -> validate/normalize ->
// painpoint.feedback-by-product (keyed by product_id) or painpoint.deadletter.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "painpoint/ingest/stage_backlog.h"
#include "painpoint/ingest/status.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::ingest {

struct IngestConfig {
  std::string brokers;
  std::string group_id = "painpoint-ingest";
  std::vector<std::string> input_topics;  // empty: feedback.support, feedback.sales, ...customer
  std::string output_topic = "painpoint.feedback-by-product";
  std::string deadletter_topic = "painpoint.deadletter";
  // A batch waits for its acknowledgements before its offsets are committed: one round trip (and
  // the producer's linger) per batch, so batches must be large enough to hide it. A batch takes
  // only what is already fetched, so small ones go out at once under light load.
  std::size_t batch_size = 10'000;
  std::chrono::milliseconds poll_timeout{200};
  // How long one batch's output may take to be acknowledged before the batch is redone.
  std::chrono::milliseconds delivery_timeout{30'000};
  // Pause after a failed batch before it is redone.
  std::chrono::milliseconds retry_backoff{1'000};
  // Bounded stop: once stop() is called, a batch still waiting for acknowledgements gets this
  // long before it is abandoned (its input offsets stay uncommitted, so it is read again after a
  // restart), and leaving the consumer group gets close_timeout.
  std::chrono::milliseconds stop_grace{1'000};
  std::chrono::milliseconds close_timeout{1'000};
  // The output topic is internal (only serve's own aggregator stage reads it back), so by default
  // its records are not compressed: compressing here and decompressing in the stage's consumer
  // spent CPU on bytes that never leave the pipeline (docs/benchmarks.md). `producer_extra`'s
  // compression.codec, if set, still wins.
  std::string output_compression = "none";
  // serve's aggregator stage reports what it polled here. On a mock cluster (the embedded broker,
  // `painpoint broker`), which keeps only 5 MiB per partition, ingest holds its input while the
  // stage is too far behind on some partition of output_topic (stage_backlog.h). Null: never.
  std::shared_ptr<StageBacklog> stage_backlog;
  // A batch's most payload bytes while holds apply, so one batch cannot overrun a partition.
  std::size_t held_batch_bytes = std::size_t{1} << 20;
  ValidationConfig validation;
  std::map<std::string, std::string> consumer_extra;
  std::map<std::string, std::string> producer_extra;
};

// Monotonic counters since start(); read them from any thread. A batch that is redone after a
// failed delivery is counted again (consumed/valid/invalid), like the redelivery it is.
struct IngestCounters {
  std::atomic<std::uint64_t> consumed{0};           // input messages received
  std::atomic<std::uint64_t> valid{0};              // passed validation
  std::atomic<std::uint64_t> invalid{0};            // sent (or to be sent) to the dead letter topic
  std::atomic<std::uint64_t> produced{0};           // output messages acknowledged by the broker
  std::atomic<std::uint64_t> delivery_failures{0};  // output messages that failed; batch redone
  std::atomic<std::uint64_t> consumer_errors{0};    // non-fatal consumer errors
  std::atomic<std::uint64_t> lost_to_retention{0};  // input messages skipped by offset resets
  std::atomic<std::uint64_t> batches_committed{0};
  std::atomic<std::uint64_t> stage_holds{0};     // times the input was held for the stage
  std::atomic<std::uint64_t> stage_held_ms{0};   // time spent holding
};

// Runs the ingest loop on its own thread. At-least-once: input offsets are committed only after
// every output message of the batch was acknowledged; a failed batch is redone from its first
// offsets (downstream dedupes by event id). A message that cannot be decoded or validated goes to
// the dead letter topic and never stops the loop.
//
// Thread safety: start()/stop() from one controlling thread; counters(), running(),
// broker_reachable() and waiting_for_acks() from any thread.
class IngestWorker {
 public:
  explicit IngestWorker(IngestConfig config);  // no I/O
  ~IngestWorker();                             // stop()
  IngestWorker(const IngestWorker&) = delete;
  IngestWorker& operator=(const IngestWorker&) = delete;

  // Creates the Kafka clients, subscribes, and starts the thread. Fails fast on bad config;
  // an unreachable broker is not an error here (the loop keeps retrying, see broker_reachable).
  Status start();
  // Graceful: finishes the batch in flight (flushes, commits), leaves the group, joins the thread.
  // Blocks at most about stop_grace + close_timeout, also while the broker is unreachable (then
  // the unfinished batch is not committed and is read again after a restart). Idempotent.
  void stop();

  const IngestCounters& counters() const;
  bool running() const;
  // What the consumer last learned from librdkafka. Its callbacks are served by polls, which
  // pause while a batch waits for acknowledgements: see waiting_for_acks() for that case.
  bool broker_reachable() const;
  // Why the consumer (or else the producer) cannot connect, as librdkafka reported it; empty
  // when nothing is known.
  std::string connection_problem() const;
  // How long the batch in flight has been waiting for the broker to acknowledge its output
  // (zero when none waits). Grows while the broker is down or failing produce requests.
  std::chrono::milliseconds waiting_for_acks() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::ingest

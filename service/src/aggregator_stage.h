#pragma once

// The aggregator stage of `painpoint serve`: painpoint.feedback-by-product -> dedupe -> aggregator
// -> ONE store commit per polled batch (events, aggregator state, memberships, summaries, outbox
// and the input offsets). On (re)assignment it seeks to the offsets stored in RocksDB, not to the
// group's committed ones; those are committed too, asynchronously, for lag monitoring only.
//
// Thread safety: start()/stop() from one controlling thread; the status accessors from any thread.
// The stage owns its thread, its Kafka consumer and the Aggregator; it borrows the Store, which
// must outlive it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "painpoint/aggregator/alerts.h"
#include "painpoint/aggregator/config.h"
#include "painpoint/aggregator/encoder.h"
#include "painpoint/changelog/changelog.h"
#include "painpoint/ingest/stage_backlog.h"
#include "painpoint/ingest/status.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class Counter;
class Gauge;
class OutboxDeletions;
class Histogram;
class MetricsRegistry;

// changelog.enabled: the input partitions whose outbox this instance publishes: those the stage
// holds, and at a clean stop those it held then (the stop publishes what it committed). A
// partition given up stays on disk, and its entries are the new owner's to publish (restored
// with it). Written by the stage, read by the publisher; outlives both. Thread-safe.
//
// A stall of the whole process (SIGSTOP, a paused VM) can outlast the group's session: the
// partitions move to another instance, whose restore fences this one, and which then publishes
// newer versions than this one's outbox holds. So after the publisher reports a stall, the held
// partitions publish nothing until the stage has polled the group again, late enough that an
// expelled member has been told (its assignment is then lost, and the partitions leave held_).
class PublishedPartitions {
 public:
  using Clock = std::chrono::steady_clock;
  // librdkafka learns that the group expelled it at its next heartbeat (every 3 s by default)
  // at the latest; a session that timed out during the stall it notices at once.
  static constexpr std::chrono::milliseconds kRejoinGrace{4'000};

  void hold(std::vector<std::int32_t> partitions) {
    std::lock_guard lock(mutex_);
    held_ = std::set<std::int32_t>(partitions.begin(), partitions.end());
  }
  void keep_at_stop(const std::set<std::int32_t>& partitions) {
    std::lock_guard lock(mutex_);
    stopped_.insert(partitions.begin(), partitions.end());
  }
  // The publisher did not run until `resumed`.
  void stalled(Clock::time_point resumed) {
    std::lock_guard lock(mutex_);
    stall_cleared_at_ = resumed + kRejoinGrace;
  }
  // The stage has polled the group (rebalance callbacks served) in a poll begun at `began`.
  void polled(Clock::time_point began) {
    std::lock_guard lock(mutex_);
    last_poll_began_ = std::max(last_poll_began_, began);
  }
  [[nodiscard]] bool contains(std::int32_t partition) const {
    std::lock_guard lock(mutex_);
    if (stopped_.contains(partition)) return true;
    return held_.contains(partition) && last_poll_began_ >= stall_cleared_at_;
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::int32_t> held_;          // guarded by mutex_
  std::set<std::int32_t> stopped_;       // guarded by mutex_
  Clock::time_point stall_cleared_at_{};  // guarded by mutex_
  Clock::time_point last_poll_began_{};   // guarded by mutex_
};

struct AggregatorStageConfig {
  std::string brokers;
  // The operator's librdkafka properties for the consumer (config file `kafka.*`).
  std::map<std::string, std::string> consumer_properties;
  std::string group_id = "painpoint-aggregator";
  // The consumer's client id; advertise_api() puts the API's address into it.
  std::string client_id = "painpoint";
  std::string topic = "painpoint.feedback-by-product";
  // Most messages per batch (one RocksDB WriteBatch), and most payload bytes (whichever comes
  // first). A batch holds what is already fetched, so under light load batches stay small and
  // latency low; under backlog large batches amortize the summaries that every batch rewrites
  // (one per pain point it touched). Measured with bench/e2e.sh, 1,000,000 events: 10,000 ->
  // 50,000 cut serve's CPU per event by a quarter and added ~190 MiB of peak RSS (two batches
  // are held: one aggregated, one committing); the byte bound keeps that for large events.
  std::size_t batch_size = 50'000;
  std::size_t batch_bytes = std::size_t{32} << 20;
  std::chrono::milliseconds poll_timeout{100};
  // How long to keep asking the cluster for its id at start before giving up.
  std::chrono::milliseconds cluster_id_timeout{30'000};
  // How often the aggregator state is written out (a checkpoint), whichever comes first. Between
  // checkpoints only events, memberships and summaries are written, and a restart after a crash
  // replays the events since the last checkpoint (about 100k events/s) to rebuild the state.
  std::uint64_t checkpoint_events = 250'000;
  std::chrono::milliseconds checkpoint_interval{60'000};
  // A checkpoint is written a share of the products per batch over this many batches, so that no
  // batch carries the whole state (the store logs the other products' events until their turn).
  std::size_t checkpoint_batches = 16;
  // stop() waits at most this long for the consumer group to confirm the leave (it never comes
  // while the broker is down); every batch is committed to the store before, so nothing depends
  // on it.
  std::chrono::milliseconds close_timeout{1'000};
  aggregator::ClusterConfig cluster;
  // cluster.encoder = semantic: the sentence encoder (not owned; outlives the stage) and the
  // threads that encode each batch (0: one per core).
  const aggregator::SentenceEncoder* encoder = nullptr;
  unsigned encoder_threads = 0;
  // Products are spread over this many aggregators, which add a batch's events and build its
  // summaries side by side on as many threads (0: one per two cores, at most kMaxDefaultShards:
  // the commit, ingest, Kafka and RocksDB threads use about as much CPU as the clustering).
  unsigned aggregator_threads = 0;
  static constexpr unsigned kMaxDefaultShards = 4;
  // Alert rules evaluated on every committed batch's summaries (docs/alerts.md).
  std::vector<aggregator::AlertRule> alert_rules;
  // changelog.enabled: every commit goes to each partition's changelog first, and each partition
  // is restored from it when assigned (partition_changelog.h, aggregator_stage_takeover.cc).
  std::optional<changelog::ChangelogConfig> changelog;
  std::int32_t changelog_partitions = 0;
  OutboxDeletions* outbox_deletions = nullptr;
  // changelog.enabled: kept up to date with the partitions held (may be null).
  PublishedPartitions* published_partitions = nullptr;
  // Called after every successful commit (a batch, a checkpoint, a curation command) on the
  // thread that committed, e.g. to wake the publisher at once. Must not block.
  std::function<void()> on_committed;
  // Told where each poll left the partitions of `topic`, so that ingest can hold its input
  // while the stage is far behind (ingest/stage_backlog.h). May be null.
  std::shared_ptr<ingest::StageBacklog> input_backlog;
};

// A human curation request (POST /v1/pain-points/{id}/merge|rename|split).
struct CurationCommand {
  enum class Kind { kMerge, kRename, kSplit };
  Kind kind = Kind::kRename;
  std::string id;                      // the pain point in the path
  std::string into;                    // merge
  std::string label;                   // rename
  std::vector<std::string> event_ids;  // split
};

struct CurationResult {
  enum class Code {
    kOk,
    kNotFound,     // no such pain point
    kConflict,     // not allowed in the current state (merged id, itself, other product)
    kInvalid,      // malformed arguments (events that are not members, bad label)
    kUnavailable,  // not run: stage stopped or failed, queue full, or deadline passed first
  };
  Code code = Code::kOk;
  std::string message;
  // kOk: the summary as committed of the pain point holding the result (the survivor of a
  // merge, the renamed one, the pain point a split created).
  std::optional<v1::PainPointSummary> summary;
};

class AggregatorStage {
 public:
  AggregatorStage(AggregatorStageConfig config, store::Store& store, MetricsRegistry& metrics);
  ~AggregatorStage();  // stop()
  AggregatorStage(const AggregatorStage&) = delete;
  AggregatorStage& operator=(const AggregatorStage&) = delete;

  // Puts the address this instance's HTTP API is reachable at into the consumer's client id, where
  // the other instances of the group find it (routing/partition_owners.h). Before start().
  void advertise_api(std::string_view address);
  // changelog.enabled: each partition assigned is restored from the changelog before its events
  // are processed, and every commit goes through it. Before start().
  // `deletions` (may be null) is where the publisher reports the outbox entries it deleted; it
  // must outlive the stage.
  void use_changelog(changelog::ChangelogConfig config, std::int32_t partitions,
                     OutboxDeletions* deletions);
  // Creates the consumer, learns the cluster id, subscribes and starts the thread (with the
  // changelog, partitions are restored on the thread as they are assigned).
  ingest::Status start();
  // Finishes the batch in flight (it is committed whole or not at all), leaves the group (waiting
  // at most close_timeout) and joins the thread. Idempotent.
  void stop();

  // The stage stopped on its own because the store refused a write: nothing after the last
  // successful commit was acknowledged. The process should exit non-zero (state is reloaded
  // from the store on restart).
  [[nodiscard]] bool failed() const;
  // Ready: running, partitions assigned, broker reachable, no store failure.
  [[nodiscard]] bool ready() const;
  [[nodiscard]] std::string status_detail() const;
  // changelog.enabled: the input partitions assigned here whose state is being restored (their
  // events wait; ready() is false meanwhile). Thread-safe.
  [[nodiscard]] std::vector<std::int32_t> restoring_partitions() const;
  // changelog.enabled: where `product`'s partition (ingest's murmur2 over the input partitions)
  // stands here. Thread-safe.
  enum class ProductHolding { kUnknown, kHeld, kRestoring, kNotHeld };
  [[nodiscard]] ProductHolding holding_of(std::string_view product) const;
  // changelog.enabled: the input partitions restored and processed here. Thread-safe.
  [[nodiscard]] std::vector<std::int32_t> active_partitions() const;
  [[nodiscard]] bool broker_reachable() const;
  // True when the last poll returned nothing and all stored offsets are at the high watermarks.
  [[nodiscard]] bool idle() const;
  [[nodiscard]] std::uint64_t events_stored() const;
  // Messages of the input topic skipped since start because the offset to resume from was no
  // longer on the broker (also logged as errors and exported as a metric).
  [[nodiscard]] std::uint64_t events_lost_to_retention() const;

  // Queues a curation command for the stage's thread, which owns the aggregator: it runs between
  // batches (within about poll_timeout when idle) and commits its changes like a batch (one
  // WriteBatch with state, memberships, summaries and outbox; no offsets). A command still
  // queued at `deadline` is answered kUnavailable without running, so a caller that gave up
  // waiting at the deadline does not have it applied later (except one already running then).
  // Thread-safe; the future is always fulfilled, also when the stage stops.
  std::future<CurationResult> submit(CurationCommand command,
                                     std::chrono::steady_clock::time_point deadline);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::service

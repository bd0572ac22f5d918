#pragma once

// The aggregator stage's private header: AggregatorStage::Impl, shared by the files that implement
// it, one concern each (as RocksDB's db_impl_*.cc):
//   aggregator_stage.cc             construction, metrics, start/stop, readiness and failure
//   aggregator_stage_loop.cc        the stage's thread: poll, decode, dedupe, aggregate a batch
//   aggregator_stage_commit.cc      the commit thread and what follows a successful commit
//   aggregator_stage_checkpoint.cc  writing out the aggregator state, and recovery after a crash
//   aggregator_stage_assignment.cc  the cluster id, partition assignment, stored positions and lag
//   aggregator_stage_curation.cc    the curation queue and the commands run between batches
//   aggregator_stage_takeover.cc    changelog.enabled: restore on assignment, revoke, fencing

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "aggregator_stage.h"
#include "alerts/alert_firing.h"
#include "checkpoint_schedule.h"
#include "event_vectors.h"
#include "metrics.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/aggregator_shards.h"
#include "painpoint/ingest/consumer.h"
#include "partition_changelog.h"
#include "product_partitions.h"
#include "store_state_reader.h"

namespace painpoint::service {

using Clock = std::chrono::steady_clock;

// The aggregator's changes as a commit of the store (summaries to the outbox).
store::CommitBatch to_commit_batch(aggregator::Changes&& changes);

// Runs one store commit at a time on its own long-lived thread, so that the stage's thread can
// aggregate the next batch meanwhile. submit() and wait() alternate, from one thread.
class CommitThread {
 public:
  // `on_committed` (may be empty) runs on the commit thread after each successful commit.
  using CommitFn = std::function<store::Status(const store::CommitBatch&)>;
  // `commit` writes one batch (the store's commit, or through the changelog first).
  CommitThread(CommitFn commit, std::function<void()> on_committed);
  ~CommitThread();
  CommitThread(const CommitThread&) = delete;
  CommitThread& operator=(const CommitThread&) = delete;

  // `batch` must stay alive and unchanged until wait() returned.
  void submit(const store::CommitBatch* batch);
  // Blocks until the submitted commit finished; its result.
  store::Status wait();

 private:
  void run();

  const CommitFn commit_;
  const std::function<void()> on_committed_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const store::CommitBatch* batch_ = nullptr;  // guarded by mutex_
  std::optional<store::Status> result_;        // guarded by mutex_
  bool stop_ = false;                          // guarded by mutex_
  std::thread thread_;                         // last: starts after the members it uses
};

struct QueuedCommand {
  CurationCommand command;
  Clock::time_point deadline;
  std::promise<CurationResult> promise;
};

// `batch` without the records of `partitions` (products by batch.product_partitions): what a
// commit keeps once those partitions belong to another instance.
store::CommitBatch without_partitions(const store::CommitBatch& batch,
                                      const std::set<std::int32_t>& partitions);

// The rebalance listener is the stage itself with changelog.enabled (aggregator_stage_takeover.cc);
// without the changelog the stage subscribes with on_assign()/on_revoke() as before.
struct AggregatorStage::Impl final : ingest::RebalanceListener {
  AggregatorStageConfig config;
  store::Store& store;
  StoreStateReader state_reader;
  std::unique_ptr<aggregator::AggregatorShards> aggregator;
  EventVectors vectors;
  std::optional<ingest::Consumer> consumer;
  std::thread thread;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> running{false};
  std::atomic<bool> failed{false};
  std::atomic<bool> idle{false};
  std::atomic<bool> assigned{false};
  std::atomic<std::uint64_t> stored_count{0};
  // Each commit names its products' input partitions (for the per-partition store).
  ProductPartitions product_partitions{std::nullopt};

  // Cluster id to record with the next commit (set when it differs from the stored one).
  std::optional<std::string> cluster_id_to_store;
  bool stored_offsets_valid = true;
  // Next offset per partition as far as the store is concerned (what we resume from).
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> positions;
  // A processed batch on its way to the store.
  struct Pending {
    store::CommitBatch commit;
    std::unordered_set<std::string_view> event_ids;  // views into commit.events
    std::vector<ingest::TopicPartitionOffset> next;
    std::size_t messages = 0;
    std::size_t duplicates = 0;
    std::size_t invalid = 0;
    Clock::time_point started;
    bool completes_checkpoint = false;  // saves the last products of a round, or all of them
  };
  // At most one commit runs at a time, on the commit thread, overlapping the aggregation of the
  // next batch; only this stage's thread starts and finishes it.
  std::unique_ptr<Pending> in_flight;
  // changelog.enabled: the writers of the partitions restored at start (used by the commit
  // thread and commit_checkpoint(), one commit at a time), and why the last commit failed there.
  std::unique_ptr<PartitionChangelogs> changelogs;
  std::optional<std::string> changelog_failure;
  // changelog.enabled, the stage's thread only: assigned partitions being restored (paused on
  // the consumer), and those restored and processed here. Events of any other partition are
  // skipped (and read again after the seek that ends its restore).
  struct Takeover {
    std::unique_ptr<PartitionRestore> restore;  // null until begun (or after a failed attempt)
    Clock::time_point assigned;
    Clock::time_point retry_at;
    int attempts = 0;
  };
  std::map<std::int32_t, Takeover> restoring;
  std::vector<ingest::TopicPartition> to_pause;  // assigned in the last poll
  std::set<std::int32_t> active;
  // Restored partitions whose first batch is not committed yet: for the takeover time.
  struct FirstBatchDue {
    Clock::time_point assigned;
    double restore_seconds = 0;
    bool warm = false;
  };
  std::map<std::int32_t, FirstBatchDue> first_batch_due;
  // The restores since the restoring set was last empty, for one summary line in the log.
  struct RestoreWave {
    Clock::time_point started;
    std::int32_t partitions = 0;
    std::int64_t records = 0;
  };
  std::optional<RestoreWave> wave;
  // Partitions fenced during a commit (the commit thread records them, the stage's thread acts).
  std::mutex fenced_mutex;
  std::set<std::int32_t> fenced_in_commit;  // guarded by fenced_mutex
  // The aggregator holds products of a partition no longer here: rebuild it before the next batch.
  bool reset_due = false;
  // For readiness and the API: the partitions restoring (copy of `restoring`'s keys).
  mutable std::mutex restoring_mutex;
  std::vector<std::int32_t> restoring_view;  // guarded by restoring_mutex
  std::vector<std::int32_t> active_view;     // guarded by restoring_mutex
  // The input topic's partition count, for holding_of() (set before the thread starts).
  std::atomic<std::int32_t> input_partitions{0};
  CommitThread committer{[this](const store::CommitBatch& b) { return commit_to_store(b); },
                         config.on_committed};
  AlertFiring alerts{config.alert_rules, store};
  // Which products' state is written out with which batch (checkpoints), and the events added
  // since each product's state was last written out.
  CheckpointRounds checkpoint_rounds{config.checkpoint_batches};
  Clock::time_point last_checkpoint = Clock::now();

  mutable std::mutex detail_mutex;
  std::string failure_detail;
  std::string start_detail;  // why start() is still waiting (readiness shows it)

  std::mutex commands_mutex;
  std::deque<QueuedCommand> commands;  // guarded by commands_mutex
  bool accepting = false;              // guarded by commands_mutex; true while run() may drain

  Counter& stored_total;
  Counter& duplicate_total;
  Counter& invalid_total;
  Counter& lost_total;
  Counter& batches_total;
  Histogram& commit_seconds;
  Histogram& batch_events;
  Gauge& lag;
  Gauge& active_pain_points;
  Gauge& unsaved_events;
  Counter& checkpoints_total;

  Impl(AggregatorStageConfig cfg, store::Store& s, MetricsRegistry& metrics);

  // aggregator_stage.cc
  void set_failure(std::string detail);
  bool fail(std::string detail);

  // aggregator_stage_loop.cc
  void run();
  bool process(const ingest::MessageBatch& batch);

  // aggregator_stage_commit.cc
  // store.commit(), or with the changelog: prepare, append each partition's writes to its
  // changelog, then write locally with the checkpoints.
  store::Status commit_to_store(const store::CommitBatch& batch);
  store::Status commit_owned(const store::CommitBatch& batch);
  void start_commit(Pending pending);
  // `building_saves_state`: the batch built meanwhile hands out state not yet persisted.
  bool finish_commit(bool building_saves_state = false);

  // aggregator_stage_checkpoint.cc
  struct StateToSave {
    bool all = false;  // every product's (stopping)
    CheckpointRounds::Share share;
  };
  bool checkpoint_due() const;
  StateToSave state_to_save();
  // Adds events[i] for every i of `fresh`, in that order (each product's), on the shards.
  void add_to_aggregator(const std::vector<v1::StoredEvent>& events,
                         std::span<const std::size_t> fresh);
  // An empty aggregator on config.aggregator_threads shards, reading state from the store.
  std::unique_ptr<aggregator::AggregatorShards> make_aggregator();
  aggregator::Changes take_changes(const StateToSave& save);
  void checkpoint_committed(bool completes_checkpoint, bool building_saves_state);
  std::optional<store::CommitBatch> commit_checkpoint(std::string_view why);
  void mark_whole_checkpoint(store::CommitBatch* commit, std::vector<std::string> products) const;
  bool state_intact();
  bool checkpoint_now();
  // Replays the arrival log of `only` (all partitions when null).
  store::Status recover(const std::set<std::int32_t>* only = nullptr);

  // aggregator_stage_assignment.cc
  ingest::Status resolve_cluster();
  std::vector<ingest::StartOffset> on_assign(std::span<const ingest::TopicPartition> partitions);
  void on_revoke(std::span<const ingest::TopicPartition> partitions);
  void refresh_lag(bool polled_empty);

  // aggregator_stage_takeover.cc
  std::vector<ingest::StartOffset> on_assigned(std::span<const ingest::TopicPartition> partitions,
                                               ingest::RebalanceProtocol protocol) override;
  void on_revoked(std::span<const ingest::TopicPartition> partitions, bool lost,
                  ingest::RebalanceProtocol protocol) override;
  // Refuses a data directory with partitions written without the changelog (before subscribing).
  ingest::Status check_changelog_partitions();
  // One round of the restores (begins, one step of each, completions). False: the stage stops.
  bool advance_restores();
  bool restore_failed(std::int32_t partition, Takeover& takeover, const changelog::Status& status);
  bool restored(std::int32_t partition, const Takeover& takeover);
  // Acts on partitions fenced in a commit: they are dropped here, the stage goes on.
  void settle_fenced();
  // A fresh aggregator over the store, with the arrival log of the active partitions replayed.
  bool reset_aggregator();
  // Writes out the state of every product with unsaved events (before partitions leave).
  bool checkpoint_owned(std::string_view why);
  void publish_restoring();
  void pause_assigned();
  // A partition's first batch after its restore was committed: logs the takeover time.
  void took_over(std::int32_t partition);
  // Whether the stage processes `partition` (always without the changelog).
  [[nodiscard]] bool processes(std::int32_t partition) const {
    return !changelogs || active.contains(partition);
  }

  // aggregator_stage_curation.cc
  std::variant<v1::PainPointSummary, CurationResult> active_summary(const std::string& id);
  aggregator::CurationOutcome apply(const CurationCommand& command, const std::string& product,
                                    CurationResult& error);
  CurationResult store_read_failed(std::string detail);
  bool execute(QueuedCommand& queued);
  bool run_commands();
  void close_commands();
};

}  // namespace painpoint::service

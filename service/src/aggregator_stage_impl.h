#pragma once

// The aggregator stage's private header: AggregatorStage::Impl, shared by the files that implement
// it, one concern each (as RocksDB's db_impl_*.cc):
//   aggregator_stage.cc             construction, metrics, start/stop, readiness and failure
//   aggregator_stage_loop.cc        the stage's thread: poll, decode, dedupe, aggregate a batch
//   aggregator_stage_commit.cc      the commit thread and what follows a successful commit
//   aggregator_stage_checkpoint.cc  writing out the aggregator state, and recovery after a crash
//   aggregator_stage_assignment.cc  the cluster id, partition assignment, stored positions and lag
//   aggregator_stage_curation.cc    the curation queue and the commands run between batches

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

struct AggregatorStage::Impl {
  AggregatorStageConfig config;
  store::Store& store;
  StoreStateReader state_reader;
  std::unique_ptr<aggregator::Aggregator> aggregator;
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
  aggregator::Changes take_changes(const StateToSave& save);
  void checkpoint_committed(bool completes_checkpoint, bool building_saves_state);
  std::optional<store::CommitBatch> commit_checkpoint(std::string_view why);
  bool state_intact();
  bool checkpoint_now();
  store::Status recover();

  // aggregator_stage_assignment.cc
  ingest::Status resolve_cluster();
  // changelog.enabled: restores every partition before the aggregator loads its state.
  ingest::Status restore_from_changelog();
  std::vector<ingest::StartOffset> on_assign(std::span<const ingest::TopicPartition> partitions);
  void on_revoke(std::span<const ingest::TopicPartition> partitions);
  void refresh_lag(bool polled_empty);

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

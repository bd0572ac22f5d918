#include "aggregator_stage.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "alerts/alert_firing.h"
#include "event_vectors.h"
#include "metrics.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/ingest/kafka.h"
#include "painpoint/ingest/validate.h"
#include "product_partitions.h"
#include "routing/partition_owners.h"
#include "store_state_reader.h"

namespace painpoint::service {

namespace {
using Clock = std::chrono::steady_clock;

store::CommitBatch to_commit_batch(aggregator::Changes&& changes) {
  store::CommitBatch batch;
  batch.aggregator_state.reserve(changes.state.size());
  for (auto& write : changes.state) {
    batch.aggregator_state.push_back(
        {std::move(write.key), std::move(write.value), std::move(write.product_id)});
  }
  batch.memberships.reserve(changes.memberships.size());
  for (auto& m : changes.memberships) {
    batch.memberships.push_back(
        {std::move(m.event_id), std::move(m.product_id), std::move(m.pain_point_id)});
  }
  batch.summaries = std::move(changes.summaries);
  batch.publish_summaries = true;
  return batch;
}

// Bounds what a flood of curation requests can hold in memory; humans curate far slower.
constexpr std::size_t kMaxQueuedCommands = 64;
// A split reads each event from the store on the stage's thread, delaying the next batch.
constexpr std::size_t kMaxSplitEvents = 1'000;

CurationResult curation_error(CurationResult::Code code, std::string message) {
  CurationResult r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

CurationResult::Code code_of(aggregator::CurationOutcome::Code code) {
  switch (code) {
    case aggregator::CurationOutcome::Code::kOk:
      return CurationResult::Code::kOk;
    case aggregator::CurationOutcome::Code::kNotFound:
      return CurationResult::Code::kNotFound;
    case aggregator::CurationOutcome::Code::kConflict:
      return CurationResult::Code::kConflict;
    case aggregator::CurationOutcome::Code::kInvalid:
      return CurationResult::Code::kInvalid;
  }
  return CurationResult::Code::kInvalid;
}

// Runs one store commit at a time on its own long-lived thread, so that the stage's thread can
// aggregate the next batch meanwhile. submit() and wait() alternate, from one thread.
class CommitThread {
 public:
  explicit CommitThread(store::Store& store) : store_(store), thread_([this] { run(); }) {}
  ~CommitThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  CommitThread(const CommitThread&) = delete;
  CommitThread& operator=(const CommitThread&) = delete;

  // `batch` must stay alive and unchanged until wait() returned.
  void submit(const store::CommitBatch* batch) {
    {
      std::lock_guard lock(mutex_);
      batch_ = batch;
      result_.reset();
    }
    wake_.notify_all();
  }

  // Blocks until the submitted commit finished; its result.
  store::Status wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return result_.has_value(); });
    return *result_;
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), "pp-commit");
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || batch_ != nullptr; });
      if (batch_ == nullptr) return;  // stopping with nothing to do
      const store::CommitBatch* batch = std::exchange(batch_, nullptr);
      lock.unlock();
      store::Status status = store_.commit(*batch);
      lock.lock();
      result_ = std::move(status);
      done_.notify_all();
    }
  }

  store::Store& store_;
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
}  // namespace

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
  };
  // At most one commit runs at a time, on the commit thread, overlapping the aggregation of the
  // next batch; only this stage's thread starts and finishes it.
  std::unique_ptr<Pending> in_flight;
  CommitThread committer{store};
  AlertFiring alerts{config.alert_rules, store};
  // Events committed since the aggregator state was last written out (a checkpoint).
  std::uint64_t events_since_checkpoint = 0;
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

  Impl(AggregatorStageConfig cfg, store::Store& s, MetricsRegistry& metrics)
      : config(std::move(cfg)),
        store(s),
        state_reader(s),
        vectors(config.cluster.encoder == aggregator::EncoderMode::kSemantic ? config.encoder
                                                                             : nullptr,
                config.encoder_threads),
        stored_total(metrics.counter("painpoint_events_stored_total",
                                     "Distinct events committed to the store since start")),
        duplicate_total(metrics.counter(
            "painpoint_events_duplicate_total",
            "Events dropped because their event id was already stored (redelivery or duplicate)")),
        invalid_total(metrics.counter("painpoint_events_invalid_total",
                                      "Events rejected by validation", {{"stage", "aggregator"}})),
        lost_total(metrics.counter(
            "painpoint_events_lost_to_retention_total",
            "Messages skipped because the offset to resume from was no longer on the broker",
            {{"stage", "aggregator"}})),
        batches_total(
            metrics.counter("painpoint_batches_committed_total", "Batches committed to the store")),
        commit_seconds(metrics.histogram(
            "painpoint_batch_commit_seconds",
            "Time to dedupe, aggregate and commit one batch to the store (WriteBatch)",
            default_latency_buckets())),
        batch_events(metrics.histogram("painpoint_batch_events", "Messages per committed batch",
                                       exponential_buckets(1, 4, 8))),
        lag(metrics.gauge("painpoint_consumer_lag",
                          "Messages on the broker not yet consumed, summed over partitions",
                          {{"stage", "aggregator"}})),
        active_pain_points(
            metrics.gauge("painpoint_pain_points_active", "Active pain points held in memory")),
        unsaved_events(metrics.gauge(
            "painpoint_aggregator_unsaved_events",
            "Events stored since the aggregator state was last written out (replayed on restart)")),
        checkpoints_total(metrics.counter("painpoint_aggregator_checkpoints_total",
                                          "Times the aggregator state was written out")) {}

  void set_failure(std::string detail) {
    std::lock_guard lock(detail_mutex);
    failure_detail = std::move(detail);
  }

  ingest::Status resolve_cluster() {
    std::optional<std::string> stored_cluster;
    if (store::Status s = store.kafka_cluster_id(&stored_cluster); !s.ok()) {
      return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
    }
    const auto deadline = Clock::now() + config.cluster_id_timeout;
    for (;;) {
      auto id = consumer->cluster_id(std::chrono::milliseconds(2'000));
      if (id.ok()) {
        if (!stored_cluster) {
          cluster_id_to_store = *id;
        } else if (*stored_cluster != *id) {
          // Offsets of another cluster mean nothing here (a fresh embedded broker, a migrated
          // cluster): start from the earliest offsets; event ids make re-reads harmless.
          spdlog::info(
              "stored offsets belong to Kafka cluster {}, now connected to {}: consuming {} "
              "from the earliest offsets",
              *stored_cluster, *id, config.topic);
          stored_offsets_valid = false;
          cluster_id_to_store = *id;
        }
        return ingest::Status::Ok();
      }
      if (Clock::now() > deadline || stop_requested.load()) return id.status();
      spdlog::warn("waiting for the Kafka cluster at {}: {}", config.brokers,
                   id.status().to_string());
      std::lock_guard lock(detail_mutex);
      start_detail = "waiting for the Kafka cluster: " + id.status().to_string();
    }
  }

  std::vector<ingest::StartOffset> on_assign(std::span<const ingest::TopicPartition> partitions) {
    std::vector<store::InputOffset> offsets;
    if (store::Status s = store.load_offsets(&offsets); !s.ok()) {
      throw std::runtime_error("load offsets: " + s.to_string());
    }
    std::map<std::pair<std::string, std::int32_t>, std::int64_t> by_partition;
    for (const auto& o : offsets) by_partition[{o.topic, o.partition}] = o.next_offset;
    std::vector<ingest::StartOffset> starts;
    for (const auto& tp : partitions) {
      auto it = by_partition.find({tp.topic, tp.partition});
      if (stored_offsets_valid && it != by_partition.end()) {
        starts.push_back(ingest::StartOffset::at(it->second));
        positions[{tp.topic, tp.partition}] = it->second;
      } else {
        starts.push_back(ingest::StartOffset::earliest());
        positions[{tp.topic, tp.partition}] = 0;
      }
    }
    spdlog::info("aggregator stage assigned {} partitions of {}", partitions.size(), config.topic);
    // Incremental (cooperative) assignments can add nothing: ready is "owns a partition".
    assigned.store(!positions.empty());
    return starts;
  }

  void on_revoke(std::span<const ingest::TopicPartition> partitions) {
    // Settle the commit in flight first (a failure is recorded by fail() and stops the loop).
    (void)finish_commit();
    for (const auto& tp : partitions) positions.erase({tp.topic, tp.partition});
    assigned.store(!positions.empty());
  }

  // The aggregator state is written out every checkpoint_events events or checkpoint_interval,
  // and when stopping; in between, the arrival log lets recover() rebuild it.
  bool checkpoint_due(std::size_t new_events) const {
    const std::uint64_t pending = events_since_checkpoint + new_events;
    if (pending == 0) return false;
    return stop_requested.load() || pending >= config.checkpoint_events ||
           Clock::now() - last_checkpoint >= config.checkpoint_interval;
  }

  void checkpoint_committed(bool checkpoint, std::size_t new_events) {
    if (!checkpoint) {
      events_since_checkpoint += new_events;
      unsaved_events.set(static_cast<double>(events_since_checkpoint));
      return;
    }
    events_since_checkpoint = 0;
    last_checkpoint = Clock::now();
    unsaved_events.set(0);
    checkpoints_total.inc();
    aggregator->evict_idle();  // only saved products can be dropped
  }

  // Commits the aggregator's changes with its whole state, on this thread (no commit may be in
  // flight). Returns what was committed, or nullopt after fail() on a store failure.
  std::optional<store::CommitBatch> commit_checkpoint(std::string_view why) {
    if (!state_intact()) return std::nullopt;
    store::CommitBatch commit =
        to_commit_batch(aggregator->take_changes(aggregator::Aggregator::StateOutput::kInclude));
    commit.aggregator_checkpoint = true;
    if (store::Status s = alerts.add_to(&commit); !s.ok()) {
      (void)fail("alert lookup failed (" + std::string(why) + "): " + s.to_string());
      return std::nullopt;
    }
    product_partitions.assign(&commit);
    if (store::Status s = store.commit(commit); !s.ok()) {
      (void)fail("store commit failed (" + std::string(why) + "): " + s.to_string());
      return std::nullopt;
    }
    checkpoint_committed(true, 0);
    return commit;
  }

  // A stored state record that could not be decoded left its product incomplete; committing
  // what the aggregator derived from it would make the loss permanent, so the stage stops.
  bool state_intact() {
    const auto& error = aggregator->state_error();
    if (!error) return true;
    return fail(*error +
                "; `painpoint replay rebuild --product ID` recomputes a product's state from its "
                "stored events");
  }

  // Writes out the deferred aggregator state (on stop). False on a store failure.
  bool checkpoint_now() {
    if (!finish_commit()) return false;
    if (events_since_checkpoint == 0 || failed.load()) return true;
    return commit_checkpoint("checkpoint").has_value();
  }

  // Rebuilds the state deferred before a crash: the events stored since the last checkpoint go
  // through the aggregator again, in the order they were first added. Adding is deterministic,
  // so this re-derives the memberships and summaries already stored; only the state is kept.
  store::Status recover() {
    const auto started = Clock::now();
    std::uint64_t replayed = 0;
    store::Status scanned = store.scan_unsaved_events([&](const v1::StoredEvent& stored) {
      product_partitions.learn(stored);
      aggregator->add(stored.event(), vectors.vector_of(stored));
      if (++replayed % 10'000 == 0) {
        (void)aggregator->take_changes(aggregator::Aggregator::StateOutput::kDefer);
      }
      return true;
    });
    if (!scanned.ok()) return scanned;
    (void)aggregator->take_changes(aggregator::Aggregator::StateOutput::kDefer);
    events_since_checkpoint = replayed;
    unsaved_events.set(static_cast<double>(replayed));
    if (replayed > 0) {
      spdlog::info(
          "aggregator state rebuilt from {} events stored after the last checkpoint in "
          "{:.2f} s",
          replayed, std::chrono::duration<double>(Clock::now() - started).count());
    }
    return store::Status::Ok();
  }

  // Returns false when the stage must stop (store failure). The batch's WriteBatch is committed
  // on the writer thread while the next batch is aggregated here; its offsets count as stored,
  // and its bookkeeping runs, only once finish_commit() saw the commit succeed.
  bool process(const ingest::MessageBatch& batch) {
    const auto started = Clock::now();
    std::vector<v1::StoredEvent> events;
    events.reserve(batch.size());
    std::size_t invalid = 0;
    for (const ingest::Message& message : batch) {
      v1::StoredEvent stored;
      if (auto rejection = ingest::parse_wire_event(message.payload(), stored.mutable_event())) {
        // Only ingest writes this topic, and it validated the event; anything else is foreign.
        ++invalid;
        spdlog::warn("skipping undecodable message at {}/{}@{}: {}", message.topic(),
                     message.partition(), message.offset(), rejection->detail);
        continue;
      }
      stored.set_input_topic(std::string(message.topic()));
      stored.set_input_partition(message.partition());
      stored.set_input_offset(message.offset());
      events.push_back(std::move(stored));
    }

    std::vector<std::string_view> ids;
    ids.reserve(events.size());
    for (const auto& e : events) ids.push_back(e.event().event_id());
    std::vector<std::size_t> fresh;
    if (store::Status s = store.filter_new_events(ids, &fresh); !s.ok()) {
      return fail("dedupe lookup failed: " + s.to_string());
    }
    // The store does not know the events of the commit still in flight yet.
    if (in_flight) {
      std::erase_if(fresh, [&](std::size_t i) { return in_flight->event_ids.contains(ids[i]); });
    }

    if (vectors.enabled()) {
      std::vector<v1::StoredEvent*> to_encode;
      to_encode.reserve(fresh.size());
      for (std::size_t index : fresh) to_encode.push_back(&events[index]);
      vectors.encode_missing(to_encode);
    }
    for (std::size_t index : fresh) {
      aggregator->add(events[index].event(), vectors.vector_of(events[index]));
    }
    if (!state_intact()) return false;
    const bool checkpoint = checkpoint_due(fresh.size());
    Pending pending;
    pending.commit = to_commit_batch(
        aggregator->take_changes(checkpoint ? aggregator::Aggregator::StateOutput::kInclude
                                            : aggregator::Aggregator::StateOutput::kDefer));
    pending.commit.aggregator_checkpoint = checkpoint;
    if (store::Status s = alerts.add_to(&pending.commit); !s.ok()) {
      return fail("alert lookup failed: " + s.to_string());
    }
    pending.commit.events.reserve(fresh.size());
    pending.event_ids.reserve(fresh.size());
    // In the order they were added: the store numbers them so (arrival numbers), which is what
    // recover() and `replay rebuild` replay them in. Commits run one at a time, in batch order.
    for (std::size_t index : fresh) {
      pending.commit.events.push_back(std::move(events[index]));
      pending.event_ids.insert(pending.commit.events.back().event().event_id());
    }
    pending.next = batch.next_offsets();
    for (const auto& o : pending.next) {
      pending.commit.offsets.push_back({o.topic, o.partition, o.offset});
    }
    pending.commit.kafka_cluster_id = cluster_id_to_store;
    product_partitions.assign(&pending.commit);
    pending.messages = batch.size();
    pending.duplicates = events.size() - fresh.size();
    pending.invalid = invalid;
    pending.started = started;

    if (!finish_commit()) return false;
    cluster_id_to_store.reset();
    start_commit(std::move(pending));
    return true;
  }

  void start_commit(Pending pending) {
    in_flight = std::make_unique<Pending>(std::move(pending));
    committer.submit(&in_flight->commit);
  }

  // Waits for the commit in flight, if any, and does what follows a successful one. Returns
  // false when it failed (the stage must stop; nothing of that batch was acknowledged).
  bool finish_commit() {
    if (!in_flight) return true;
    const store::Status s = committer.wait();
    std::unique_ptr<Pending> done = std::move(in_flight);
    if (!s.ok()) return fail("store commit failed: " + s.to_string());
    const std::size_t stored = done->commit.events.size();
    checkpoint_committed(done->commit.aggregator_checkpoint, stored);
    for (const auto& o : done->next) positions[{o.topic, o.partition}] = o.offset;
    // For lag monitoring only; the store's offsets are the ones we resume from.
    if (auto st = consumer->commit(done->next, /*async=*/true); !st.ok()) {
      spdlog::debug("group offset commit: {}", st.to_string());
    }
    stored_count.fetch_add(stored);
    stored_total.inc(stored);
    duplicate_total.inc(done->duplicates);
    invalid_total.inc(done->invalid);
    batches_total.inc();
    batch_events.observe(static_cast<double>(done->messages));
    active_pain_points.set(static_cast<double>(aggregator->active_pain_points()));
    commit_seconds.observe(std::chrono::duration<double>(Clock::now() - done->started).count());
    return true;
  }

  // Active (not merged) summary of `id`, or the error to answer with.
  std::variant<v1::PainPointSummary, CurationResult> active_summary(const std::string& id) {
    std::optional<v1::PainPointSummary> summary;
    if (store::Status s = store.get_summary(id, &summary); !s.ok()) {
      throw StoreReadError("summary lookup: " + s.to_string());
    }
    if (!summary) return curation_error(CurationResult::Code::kNotFound, "no pain point " + id);
    if (summary->status() == v1::STATUS_MERGED) {
      return curation_error(CurationResult::Code::kConflict,
                            "pain point " + id + " was merged into " + summary->merged_into());
    }
    if (summary->status() != v1::STATUS_ACTIVE) {
      return curation_error(CurationResult::Code::kConflict, "pain point " + id + " is retired");
    }
    return *std::move(summary);
  }

  // Applies one command to the aggregator. Store read errors throw StoreReadError.
  aggregator::CurationOutcome apply(const CurationCommand& command, const std::string& product,
                                    CurationResult& error) {
    using Kind = CurationCommand::Kind;
    switch (command.kind) {
      case Kind::kRename:
        return aggregator->rename(product, command.id, command.label);
      case Kind::kMerge: {
        if (command.into == command.id) {
          error = curation_error(CurationResult::Code::kConflict,
                                 "cannot merge a pain point into itself");
          return {};
        }
        auto into = active_summary(command.into);
        if (auto* e = std::get_if<CurationResult>(&into)) {
          error = std::move(*e);
          return {};
        }
        if (std::get<v1::PainPointSummary>(into).product_id() != product) {
          error = curation_error(CurationResult::Code::kConflict,
                                 "cannot merge pain points of different products");
          return {};
        }
        return aggregator->merge(product, command.id, command.into);
      }
      case Kind::kSplit: {
        if (command.event_ids.empty() || command.event_ids.size() > kMaxSplitEvents) {
          error = curation_error(
              CurationResult::Code::kInvalid,
              "eventIds must list 1.." + std::to_string(kMaxSplitEvents) + " events");
          return {};
        }
        std::vector<v1::FeedbackEvent> events;
        std::vector<float> embeddings;  // semantic mode: each event's stored vector, in order
        std::set<std::string_view> seen;
        for (const std::string& event_id : command.event_ids) {
          std::optional<std::string> member_of;
          if (store::Status s = store.get_membership(event_id, &member_of); !s.ok()) {
            throw StoreReadError("membership lookup: " + s.to_string());
          }
          // Memberships name the pain point at assignment; merges since are followed.
          if (!member_of || aggregator->resolve(*member_of) != command.id) {
            error = curation_error(CurationResult::Code::kInvalid,
                                   "event " + event_id + " is not a member of " + command.id);
            return {};
          }
          if (!seen.insert(event_id).second) {
            error = curation_error(CurationResult::Code::kInvalid,
                                   "event " + event_id + " is listed twice");
            return {};
          }
          std::optional<v1::StoredEvent> stored;
          if (store::Status s = store.get_event(event_id, &stored); !s.ok()) {
            throw StoreReadError("event lookup: " + s.to_string());
          }
          if (!stored) {
            error = curation_error(CurationResult::Code::kInvalid,
                                   "event " + event_id + " is not stored");
            return {};
          }
          events.push_back(stored->event());
          const std::span<const float> v = vectors.vector_of(*stored);
          embeddings.insert(embeddings.end(), v.begin(), v.end());
        }
        return aggregator->split(product, command.id, events, embeddings);
      }
    }
    return {};
  }

  // Runs on the stage's thread. Returns false when the stage must stop (store failure).
  bool execute(QueuedCommand& queued) {
    if (Clock::now() > queued.deadline) {
      queued.promise.set_value(curation_error(CurationResult::Code::kUnavailable,
                                              "timed out waiting for the aggregator"));
      return true;
    }
    const CurationCommand& command = queued.command;
    CurationResult result;
    try {
      auto target = active_summary(command.id);
      if (auto* e = std::get_if<CurationResult>(&target)) {
        queued.promise.set_value(std::move(*e));
        return true;
      }
      const std::string product = std::get<v1::PainPointSummary>(target).product_id();
      CurationResult error;
      const aggregator::CurationOutcome outcome = apply(command, product, error);
      if (error.code != CurationResult::Code::kOk) {
        queued.promise.set_value(std::move(error));
        return true;
      }
      if (!outcome.ok()) {
        queued.promise.set_value(curation_error(code_of(outcome.code), outcome.message));
        return true;
      }
      // Curation is not in the arrival log, so its state is written out at once.
      const std::optional<store::CommitBatch> commit = commit_checkpoint("curation");
      if (!commit) {
        queued.promise.set_value(
            curation_error(CurationResult::Code::kUnavailable, "store commit failed"));
        return false;
      }
      for (const auto& summary : commit->summaries) {
        if (summary.id() == outcome.id) result.summary = summary;
      }
    } catch (const StoreReadError& e) {
      // The aggregator may have loaded state halfway: same policy as a batch.
      queued.promise.set_value(curation_error(CurationResult::Code::kUnavailable, e.what()));
      return fail(e.what());
    }
    active_pain_points.set(static_cast<double>(aggregator->active_pain_points()));
    spdlog::info("curation: {} {} applied",
                 command.kind == CurationCommand::Kind::kMerge    ? "merge"
                 : command.kind == CurationCommand::Kind::kRename ? "rename"
                                                                  : "split",
                 command.id);
    queued.promise.set_value(std::move(result));
    return true;
  }

  // Runs the queued curation commands. Returns false when the stage must stop.
  bool run_commands() {
    std::deque<QueuedCommand> todo;
    {
      std::lock_guard lock(commands_mutex);
      todo.swap(commands);
    }
    // Commands read the store: let it catch up with the aggregator first.
    if (!todo.empty()) (void)finish_commit();
    for (auto& queued : todo) {
      if (failed.load()) {
        queued.promise.set_value(
            curation_error(CurationResult::Code::kUnavailable, "aggregator stage failed"));
        continue;
      }
      execute(queued);
    }
    return !failed.load();
  }

  // Stops accepting commands and answers the queued ones: nobody will run them.
  void close_commands() {
    std::deque<QueuedCommand> left;
    {
      std::lock_guard lock(commands_mutex);
      accepting = false;
      left.swap(commands);
    }
    for (auto& queued : left) {
      queued.promise.set_value(
          curation_error(CurationResult::Code::kUnavailable, "aggregator stage stopped"));
    }
  }

  bool fail(std::string detail) {
    spdlog::error("aggregator stage stops: {}; nothing after the last commit was acknowledged",
                  detail);
    set_failure(std::move(detail));
    failed.store(true);
    return false;
  }

  // Lag from the watermarks the consumer already learned from its fetches: no broker round
  // trip on this thread (a blocking query per partition once stalled the stage for seconds per
  // batch with 128 partitions), so it is cheap enough for every round. Positions move only once a
  // commit succeeded: a batch still in flight counts as lag, so lag 0 means stored.
  void refresh_lag(bool polled_empty) {
    std::int64_t total = 0;
    bool complete = assigned.load();
    for (const auto& [tp, position] : positions) {
      const auto marks = consumer->cached_watermarks(tp.first, tp.second);
      if (!marks) {
        complete = false;
        continue;
      }
      const std::int64_t from = marks->low >= 0 ? std::max(position, marks->low) : position;
      total += std::max<std::int64_t>(0, marks->high - from);
    }
    lag.set(static_cast<double>(total));
    idle.store(polled_empty && complete && total == 0);
  }

  void run() {
    while (!stop_requested.load()) {
      ingest::MessageBatch batch =
          consumer->poll_batch(config.batch_size, config.poll_timeout, config.batch_bytes);
      for (const auto& reset : batch.offset_resets()) {
        if (reset.lost() > 0) {
          spdlog::error(
              "{} messages of {}[{}] were lost to retention: offset {} is no longer on the broker "
              "(earliest is {}); continuing from {}",
              reset.lost(), reset.partition.topic, reset.partition.partition, reset.requested,
              reset.low_watermark, reset.resumed_at);
          lost_total.inc(static_cast<std::uint64_t>(reset.lost()));
        }
      }
      for (const auto& error : batch.errors()) {
        spdlog::warn("aggregator consumer: {}", error.status.to_string());
      }
      if (!batch.empty()) {
        bool ok = false;
        try {
          ok = process(batch);
        } catch (const StoreReadError& e) {
          ok = fail(e.what());
        }
        if (!ok) break;
      } else if (!finish_commit()) {
        break;  // nothing new: settle the last batch rather than wait for the next one
      }
      if (!run_commands()) break;
      refresh_lag(batch.empty());
    }
    close_commands();
    (void)checkpoint_now();  // settles the commit in flight; failures are reported by fail()
    if (auto s = consumer->close(config.close_timeout); !s.ok()) {
      spdlog::warn("aggregator consumer close: {}", s.to_string());
    }
    running.store(false);
  }
};

AggregatorStage::AggregatorStage(AggregatorStageConfig config, store::Store& store,
                                 MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, metrics)) {}

AggregatorStage::~AggregatorStage() { stop(); }

void AggregatorStage::advertise_api(std::string_view address) {
  impl_->config.client_id = client_id_with_address(address);
}

ingest::Status AggregatorStage::start() {
  Impl& impl = *impl_;
  ingest::ConsumerConfig consumer_config;
  consumer_config.brokers = impl.config.brokers;
  consumer_config.group_id = impl.config.group_id;
  consumer_config.client_id = impl.config.client_id;
  consumer_config.extra = impl.config.consumer_properties;
  auto consumer = ingest::Consumer::create(consumer_config);
  if (!consumer.ok()) return consumer.status();
  impl.consumer.emplace(std::move(consumer).value());
  if (auto s = impl.resolve_cluster(); !s.ok()) return s;
  std::optional<std::int32_t> partition_count;
  if (store::Status s = impl.store.input_partitions(&partition_count); !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
  }
  impl.product_partitions = ProductPartitions(partition_count);

  impl.aggregator =
      std::make_unique<aggregator::Aggregator>(impl.config.cluster, &impl.state_reader);
  if (store::Status s = impl.recover(); !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther,
                                 "rebuilding the aggregator state: " + s.to_string());
  }
  impl.stored_count.store(0);
  const std::vector<std::string> topics = {impl.config.topic};
  auto s = impl.consumer->subscribe(
      topics, [&impl](std::span<const ingest::TopicPartition> p) { return impl.on_assign(p); },
      [&impl](std::span<const ingest::TopicPartition> p) { impl.on_revoke(p); });
  if (!s.ok()) return s;
  {
    std::lock_guard lock(impl.detail_mutex);
    impl.start_detail.clear();
  }
  impl.running.store(true);
  {
    std::lock_guard lock(impl.commands_mutex);
    impl.accepting = true;
  }
  impl.thread = std::thread([&impl] {
    pthread_setname_np(pthread_self(), "pp-aggregate");
    impl.run();
  });
  return ingest::Status::Ok();
}

void AggregatorStage::stop() {
  if (!impl_) return;
  impl_->stop_requested.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::future<CurationResult> AggregatorStage::submit(
    CurationCommand command, std::chrono::steady_clock::time_point deadline) {
  QueuedCommand queued{std::move(command), deadline, {}};
  std::future<CurationResult> future = queued.promise.get_future();
  std::lock_guard lock(impl_->commands_mutex);
  if (!impl_->accepting) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "aggregator stage not running"));
  } else if (impl_->commands.size() >= kMaxQueuedCommands) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "too many curation requests queued"));
  } else {
    impl_->commands.push_back(std::move(queued));
  }
  return future;
}

bool AggregatorStage::failed() const { return impl_->failed.load(); }
bool AggregatorStage::idle() const { return impl_->idle.load(); }
std::uint64_t AggregatorStage::events_stored() const { return impl_->stored_count.load(); }
std::uint64_t AggregatorStage::events_lost_to_retention() const {
  return impl_->lost_total.value();
}

bool AggregatorStage::broker_reachable() const {
  return impl_->consumer && impl_->consumer->broker_reachable();
}

bool AggregatorStage::ready() const {
  return impl_->running.load() && !impl_->failed.load() && impl_->assigned.load() &&
         broker_reachable();
}

std::string AggregatorStage::status_detail() const {
  if (impl_->failed.load()) {
    std::lock_guard lock(impl_->detail_mutex);
    return impl_->failure_detail;
  }
  if (!impl_->running.load()) {
    std::lock_guard lock(impl_->detail_mutex);
    return impl_->start_detail.empty() ? "not running" : impl_->start_detail;
  }
  if (!broker_reachable()) return ingest::unreachable_detail(impl_->consumer->connection_problem());
  if (!impl_->assigned.load()) return "waiting for partition assignment";
  return "ok";
}

}  // namespace painpoint::service

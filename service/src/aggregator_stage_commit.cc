// The commit thread (pp-commit) and what follows a successful commit of a batch.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

#include "aggregator_stage_impl.h"

namespace painpoint::service {

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

CommitThread::CommitThread(CommitFn commit, std::function<void()> on_committed)
    : commit_(std::move(commit)),
      on_committed_(std::move(on_committed)),
      thread_([this] { run(); }) {}

CommitThread::~CommitThread() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CommitThread::submit(const store::CommitBatch* batch) {
  {
    std::lock_guard lock(mutex_);
    batch_ = batch;
    result_.reset();
  }
  wake_.notify_all();
}

store::Status CommitThread::wait() {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return result_.has_value(); });
  return *result_;
}

void CommitThread::run() {
  pthread_setname_np(pthread_self(), "pp-commit");
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || batch_ != nullptr; });
    if (batch_ == nullptr) return;  // stopping with nothing to do
    const store::CommitBatch* batch = std::exchange(batch_, nullptr);
    lock.unlock();
    store::Status status = commit_(*batch);
    if (status.ok() && on_committed_) on_committed_();
    lock.lock();
    result_ = std::move(status);
    done_.notify_all();
  }
}

store::CommitBatch without_partitions(const store::CommitBatch& batch,
                                      const std::set<std::int32_t>& partitions) {
  const auto dropped = [&](std::string_view product) {
    const auto it = batch.product_partitions.find(product);
    return it != batch.product_partitions.end() && partitions.contains(it->second);
  };
  store::CommitBatch out;
  for (const auto& e : batch.events) {
    if (!partitions.contains(e.input_partition())) out.events.push_back(e);
  }
  for (const auto& o : batch.offsets) {
    if (!partitions.contains(o.partition)) out.offsets.push_back(o);
  }
  out.kafka_cluster_id = batch.kafka_cluster_id;
  for (const auto& w : batch.aggregator_state) {
    if (!dropped(w.product_id)) out.aggregator_state.push_back(w);
  }
  out.aggregator_checkpoint = batch.aggregator_checkpoint;
  for (const auto& product : batch.state_saved_for) {
    if (!dropped(product)) out.state_saved_for.push_back(product);
  }
  for (std::size_t i = 0; i < batch.memberships.size(); ++i) {
    if (dropped(batch.memberships[i].product_id)) continue;
    out.memberships.push_back(batch.memberships[i]);
    if (!batch.memberships_known.empty()) {
      out.memberships_known.push_back(batch.memberships_known[i]);
    }
  }
  out.removed_memberships = batch.removed_memberships;
  for (const auto& summary : batch.summaries) {
    if (!dropped(summary.product_id())) out.summaries.push_back(summary);
  }
  out.publish_summaries = batch.publish_summaries;
  for (const auto& summary : batch.outbox) {
    if (!dropped(summary.product_id())) out.outbox.push_back(summary);
  }
  out.alerts = batch.alerts;
  for (const auto& [product, p] : batch.product_partitions) {
    if (!partitions.contains(p)) out.product_partitions.emplace(product, p);
  }
  return out;
}

namespace {

// The partitions a batch writes to.
std::set<std::int32_t> partitions_of(const store::CommitBatch& batch) {
  std::set<std::int32_t> out;
  for (const auto& [product, p] : batch.product_partitions) out.insert(p);
  for (const auto& e : batch.events) out.insert(e.input_partition());
  for (const auto& o : batch.offsets) out.insert(o.partition);
  return out;
}

}  // namespace

store::Status AggregatorStage::Impl::commit_to_store(const store::CommitBatch& batch) {
  if (!changelogs) return store.commit(batch);
  // A partition fenced or revoked while this batch was built is another instance's now: its
  // part of the batch is dropped (its events are read again by the new owner).
  std::set<std::int32_t> foreign;
  for (std::int32_t p : partitions_of(batch)) {
    if (!changelogs->owns(p)) foreign.insert(p);
  }
  if (!foreign.empty()) {
    spdlog::info("dropping the writes of {} partitions not restored here from a commit",
                 foreign.size());
    return commit_owned(without_partitions(batch, foreign));
  }
  return commit_owned(batch);
}

store::Status AggregatorStage::Impl::commit_owned(const store::CommitBatch& batch) {
  store::PreparedCommit prepared;
  if (store::Status s = store.prepare_commit(batch, &prepared); !s.ok()) return s;
  changelog::Status s = changelogs->append(batch, prepared);
  if (!s.ok() && !changelogs->fenced_partitions().empty()) {
    // Only fencing failed the append: the other partitions' part of the batch is on their
    // changelogs, so it is committed here without the fenced partitions, which are dropped.
    const std::set<std::int32_t> fenced = changelogs->fenced_partitions();
    for (std::int32_t p : fenced) {
      spdlog::error(
          "partition {} of the changelog was taken over by another owner (fenced): this "
          "instance stops processing it; its part of the batch was not committed ({})",
          p, s.to_string());
    }
    {
      std::lock_guard lock(fenced_mutex);
      fenced_in_commit.insert(fenced.begin(), fenced.end());
    }
    const store::CommitBatch rest = without_partitions(batch, fenced);
    store::PreparedCommit again;
    if (store::Status st = store.prepare_commit(rest, &again); !st.ok()) return st;
    if (changelog::Status cs = changelogs->add_checkpoints(again); !cs.ok()) {
      changelog_failure = cs.to_string();
      return {store::StoreErrc::kIoError, *changelog_failure};
    }
    return store.write_prepared(std::move(again));
  }
  if (!s.ok()) {
    const std::int32_t p = changelogs->failed_partition();
    changelog_failure = "the changelog of partition " + std::to_string(p) +
                        " did not take the batch, so it was not committed here: " + s.to_string() +
                        "; a restart restores the partition from the changelog";
    return {store::StoreErrc::kIoError, *changelog_failure};
  }
  return store.write_prepared(std::move(prepared));
}

void AggregatorStage::Impl::start_commit(Pending pending) {
  in_flight = std::make_unique<Pending>(std::move(pending));
  committer.submit(&in_flight->commit);
}

// Waits for the commit in flight, if any, and does what follows a successful one. Returns
// false when it failed (the stage must stop; nothing of that batch was acknowledged).
bool AggregatorStage::Impl::finish_commit(bool building_saves_state) {
  if (!in_flight) return true;
  const store::Status s = committer.wait();
  std::unique_ptr<Pending> done = std::move(in_flight);
  if (!s.ok()) {
    if (changelog_failure) return fail(*changelog_failure);
    return fail("store commit failed: " + s.to_string());
  }
  const std::size_t stored = done->commit.events.size();
  checkpoint_committed(done->completes_checkpoint, building_saves_state);
  // First: a partition fenced in this commit had its part dropped, so it was not taken over.
  settle_fenced();
  for (const auto& o : done->next) {
    if (!processes(o.partition)) continue;  // fenced or revoked meanwhile
    positions[{o.topic, o.partition}] = o.offset;
    if (first_batch_due.contains(o.partition)) took_over(o.partition);
  }
  // For lag monitoring only; the store's offsets are the ones we resume from.
  std::erase_if(done->next, [this](const auto& o) { return !processes(o.partition); });
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

}  // namespace painpoint::service

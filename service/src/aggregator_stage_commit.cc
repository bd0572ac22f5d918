// The commit thread (pp-commit) and what follows a successful commit of a batch.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <mutex>
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

store::Status AggregatorStage::Impl::commit_to_store(const store::CommitBatch& batch) {
  if (!changelogs) return store.commit(batch);
  store::PreparedCommit prepared;
  if (store::Status s = store.prepare_commit(batch, &prepared); !s.ok()) return s;
  if (changelog::Status s = changelogs->append(batch, prepared); !s.ok()) {
    const std::int32_t p = changelogs->failed_partition();
    changelog_failure =
        s.code == changelog::ChangelogErrc::kFenced
            ? "partition " + std::to_string(p) +
                  " of the changelog was taken over by another owner (fenced): this instance "
                  "no longer owns it; nothing of the batch was committed here (" +
                  s.to_string() + ")"
            : "the changelog of partition " + std::to_string(p) +
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

}  // namespace painpoint::service

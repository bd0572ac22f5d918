// changelog.enabled: partitions restored when assigned (in steps between polls), given up when
// revoked or fenced (docs/adr-005-scale-out.md, item 3).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "aggregator_stage_impl.h"

namespace painpoint::service {

namespace {
// Restores under way at once (each reads its partition through the shared changelog consumer).
constexpr std::size_t kRestoresAtOnce = 16;
// Changelog messages per restore step, and how long a step waits for data: a round of steps
// stays well inside max.poll.interval.ms and the session's heartbeats.
constexpr std::size_t kRestoreChunk = 10'000;
constexpr std::chrono::milliseconds kRestoreWait{50};
// Attempts per partition when the broker fails (kKafka, kTimedOut), a second apart.
constexpr int kRestoreAttempts = 10;
constexpr std::chrono::milliseconds kSeekTimeout{5'000};
}  // namespace

ingest::Status AggregatorStage::Impl::check_changelog_partitions() {
  std::vector<std::int32_t> present;
  if (store::Status s = store.partitions_present(&present); !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
  }
  for (std::int32_t p : present) {
    std::optional<std::string> checkpoint;
    if (store::Status s = store.local_record(p, kChangelogCheckpointRecord, &checkpoint); !s.ok()) {
      return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
    }
    if (!checkpoint) {
      return ingest::Status::Error(
          ingest::KafkaErrc::kOther,
          "restoring partition " + std::to_string(p) +
              " from the changelog: the data directory holds records of partition " +
              std::to_string(p) +
              " written without the changelog, which does not have them: start with "
              "changelog.enabled = false, or on an empty data directory and `painpoint replay "
              "emit` this one's events");
    }
  }
  return ingest::Status::Ok();
}

std::vector<ingest::StartOffset> AggregatorStage::Impl::on_assigned(
    std::span<const ingest::TopicPartition> partitions, ingest::RebalanceProtocol /*protocol*/) {
  // Where to start until the restore seeks: the stored offsets, so that nothing is reported
  // lost to retention for a position that the restore replaces anyway.
  std::vector<ingest::StartOffset> starts = on_assign(partitions);
  const auto now = Clock::now();
  if (!wave) wave = RestoreWave{.started = now};
  for (const auto& tp : partitions) {
    if (tp.topic != config.topic) continue;
    Takeover takeover;
    takeover.assigned = now;
    restoring.insert_or_assign(tp.partition, std::move(takeover));
    active.erase(tp.partition);
    to_pause.push_back(tp);
  }
  publish_restoring();
  return starts;
}

void AggregatorStage::Impl::on_revoked(std::span<const ingest::TopicPartition> partitions,
                                       bool lost, ingest::RebalanceProtocol /*protocol*/) {
  // The batch in flight is committed (its partitions' records and markers reach their
  // changelogs before the next owner's fence), and so is the state of every product with events
  // not yet written out, so that the next owner replays none of them. When the assignment was
  // lost, another owner may have fenced already: those partitions' part is dropped
  // (commit_owned()) and the new owner reads their events again.
  (void)finish_commit();
  std::set<std::int32_t> leaving;
  for (const auto& tp : partitions) {
    if (tp.topic != config.topic) continue;
    restoring.erase(tp.partition);
    if (active.contains(tp.partition)) leaving.insert(tp.partition);
  }
  if (!leaving.empty() && !failed.load()) (void)checkpoint_owned(lost ? "lost" : "revoked");
  if (stop_requested.load() && !lost && config.published_partitions != nullptr) {
    // Leaving the group at stop: the publisher still drains what was committed here.
    config.published_partitions->keep_at_stop(leaving);
  }
  for (const auto& tp : partitions) {
    if (tp.topic != config.topic) continue;
    changelogs->drop(tp.partition);
    active.erase(tp.partition);
    first_batch_due.erase(tp.partition);
  }
  if (!leaving.empty()) {
    spdlog::info("aggregator stage gives up {} partitions{}; their state stays on disk",
                 leaving.size(), lost ? " (lost)" : "");
    // The aggregator must not keep their products: a later restore may bring newer state.
    reset_due = true;
  }
  on_revoke(partitions);
  if (restoring.empty()) wave.reset();
  publish_restoring();
}

void AggregatorStage::Impl::pause_assigned() {
  if (to_pause.empty()) return;
  std::erase_if(to_pause, [this](const auto& tp) { return !restoring.contains(tp.partition); });
  if (auto s = consumer->pause(to_pause); !s.ok()) {
    // Their messages are skipped anyway (processes()); pausing only saves the fetches.
    spdlog::warn("pausing partitions being restored: {}", s.to_string());
  }
  to_pause.clear();
}

void AggregatorStage::Impl::publish_restoring() {
  std::vector<std::int32_t> view;
  for (const auto& [p, takeover] : restoring) view.push_back(p);
  std::vector<std::int32_t> held(active.begin(), active.end());
  if (config.published_partitions != nullptr) config.published_partitions->hold(held);
  std::lock_guard lock(restoring_mutex);
  restoring_view = std::move(view);
  active_view = std::move(held);
}

bool AggregatorStage::Impl::advance_restores() {
  settle_fenced();
  if (restoring.empty()) return true;
  // Restores write the store and reload its counters: no commit may run meanwhile.
  if (!finish_commit()) return false;
  const auto now = Clock::now();
  std::size_t under_way = 0;
  for (const auto& [p, takeover] : restoring) under_way += takeover.restore != nullptr;
  // Begun side by side: each makes a reader and asks the broker for its watermarks (tens of
  // ms), which one after the other delayed the last of 16 partitions by most of a second.
  std::vector<std::pair<std::int32_t, std::future<changelog::Result<std::unique_ptr<PartitionRestore>>>>>
      begins;
  for (auto& [p, takeover] : restoring) {
    if (takeover.restore || under_way >= kRestoresAtOnce || now < takeover.retry_at) continue;
    begins.emplace_back(p, std::async(std::launch::async,
                                      [this, p = p] { return changelogs->begin_restore(p); }));
    ++under_way;
  }
  std::vector<std::pair<std::int32_t, changelog::Status>> not_begun;
  for (auto& [p, begin] : begins) {
    auto begun = begin.get();
    if (!begun.ok()) {
      not_begun.emplace_back(p, begun.status());
      continue;
    }
    restoring.at(p).restore = std::move(begun).value();
  }
  for (const auto& [p, status] : not_begun) {
    if (!restore_failed(p, restoring.at(p), status)) return false;
  }
  // One step of each, side by side: each waits mostly for the broker.
  std::vector<std::pair<std::int32_t, std::future<changelog::Result<bool>>>> steps;
  for (auto& [p, takeover] : restoring) {
    if (!takeover.restore) continue;
    PartitionRestore* restore = takeover.restore.get();
    steps.emplace_back(p, std::async(std::launch::async, [this, restore] {
                         return changelogs->step_restore(*restore, kRestoreChunk, kRestoreWait);
                       }));
  }
  std::vector<std::pair<std::int32_t, changelog::Result<bool>>> results;
  for (auto& [p, step] : steps) results.emplace_back(p, step.get());
  std::vector<std::int32_t> done;
  for (auto& [p, result] : results) {
    if (!result.ok()) {
      if (!restore_failed(p, restoring.at(p), result.status())) return false;
    } else if (*result) {
      done.push_back(p);
    }
  }
  if (done.empty()) return true;
  if (store::Status s = store.reload_counters(done); !s.ok()) {
    return fail("store: reload counters after a restore: " + s.to_string());
  }
  for (std::int32_t p : done) {
    if (!restored(p, restoring.at(p))) return false;
    restoring.erase(p);
  }
  publish_restoring();
  if (restoring.empty() && wave) {
    spdlog::info(
        "restored {} partitions from the changelog in {:.2f} s: {} records applied; store holds "
        "{} events",
        wave->partitions, std::chrono::duration<double>(Clock::now() - wave->started).count(),
        wave->records, store.event_count());
    wave.reset();
  }
  return true;
}

// A broker that has just (re)started answers "not leader" for a while; a restore that stopped
// part way is begun again from the local checkpoint (applying is idempotent).
bool AggregatorStage::Impl::restore_failed(std::int32_t p, Takeover& takeover,
                                           const changelog::Status& status) {
  takeover.restore.reset();
  const bool transient = status.code == changelog::ChangelogErrc::kKafka ||
                         status.code == changelog::ChangelogErrc::kTimedOut;
  if (transient && ++takeover.attempts < kRestoreAttempts) {
    spdlog::warn("restoring partition {} from the changelog: {}; trying again in 1 s", p,
                 status.to_string());
    takeover.retry_at = Clock::now() + std::chrono::seconds(1);
    return true;
  }
  if (status.code == changelog::ChangelogErrc::kFenced) {
    // Another instance's restore claimed the partition after ours: it is that one's now.
    spdlog::error("restoring partition {}: another owner fenced it ({}); not processing it here", p,
                  status.to_string());
    restoring.erase(p);
    publish_restoring();
    return true;
  }
  return fail("restoring partition " + std::to_string(p) +
              " from the changelog: " + status.to_string());
}

// The partition's state is in the store: its products' deferred events go through the
// aggregator (as after a crash), and its input resumes where the restored state ends.
bool AggregatorStage::Impl::restored(std::int32_t p, const Takeover& takeover) {
  const PartitionRestoreStats& stats = takeover.restore->stats;
  const std::set<std::int32_t> only{p};
  if (store::Status s = recover(&only); !s.ok()) {
    return fail("replaying the arrival log of restored partition " + std::to_string(p) + ": " +
                s.to_string());
  }
  if (!state_intact()) return false;
  std::vector<store::InputOffset> offsets;
  if (store::Status s = store.load_offsets(&offsets); !s.ok()) {
    return fail("load offsets: " + s.to_string());
  }
  std::int64_t next = -1;
  for (const auto& o : offsets) {
    if (o.topic == config.topic && o.partition == p) next = o.next_offset;
  }
  if (!stored_offsets_valid || next < 0) next = 0;
  const ingest::TopicPartition tp{config.topic, p};
  if (auto s = consumer->seek(tp, next, kSeekTimeout); !s.ok()) {
    return fail("seek partition " + std::to_string(p) + " to " + std::to_string(next) +
                " after its restore: " + s.to_string());
  }
  if (auto s = consumer->resume(std::span(&tp, 1)); !s.ok()) {
    return fail("resume partition " + std::to_string(p) + ": " + s.to_string());
  }
  active.insert(p);
  positions[{config.topic, p}] = next;
  if (wave) {
    ++wave->partitions;
    wave->records += stats.stats.records_applied;
  }
  first_batch_due[p] = FirstBatchDue{takeover.assigned, stats.seconds, stats.warm};
  spdlog::info(
      "partition {} restored ({}) in {:.3f} s: {} changelog messages read, {} records applied "
      "in {} batches, {} discarded, {} ignored; input resumes at {}, {:.3f} s after the "
      "assignment",
      p, stats.warm ? "warm" : "cold", stats.seconds, stats.stats.messages_read,
      stats.stats.records_applied, stats.stats.batches_applied, stats.stats.records_discarded,
      stats.stats.records_ignored, next,
      std::chrono::duration<double>(Clock::now() - takeover.assigned).count());
  return true;
}

void AggregatorStage::Impl::took_over(std::int32_t p) {
  const FirstBatchDue due = first_batch_due.at(p);
  first_batch_due.erase(p);
  spdlog::info(
      "partition {} taken over ({}): first batch committed {:.3f} s after the assignment "
      "(restore {:.3f} s)",
      p, due.warm ? "warm" : "cold",
      std::chrono::duration<double>(Clock::now() - due.assigned).count(), due.restore_seconds);
}

void AggregatorStage::Impl::settle_fenced() {
  std::set<std::int32_t> fenced;
  {
    std::lock_guard lock(fenced_mutex);
    fenced.swap(fenced_in_commit);
  }
  if (fenced.empty()) return;
  std::vector<ingest::TopicPartition> stopped;
  for (std::int32_t p : fenced) {
    active.erase(p);
    restoring.erase(p);
    first_batch_due.erase(p);
    positions.erase({config.topic, p});
    stopped.push_back({config.topic, p});
  }
  if (auto s = consumer->pause(stopped); !s.ok()) {
    spdlog::warn("pausing fenced partitions: {}", s.to_string());
  }
  reset_due = true;
  publish_restoring();
}

bool AggregatorStage::Impl::checkpoint_owned(std::string_view why) {
  if (!finish_commit()) return false;
  if (checkpoint_rounds.unsaved_events() == 0) return true;
  return commit_checkpoint(why).has_value();
}

// The products of partitions given up may hold state that is not this instance's any more
// (a fenced batch) or that a later restore replaces: a fresh aggregator loads what it needs
// from the store, and the active partitions' deferred events are replayed as after a crash.
bool AggregatorStage::Impl::reset_aggregator() {
  if (!finish_commit()) return false;
  reset_due = false;
  aggregator = make_aggregator();
  checkpoint_rounds = CheckpointRounds(config.checkpoint_batches);
  if (store::Status s = recover(&active); !s.ok()) {
    return fail("rebuilding the aggregator state: " + s.to_string());
  }
  return state_intact();
}

}  // namespace painpoint::service

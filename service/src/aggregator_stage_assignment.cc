// The Kafka cluster id, partition assignment and revocation, stored positions and lag.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "aggregator_stage_impl.h"

namespace painpoint::service {

namespace {
// Partitions restored side by side at start.
constexpr std::int32_t kRestoreThreads = 16;
// Attempts per partition when the broker fails (kKafka, kTimedOut).
constexpr int kRestoreAttempts = 10;
}  // namespace

ingest::Status AggregatorStage::Impl::resolve_cluster() {
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

// One instance holds every partition (docs/adr-005-scale-out.md, item 3 moves this to the
// assignment): each is restored before the consumer joins the group, so no poll interval runs
// out meanwhile, and the offsets restored with the state are the ones on_assign() seeks to.
ingest::Status AggregatorStage::Impl::restore_from_changelog() {
  if (!config.changelog) return ingest::Status::Ok();
  const auto started = Clock::now();
  changelogs =
      std::make_unique<PartitionChangelogs>(*config.changelog, store, config.outbox_deletions);
  {
    std::lock_guard lock(detail_mutex);
    start_detail = "restoring " + std::to_string(config.changelog_partitions) +
                   " partitions from the changelog";
  }
  // Partitions side by side: each restore waits mostly for the broker (a new idempotent
  // producer's id, the fence and the marker round trips), about 0.4 s for an empty partition.
  std::atomic<std::int32_t> next{0};
  std::atomic<std::int64_t> applied{0};
  std::mutex failure_mutex;
  std::optional<std::string> failure;
  const auto work = [&] {
    for (std::int32_t p = next++; p < config.changelog_partitions; p = next++) {
      auto restored = changelogs->restore(p, stop_requested);
      // A broker that has just (re)started answers "not leader" for a while; a restore that
      // stopped part way is run again from the same checkpoint (applying is idempotent).
      for (int attempt = 1; !restored.ok() && attempt < kRestoreAttempts && !stop_requested &&
                            (restored.status().code == changelog::ChangelogErrc::kKafka ||
                             restored.status().code == changelog::ChangelogErrc::kTimedOut);
           ++attempt) {
        spdlog::warn("restoring partition {} from the changelog: {}; trying again in 1 s", p,
                     restored.status().to_string());
        std::this_thread::sleep_for(std::chrono::seconds(1));
        restored = changelogs->restore(p, stop_requested);
      }
      if (!restored.ok()) {
        std::lock_guard lock(failure_mutex);
        if (!failure) {
          failure = "restoring partition " + std::to_string(p) +
                    " from the changelog: " + restored.status().to_string();
        }
        next = config.changelog_partitions;  // the others stop after their current partition
        return;
      }
      applied += restored->stats.records_applied;
      spdlog::debug(
          "changelog partition {}: {} restore, {} messages read, {} records applied in {} "
          "batches, {} discarded, {} ignored, {:.3f} s; input resumes at {}",
          p, restored->warm ? "warm" : "cold", restored->stats.messages_read,
          restored->stats.records_applied, restored->stats.batches_applied,
          restored->stats.records_discarded, restored->stats.records_ignored, restored->seconds,
          restored->next_input_offset);
    }
  };
  std::vector<std::thread> threads;
  const std::int32_t count = std::min(kRestoreThreads, config.changelog_partitions);
  for (std::int32_t i = 0; i < count; ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (failure) return ingest::Status::Error(ingest::KafkaErrc::kOther, *failure);
  if (store::Status s = store.reload_counters(); !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
  }
  spdlog::info(
      "restored {} partitions from the changelog in {:.2f} s: {} records applied; "
      "store holds {} events",
      config.changelog_partitions, std::chrono::duration<double>(Clock::now() - started).count(),
      applied.load(), store.event_count());
  return ingest::Status::Ok();
}

std::vector<ingest::StartOffset> AggregatorStage::Impl::on_assign(
    std::span<const ingest::TopicPartition> partitions) {
  std::vector<store::InputOffset> offsets;
  if (store::Status s = store.load_offsets(&offsets); !s.ok()) {
    // Starting elsewhere than the stored offsets could skip events, so the stage stops before
    // it processes anything from these partitions (run() checks `failed` after each poll).
    fail("load offsets: " + s.to_string());
    return std::vector<ingest::StartOffset>(partitions.size(), ingest::StartOffset::earliest());
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

void AggregatorStage::Impl::on_revoke(std::span<const ingest::TopicPartition> partitions) {
  // Settle the commit in flight first (a failure is recorded by fail() and stops the loop).
  (void)finish_commit();
  for (const auto& tp : partitions) positions.erase({tp.topic, tp.partition});
  assigned.store(!positions.empty());
}

// Lag from the watermarks the consumer already learned from its fetches: no broker round
// trip on this thread (a blocking query per partition once stalled the stage for seconds per
// batch with 128 partitions), so it is cheap enough for every round. Positions move only once a
// commit succeeded: a batch still in flight counts as lag, so lag 0 means stored.
void AggregatorStage::Impl::refresh_lag(bool polled_empty) {
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

}  // namespace painpoint::service

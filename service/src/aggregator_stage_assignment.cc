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

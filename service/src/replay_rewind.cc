// `painpoint replay rewind`: the aggregator's stored input offsets back to a point in time.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "painpoint/ingest/admin.h"
#include "painpoint/ingest/consumer.h"
#include "painpoint/store/store.h"
#include "product_partitions.h"
#include "replay.h"

namespace painpoint::service {

std::vector<RewindStep> plan_rewind(
    const std::vector<std::pair<std::int32_t, std::int64_t>>& stored,
    const std::vector<PartitionTimeOffset>& lookup) {
  std::map<std::int32_t, std::int64_t> by_partition(stored.begin(), stored.end());
  std::vector<RewindStep> steps;
  for (const PartitionTimeOffset& p : lookup) {
    RewindStep step;
    step.partition = p.partition;
    const auto it = by_partition.find(p.partition);
    if (it == by_partition.end()) {
      // Nothing stored: serve starts this partition from the earliest offset anyway.
      step.target = p.low;
      steps.push_back(step);
      continue;
    }
    step.stored = it->second;
    // No message at or after the time: the partition's end (nothing to re-read there).
    const std::int64_t at = std::clamp(p.first_at_or_after.value_or(p.high), p.low, p.high);
    step.target = std::min(it->second, at);
    step.changed = step.target != it->second;
    steps.push_back(step);
  }
  return steps;
}

namespace {

constexpr auto kTimeout = std::chrono::seconds(15);

// Reads the partitions from their low watermarks and returns, per partition, the first offset
// whose message timestamp is >= `ms` (nullopt when none up to the high watermark). Exact under
// any timestamp order (CreateTime need not grow with the offset), at the cost of reading them.
std::map<std::int32_t, std::optional<std::int64_t>> scan_for_time(
    const RewindOptions& options, const std::map<std::int32_t, PartitionTimeOffset>& partitions,
    std::int64_t ms, std::string* error) {
  std::map<std::int32_t, std::optional<std::int64_t>> found;
  const std::string& topic = options.topic;
  ingest::ConsumerConfig config;
  config.brokers = options.brokers;
  config.extra = options.kafka.for_role(ingest::ClientRole::kConsumer);
  // A group of its own (committing nothing) so that the scan never disturbs serve's group.
  config.group_id = "painpoint-replay-rewind-scan";
  config.client_id = "painpoint-replay-rewind";
  auto consumer = ingest::Consumer::create(config);
  if (!consumer.ok()) {
    *error = consumer.status().to_string();
    return found;
  }
  std::set<std::int32_t> open;  // partitions still being read
  for (const auto& [p, info] : partitions) {
    if (info.high > info.low) open.insert(p);
  }
  const std::vector<std::string> topics = {topic};
  auto s = consumer->subscribe(topics, [&](std::span<const ingest::TopicPartition> assigned) {
    std::vector<ingest::StartOffset> starts;
    for (const auto& tp : assigned) {
      const auto it = partitions.find(tp.partition);
      starts.push_back(it != partitions.end() && open.contains(tp.partition)
                           ? ingest::StartOffset::at(it->second.low)
                           : ingest::StartOffset::latest());
    }
    return starts;
  });
  if (!s.ok()) {
    *error = s.to_string();
    return found;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!open.empty() && std::chrono::steady_clock::now() < deadline) {
    ingest::MessageBatch batch = consumer->poll_batch(10'000, std::chrono::milliseconds(200));
    for (const auto& m : batch) {
      const std::int32_t p = m.partition();
      if (!open.contains(p)) continue;
      if (const auto ts = m.timestamp_ms(); ts && *ts >= ms) {
        found[p] = m.offset();
        open.erase(p);
        continue;
      }
      if (m.offset() + 1 >= partitions.at(p).high) {
        found[p] = std::nullopt;
        open.erase(p);
      }
    }
  }
  (void)consumer->close();
  if (!open.empty()) *error = "timed out reading message timestamps";
  return found;
}

}  // namespace

base::ExitCode run_replay_rewind(const RewindOptions& options) {
  std::unique_ptr<store::Store> store;
  store::StoreOptions store_options;
  store_options.create_if_missing = false;
  store_options.upgrade_rule = store_upgrade_rule(std::nullopt);  // a schema 2 directory
  if (store::Status s = store::Store::open(options.data_dir, store_options, &store); !s.ok()) {
    if (s.code == store::StoreErrc::kLocked) {
      std::cerr << "painpoint replay rewind: " << options.data_dir.string()
                << " is in use by a running painpoint process (stop `painpoint serve` first: it "
                   "resumes from the offsets it holds)\n";
      return base::ExitCode::kStoreLocked;
    }
    std::cerr << "painpoint replay rewind: cannot open " << options.data_dir.string() << ": "
              << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }

  ingest::ConsumerConfig config;
  config.brokers = options.brokers;
  config.group_id = "painpoint-replay-rewind";  // never joined: lookups only
  config.client_id = "painpoint-replay-rewind";
  config.extra = options.kafka.for_role(ingest::ClientRole::kConsumer);
  auto consumer = ingest::Consumer::create(config);
  if (!consumer.ok()) {
    std::cerr << "painpoint replay rewind: " << consumer.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  auto cluster = consumer->cluster_id(kTimeout);
  if (!cluster.ok()) {
    std::cerr << "painpoint replay rewind: " << options.brokers << ": "
              << cluster.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  std::optional<std::string> stored_cluster;
  if (store::Status s = store->kafka_cluster_id(&stored_cluster); !s.ok()) {
    std::cerr << "painpoint replay rewind: " << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  if (stored_cluster && *stored_cluster != *cluster) {
    std::cerr << "painpoint replay rewind: the stored offsets belong to Kafka cluster "
              << *stored_cluster << ", " << options.brokers << " is cluster " << *cluster
              << "; serve re-reads that cluster from its earliest offsets anyway\n";
    return base::ExitCode::kCannotProceed;
  }

  auto admin = ingest::Admin::create({options.brokers, "painpoint-replay-rewind",
                                      options.kafka.for_role(ingest::ClientRole::kAdmin)});
  if (!admin.ok()) {
    std::cerr << "painpoint replay rewind: " << admin.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  auto meta = admin->metadata(kTimeout, options.topic);
  if (!meta.ok() || meta->topics.empty() || !meta->topics.front().error.ok() ||
      meta->topics.front().partitions == 0) {
    std::cerr << "painpoint replay rewind: topic " << options.topic << " not found on "
              << options.brokers << "\n";
    return base::ExitCode::kCannotProceed;
  }
  const int partitions = meta->topics.front().partitions;
  const std::int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(options.to.time_since_epoch()).count();

  std::map<std::int32_t, PartitionTimeOffset> lookup;
  std::vector<ingest::TopicPartitionOffset> query;
  for (std::int32_t p = 0; p < partitions; ++p) {
    auto marks = consumer->query_watermarks(options.topic, p, kTimeout);
    if (!marks.ok()) {
      std::cerr << "painpoint replay rewind: watermarks of " << options.topic << "[" << p
                << "]: " << marks.status().to_string() << "\n";
      return base::ExitCode::kCannotProceed;
    }
    lookup[p] = {p, marks->low, marks->high, std::nullopt};
    query.push_back({options.topic, p, ms});
  }
  std::set<std::int32_t> to_scan;
  if (options.lookup == OffsetLookup::kScan) {
    for (const auto& [p, info] : lookup) to_scan.insert(p);
  } else {
    auto answer = consumer->offsets_for_times(query, kTimeout);
    if (!answer.ok()) {
      std::cerr << "painpoint replay rewind: offsets_for_times: " << answer.status().to_string()
                << "\n";
      return base::ExitCode::kCannotProceed;
    }
    for (const auto& o : *answer) {
      PartitionTimeOffset& info = lookup[o.partition];
      // -1: no message at or after the time, by Kafka's definition; librdkafka's mock broker
      // answers -1 for every time, so kAuto checks a -1 on a non-empty partition by reading.
      if (o.offset >= 0) {
        info.first_at_or_after = o.offset;
      } else if (options.lookup == OffsetLookup::kAuto && info.high > info.low) {
        to_scan.insert(o.partition);
      }
    }
  }
  std::size_t scanned = 0;
  if (!to_scan.empty()) {
    std::map<std::int32_t, PartitionTimeOffset> subset;
    for (std::int32_t p : to_scan) subset[p] = lookup[p];
    std::string error;
    const auto found = scan_for_time(options, subset, ms, &error);
    if (!error.empty()) {
      std::cerr << "painpoint replay rewind: reading timestamps: " << error << "\n";
      return base::ExitCode::kCannotProceed;
    }
    for (const auto& [p, offset] : found) lookup[p].first_at_or_after = offset;
    scanned = to_scan.size();
  }

  std::vector<store::InputOffset> offsets;
  if (store::Status s = store->load_offsets(&offsets); !s.ok()) {
    std::cerr << "painpoint replay rewind: " << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  std::vector<std::pair<std::int32_t, std::int64_t>> stored;
  for (const auto& o : offsets) {
    if (o.topic == options.topic) stored.emplace_back(o.partition, o.next_offset);
  }
  std::vector<PartitionTimeOffset> answers;
  for (const auto& [p, info] : lookup) answers.push_back(info);
  const std::vector<RewindStep> plan = plan_rewind(stored, answers);

  store::CommitBatch batch;
  std::int64_t rewound = 0;
  for (const RewindStep& step : plan) {
    if (!step.changed) continue;
    batch.offsets.push_back({options.topic, step.partition, step.target});
    rewound += *step.stored - step.target;
    std::printf("  %s[%d]: %lld -> %lld\n", options.topic.c_str(), step.partition,
                static_cast<long long>(*step.stored), static_cast<long long>(step.target));
  }
  if (!options.dry_run && !batch.offsets.empty()) {
    if (store::Status s = store->commit(batch); !s.ok()) {
      std::cerr << "painpoint replay rewind: " << s.to_string() << "\n";
      return base::ExitCode::kFailed;
    }
  }
  std::printf(
      "rewind: %zu of %d partitions of %s moved back, %lld messages to re-read (%zu partitions "
      "looked up by reading timestamps)%s\n",
      batch.offsets.size(), partitions, options.topic.c_str(), static_cast<long long>(rewound),
      scanned, options.dry_run ? " [dry run: nothing written]" : "");
  std::fflush(stdout);
  return base::ExitCode::kOk;
}

}  // namespace painpoint::service

// The aggregator stage's restore and append of each partition's changelog.
#include "partition_changelog.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <future>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "painpoint/store/keys.h"

namespace painpoint::service {
namespace {

using changelog::ChangelogErrc;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kRangeFamilyPrefix = "range:";
// Above every key the store writes in a partition (be64 numbers, ids): the end of a rewritten
// range deletion that covers everything from its start.
constexpr std::string_view kPastEveryKey = "\xff\xff\xff\xff\xff\xff\xff\xff\xff";

changelog::Status store_failure(std::string_view what, const store::Status& s) {
  return changelog::Status::Error(ChangelogErrc::kApplyFailed,
                                  std::string(what) + ": " + s.to_string());
}

bool parse_int(std::string_view text, std::int64_t* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

// Space-separated: version, changelog offset, epoch, batch, next input offset, cluster id (or
// "-"), then name=value counters. Kafka cluster ids are URL-safe base64: no spaces.
std::string encode_checkpoint(const changelog::Checkpoint& checkpoint) {
  std::string out = "1 " + std::to_string(checkpoint.next_changelog_offset) + " " +
                    std::to_string(checkpoint.epoch) + " " +
                    std::to_string(checkpoint.batch_sequence) + " " +
                    std::to_string(checkpoint.state.next_input_offset) + " " +
                    (checkpoint.state.cluster_id.empty() ? "-" : checkpoint.state.cluster_id);
  for (const auto& [name, value] : checkpoint.state.counters) {
    out += " " + name + "=" + std::to_string(value);
  }
  return out;
}

std::optional<changelog::Checkpoint> decode_checkpoint(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> fields;
  for (std::string field; in >> field;) fields.push_back(std::move(field));
  changelog::Checkpoint cp;
  std::int64_t version = 0;
  if (fields.size() < 6 || !parse_int(fields[0], &version) || version != 1 ||
      !parse_int(fields[1], &cp.next_changelog_offset) || !parse_int(fields[2], &cp.epoch) ||
      !parse_int(fields[3], &cp.batch_sequence) ||
      !parse_int(fields[4], &cp.state.next_input_offset)) {
    return std::nullopt;
  }
  if (fields[5] != "-") cp.state.cluster_id = fields[5];
  for (std::size_t i = 6; i < fields.size(); ++i) {
    const auto eq = fields[i].find('=');
    std::int64_t value = 0;
    if (eq == std::string::npos || !parse_int(std::string_view(fields[i]).substr(eq + 1), &value)) {
      return std::nullopt;
    }
    cp.state.counters[fields[i].substr(0, eq)] = value;
  }
  return cp;
}

changelog::Record to_record(const store::PreparedWrite& write) {
  changelog::Record record{std::string(write.family), std::string(write.key), std::nullopt};
  switch (write.kind) {
    case store::WriteKind::kPut:
      record.value = std::string(write.value);
      break;
    case store::WriteKind::kDelete:
      break;
    case store::WriteKind::kDeleteRange:
      record.family = std::string(kRangeFamilyPrefix) + record.family;
      record.value = std::string(write.value);
      break;
  }
  return record;
}

void append_records(const store::PreparedWrite& write, std::vector<changelog::Record>& out) {
  if (write.kind != store::WriteKind::kDeleteRange || write.family != store::kArrivalLogFamily) {
    out.push_back(to_record(write));
    return;
  }
  const std::optional<std::uint64_t> from = store::keys::read_be64(write.key);
  const std::optional<std::uint64_t> to = store::keys::read_be64(write.value);
  if (!from || !to || write.key.size() != 8 || write.value.size() != 8) {
    out.push_back(to_record(write));
    return;
  }
  for (std::uint64_t arrival = *from; arrival < *to; ++arrival) {
    std::string key;
    store::keys::append_be64(key, arrival);
    out.push_back({std::string(store::kArrivalLogFamily), std::move(key), std::nullopt});
  }
}

store::PreparedWrite to_prepared_write(const changelog::Record& record) {
  store::PreparedWrite write;
  write.family = record.family;
  write.key = record.key;
  if (write.family.starts_with(kRangeFamilyPrefix)) {
    write.family.remove_prefix(kRangeFamilyPrefix.size());
    write.kind = store::WriteKind::kDeleteRange;
    write.value = record.value ? std::string_view(*record.value) : std::string_view();
  } else if (record.value) {
    write.kind = store::WriteKind::kPut;
    write.value = *record.value;
  } else {
    write.kind = store::WriteKind::kDelete;
  }
  return write;
}

PartitionChangelogs::PartitionChangelogs(changelog::ChangelogConfig config, store::Store& store,
                                         OutboxDeletions* deletions)
    : config_(std::move(config)), store_(store), deletions_(deletions) {}

changelog::Result<std::unique_ptr<PartitionRestore>> PartitionChangelogs::begin_restore(
    std::int32_t p) {
  const auto started = Clock::now();
  PartitionRestoreStats out;
  out.partition = p;
  std::optional<std::string> stored;
  if (store::Status s = store_.local_record(p, kChangelogCheckpointRecord, &stored); !s.ok()) {
    return store_failure("read the changelog checkpoint", s);
  }
  changelog::Checkpoint from;
  bool cleared = false;  // this restore begins on an empty partition
  if (stored) {
    auto decoded = decode_checkpoint(*stored);
    if (!decoded) {
      return changelog::Status::Error(
          ChangelogErrc::kCorrupt,
          "undecodable changelog checkpoint of partition " + std::to_string(p) + ": " + *stored);
    }
    from = *decoded;
    out.warm = from.next_changelog_offset >= 0;
  } else {
    bool present = false;
    if (store::Status s = store_.partition_present(p, &present); !s.ok()) {
      return store_failure("look for the partition", s);
    }
    if (present) {
      return changelog::Status::Error(
          ChangelogErrc::kInvalidArgument,
          "the data directory holds records of partition " + std::to_string(p) +
              " written without the changelog, which does not have them: start with "
              "changelog.enabled = false, or on an empty data directory and `painpoint replay "
              "emit` this one's events");
    }
    // A cold restore starts from a cleared partition and says so locally first: a restart
    // during it restores from the beginning again (applying is idempotent).
    if (store::Status s = store_.drop_partition(p); !s.ok()) {
      return store_failure("clear the partition", s);
    }
    cleared = true;
    if (store::Status s =
            store_.put_local_record(p, kChangelogCheckpointRecord, encode_checkpoint(from));
        !s.ok()) {
      return store_failure("store the changelog checkpoint", s);
    }
  }
  auto producer = shared_producer();
  if (!producer.ok()) return producer.status();
  auto consumer = shared_consumer();
  if (!consumer.ok()) return consumer.status();
  auto restorer = changelog::ChangelogRestorer::create(config_, p, from, *producer, *consumer);
  if (!restorer.ok()) return restorer.status();
  return std::make_unique<PartitionRestore>(PartitionRestore{
      .stats = std::move(out), .started = started, .restorer = std::move(restorer).value(),
      .arrivals = RestoredArrivals(cleared)});
}

changelog::Result<bool> PartitionChangelogs::step_restore(PartitionRestore& restore,
                                                          std::size_t max_messages,
                                                          std::chrono::milliseconds wait) {
  if (restore.done) return true;
  const std::int32_t p = restore.stats.partition;
  const changelog::ApplyBatch apply = [this, p,
                                       &restore](std::span<const changelog::Record> records) {
    std::vector<store::PreparedWrite> restored;
    restored.reserve(records.size());
    for (const auto& r : records) restored.push_back(to_prepared_write(r));
    std::vector<store::PreparedWrite> writes;
    writes.reserve(restored.size());
    restore.arrivals.filter(restored, writes);
    if (store::Status s = store_.apply_partition_writes(p, writes); !s.ok()) {
      return store_failure("apply a restored batch", s);
    }
    return changelog::Status::Ok();
  };
  auto done = restore.restorer.step(apply, max_messages, wait);
  if (!done.ok()) return done.status();
  if (!*done) return false;
  // Before the uncommitted keys are read back and the checkpoint says the partition is restored.
  if (const auto held = restore.arrivals.held(); !held.empty()) {
    if (store::Status s = store_.apply_partition_writes(p, held); !s.ok()) {
      return store_failure("apply the restored arrival log", s);
    }
  }
  restore.arrivals.clear();
  const changelog::RestoreResult restored = restore.restorer.result();
  auto writer = std::move(restore.restorer).into_writer();
  if (!writer.ok()) return writer.status();
  if (changelog::Status s = rewrite_uncommitted(p, restored, *writer); !s.ok()) return s;
  if (store::Status s = store_.put_local_record(p, kChangelogCheckpointRecord,
                                                encode_checkpoint(writer->checkpoint()));
      !s.ok()) {
    return store_failure("store the changelog checkpoint", s);
  }
  {
    std::lock_guard lock(restored_mutex_);
    states_[p] = writer->checkpoint().state;
    writers_.insert_or_assign(p, std::move(*writer));
  }
  restore.stats.stats = restored.stats;
  restore.stats.next_input_offset = restored.checkpoint.state.next_input_offset;
  restore.stats.seconds = std::chrono::duration<double>(Clock::now() - restore.started).count();
  restore.done = true;
  return true;
}

void PartitionChangelogs::drop(std::int32_t p) {
  std::lock_guard lock(restored_mutex_);
  writers_.erase(p);
  states_.erase(p);
}

bool PartitionChangelogs::owns(std::int32_t p) const {
  std::lock_guard lock(restored_mutex_);
  return writers_.contains(p);
}

changelog::Result<std::shared_ptr<changelog::ChangelogProducer>>
PartitionChangelogs::shared_producer() {
  std::lock_guard lock(restored_mutex_);
  if (!producer_) {
    auto made = changelog::ChangelogProducer::create(config_);
    if (!made.ok()) return made.status();
    producer_ = std::move(made).value();
  }
  return producer_;
}

void PartitionChangelogs::connect() {
  if (auto producer = shared_producer(); !producer.ok()) {
    spdlog::warn("changelog producer: {}; the restores try again", producer.status().to_string());
  }
  if (auto consumer = shared_consumer(); !consumer.ok()) {
    spdlog::warn("changelog consumer: {}; the restores try again", consumer.status().to_string());
  }
}

changelog::Result<std::shared_ptr<changelog::ChangelogConsumer>>
PartitionChangelogs::shared_consumer() {
  std::lock_guard lock(restored_mutex_);
  if (!consumer_) {
    auto made = changelog::ChangelogConsumer::create(config_);
    if (!made.ok()) return made.status();
    consumer_ = std::move(made).value();
  }
  return consumer_;
}

// A record the restore discarded or ignored may be newer on the topic than the committed value
// of its key, and compaction keeps the newest: the local value (or a delete) goes on top.
changelog::Status PartitionChangelogs::rewrite_uncommitted(std::int32_t p,
                                                           const changelog::RestoreResult& restored,
                                                           changelog::ChangelogWriter& writer) {
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<changelog::Record> records;
  for (const changelog::Record& key : restored.stats.uncommitted_keys) {
    if (!seen.insert({key.family, key.key}).second) continue;
    changelog::Record record{key.family, key.key, std::nullopt};
    store::Status s;
    if (std::string_view(key.family).starts_with(kRangeFamilyPrefix)) {
      // A range deletion: one from its start up to the first key still held (or past every key)
      // deletes exactly what the local state lacks there.
      std::optional<std::string> first;
      s = store_.first_partition_key(p, key.family.substr(kRangeFamilyPrefix.size()), key.key,
                                     &first);
      record.value = first ? *first : std::string(kPastEveryKey);
    } else {
      s = store_.partition_record(p, key.family, key.key, &record.value);
    }
    if (!s.ok()) return store_failure("read an uncommitted key", s);
    records.push_back(std::move(record));
  }
  if (records.empty()) return changelog::Status::Ok();
  spdlog::info("changelog partition {}: writing {} keys again that the restore found uncommitted",
               p, records.size());
  return writer.append_batch(records, restored.checkpoint.state);
}

void OutboxDeletions::add(std::span<const store::OutboxPosition> positions) {
  std::lock_guard lock(mutex_);
  positions_.insert(positions_.end(), positions.begin(), positions.end());
}

bool OutboxDeletions::empty() {
  std::lock_guard lock(mutex_);
  return positions_.empty();
}

std::vector<store::OutboxPosition> OutboxDeletions::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(positions_, {});
}

changelog::Status PartitionChangelogs::append(const store::CommitBatch& batch,
                                              store::PreparedCommit& prepared) {
  std::map<std::int32_t, std::vector<changelog::Record>> by_partition;
  const std::vector<store::OutboxPosition> deleted =
      deletions_ != nullptr ? deletions_->take() : std::vector<store::OutboxPosition>{};
  for (const store::OutboxPosition& position : deleted) {
    // Only a restored partition's: the key is its outbox entry's without the prefix.
    if (!writers_.contains(position.partition)) continue;
    std::string key;
    store::keys::append_be64(key, position.sequence);
    by_partition[position.partition].push_back({"outbox", std::move(key), std::nullopt});
  }
  for (const store::PreparedWrite& w : prepared.writes()) {
    if (w.partition == store::kNoPartition) continue;
    append_records(w, by_partition[w.partition]);
  }
  for (const store::InputOffset& o : batch.offsets) {
    if (states_.contains(o.partition)) states_[o.partition].next_input_offset = o.next_offset;
  }
  if (batch.kafka_cluster_id) {
    for (auto& [p, state] : states_) state.cluster_id = *batch.kafka_cluster_id;
  }
  for (const auto& [p, records] : by_partition) {
    if (!writers_.contains(p)) {
      failed_partition_ = p;
      return changelog::Status::Error(
          ChangelogErrc::kState,
          "partition " + std::to_string(p) + " was not restored from the changelog here");
    }
  }
  // Each append waits for its acknowledgements (a few ms of linger and a round trip): side by
  // side, a batch that touches many partitions waits about one of them, not their sum.
  std::vector<std::pair<std::int32_t, std::future<changelog::Status>>> appends;
  appends.reserve(by_partition.size());
  for (const auto& [p, partition_records] : by_partition) {
    changelog::ChangelogWriter& writer = writers_.at(p);
    const changelog::PartitionState& state = states_.at(p);
    // A named reference: Clang before 16 does not capture structured bindings.
    const std::vector<changelog::Record>& records = partition_records;
    appends.emplace_back(p, std::async(std::launch::async, [&writer, &records, &state] {
                           return writer.append_batch(records, state);
                         }));
  }
  changelog::Status first_failure = changelog::Status::Ok();
  fenced_.clear();
  appended_.clear();
  bool only_fenced = true;
  for (auto& [p, future] : appends) {
    changelog::Status s = future.get();
    if (s.ok()) {
      appended_.insert(p);
      continue;
    }
    if (s.code == ChangelogErrc::kFenced) {
      fenced_.insert(p);
    } else {
      only_fenced = false;
    }
    // A fenced partition names the cause best; otherwise the first failure.
    if (first_failure.ok() || s.code == ChangelogErrc::kFenced) {
      failed_partition_ = p;
      first_failure = std::move(s);
    }
  }
  if (!first_failure.ok()) {
    if (!only_fenced) {
      fenced_.clear();
    } else {
      // Another owner has these partitions now: this instance stops writing them.
      for (std::int32_t p : fenced_) drop(p);
    }
    return first_failure;
  }
  return add_checkpoints(prepared);
}

changelog::Status PartitionChangelogs::add_checkpoints(store::PreparedCommit& prepared) const {
  for (std::int32_t p : appended_) {
    if (store::Status s = store_.add_local_record(&prepared, p, kChangelogCheckpointRecord,
                                                  encode_checkpoint(writers_.at(p).checkpoint()));
        !s.ok()) {
      return store_failure("add the changelog checkpoint", s);
    }
  }
  return changelog::Status::Ok();
}

}  // namespace painpoint::service

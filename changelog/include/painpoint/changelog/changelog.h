#pragma once

// The aggregator changelog: every committed write of one partition of
// painpoint.feedback-by-product, appended to the same partition of the compacted topic
// painpoint.aggregator-changelog, and the restore that rebuilds a partition's state from it.
// Record format, epochs and what the fencing guarantees: changelog/README.md.
//
// This header does not include rdkafka.h; the librdkafka handles live in changelog/src/.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "painpoint/changelog/status.h"
#include "painpoint/ingest/admin.h"
#include "painpoint/ingest/client_settings.h"
#include "painpoint/ingest/topics.h"

namespace painpoint::changelog {

using namespace std::chrono_literals;

namespace detail {
class PartitionAppender;
class PartitionReader;
}  // namespace detail


// One store write: `family` names the store's key space (a column family, say), `key` the key in
// it; no value is a delete (a tombstone on the changelog). A family is non-empty and holds no NUL.
struct Record {
  std::string family;
  std::string key;
  std::optional<std::string> value;
  friend bool operator==(const Record&, const Record&) = default;
};

// What a batch marker carries besides its epoch: where the partition's input resumes, the
// partition's own counters (arrival numbers, outbox sequence, ...) and the cluster the input
// offset belongs to.
struct PartitionState {
  std::int64_t next_input_offset = -1;  // -1: none yet
  std::string cluster_id;
  std::map<std::string, std::int64_t> counters;
  friend bool operator==(const PartitionState&, const PartitionState&) = default;
};

// Where a partition's changelog was read or written up to, with the state at that point. A
// local store keeps it with the data it describes (in the same write) and restores from it.
struct Checkpoint {
  std::int64_t next_changelog_offset = -1;  // -1: read from the beginning
  std::int64_t epoch = 0;                   // owner epoch of the lineage at that point
  std::int64_t batch_sequence = 0;          // the last committed batch of `epoch` (0: none)
  PartitionState state;
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

struct ChangelogConfig {
  std::string brokers;
  std::string topic = std::string(ingest::kTopicChangelog);
  // The operator's librdkafka properties (`kafka.*` keys): TLS, SASL, timeouts. The producer
  // keeps idempotence, acks=all and the partition choice for itself.
  ingest::ClientSettings clients;
  // How long append_batch() and the restore's own markers wait for acknowledgements.
  std::chrono::milliseconds ack_timeout{30'000};
};

// One idempotent producer (acks=all) that the writers and restores of many partitions share:
// one producer id, one set of librdkafka threads, and one produce request per broker carrying the
// batches of every partition appended at the same time. Each writer still waits for its own
// records only, and order holds per partition (a partition is appended by one writer at a time).
//
// A fatal error of the producer (an idempotence guarantee librdkafka cannot keep: the broker
// lost acknowledged records, a sequence gap it cannot repair) fails every partition's batch in
// flight and every later append: each writer on it then refuses more (kState), and every
// partition must be restored with a new producer (changelog/README.md, "One shared producer").
// Thread safety: all of it; writers on it append side by side.
class ChangelogProducer {
 public:
  [[nodiscard]] static Result<std::shared_ptr<ChangelogProducer>> create(
      const ChangelogConfig& config);
  ChangelogProducer(const ChangelogProducer&) = delete;
  ChangelogProducer& operator=(const ChangelogProducer&) = delete;
  ~ChangelogProducer();

  // kKafka with librdkafka's reason once the producer failed fatally; OK before.
  Status fatal_error() const;

  struct Impl;

 private:
  friend class detail::PartitionAppender;
  explicit ChangelogProducer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One group-less consumer of the changelog topic that the restores of many partitions share:
// one connection and set of librdkafka threads, and one fetch request per broker for every
// partition being read, instead of a client per restore (whose start-up, 16 side by side, took
// most of a warm restore's time). Each restore still reads its own partition's queue.
// Thread safety: all of it; restores of different partitions read side by side.
class ChangelogConsumer {
 public:
  [[nodiscard]] static Result<std::shared_ptr<ChangelogConsumer>> create(
      const ChangelogConfig& config);
  ChangelogConsumer(const ChangelogConsumer&) = delete;
  ChangelogConsumer& operator=(const ChangelogConsumer&) = delete;
  ~ChangelogConsumer();

  struct Impl;

 private:
  friend class detail::PartitionReader;
  explicit ChangelogConsumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Appends the batches of one partition. Built from the Checkpoint a restore returned (that
// restore fenced every earlier owner); append_batch() blocks until the broker acknowledged every
// record of the batch and its marker (idempotent producer, acks=all), so that the caller commits
// locally only what the changelog holds.
//
// Fencing: the writer expects its records right behind its previous marker. Any other record in
// between means another writer appended to the partition (a new owner's restore): append_batch
// then returns kFenced. The batch it had written carries the old epoch and lies behind the new
// owner's fence, so every restore ignores it. The writer learns this only after writing that one
// batch; see the README for what compaction can still do with such records.
// After any failed append the writer refuses further batches (kState): restore first.
//
// Thread safety: one thread at a time.
class ChangelogWriter {
 public:
  // On `producer` when given (shared with other partitions' writers), else on a producer of its
  // own.
  [[nodiscard]] static Result<ChangelogWriter> create(
      const ChangelogConfig& config, std::int32_t partition, const Checkpoint& restored,
      std::shared_ptr<ChangelogProducer> producer = nullptr);
  ChangelogWriter(ChangelogWriter&&) noexcept;
  ChangelogWriter& operator=(ChangelogWriter&&) noexcept;
  ~ChangelogWriter();

  Status append_batch(std::span<const Record> records, const PartitionState& state);
  // After the last successful append_batch (or the restore): keep it with the local commit.
  const Checkpoint& checkpoint() const;

  struct Impl;

 private:
  friend class ChangelogRestorer;  // hands its producer over (into_writer)
  static ChangelogWriter adopt(const ChangelogConfig& config, std::int32_t partition,
                               const Checkpoint& restored, detail::PartitionAppender appender);
  explicit ChangelogWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct RestoreStats {
  std::int64_t messages_read = 0;
  std::int64_t records_applied = 0;
  std::int64_t batches_applied = 0;  // committed batches (several per ApplyBatch call)
  // Records of batches whose marker never came (the previous owner died mid-batch).
  std::int64_t records_discarded = 0;
  // Records and markers of superseded epochs written after a newer owner's fence (zombies).
  std::int64_t records_ignored = 0;
  // The family and key of every discarded or ignored record. Their values on the changelog are
  // not the partition's state: the new owner should write its own value (or a delete) for them
  // before compaction can let them shadow older, committed values of the same keys.
  std::vector<Record> uncommitted_keys;  // values left empty
};

struct RestoreResult {
  Checkpoint checkpoint;  // for the ChangelogWriter and the local store
  RestoreStats stats;
};

// The records of one or more committed batches (those a step() completed), in changelog order:
// applied in order, as one store write, they give the state the batches give one by one. A
// failure stops the restore (the caller restarts it from its last checkpoint: applying puts and
// deletes again is idempotent).
using ApplyBatch = std::function<Status(std::span<const Record> records)>;

// Restores one partition: reads the changelog from a checkpoint (or the beginning) to the high
// watermark, hands every committed batch of the owner lineage to `apply`, drops the unfinished
// tail and everything superseded owners wrote after a newer fence, then claims the partition: a
// fence record with epoch + 1, a read up to that fence (a superseded owner may still have
// appended meanwhile), and a restore marker carrying the state. The result's checkpoint starts
// the new owner's ChangelogWriter.
//
// It works in chunks so that the caller can keep polling its group consumer (with the partition
// paused) between them and is not expelled from the group during a long restore:
//   while (true) { auto done = restorer.step(apply, 10'000, 100ms); if (!done.ok()) ...;
//                  if (*done) break; consumer.poll_batch(...); }
// A checkpoint beyond the partition's end (another cluster, a recreated topic) is refused
// (kInvalidArgument): that local state is not this changelog's.
// Thread safety: one thread at a time.
class ChangelogRestorer {
 public:
  // The fence and the restore marker go through `producer` when given (and so do the batches of
  // into_writer()'s writer), else through a producer of the restorer's own.
  [[nodiscard]] static Result<ChangelogRestorer> create(
      const ChangelogConfig& config, std::int32_t partition, const Checkpoint& from,
      std::shared_ptr<ChangelogProducer> producer = nullptr,
      std::shared_ptr<ChangelogConsumer> consumer = nullptr);
  ChangelogRestorer(ChangelogRestorer&&) noexcept;
  ChangelogRestorer& operator=(ChangelogRestorer&&) noexcept;
  ~ChangelogRestorer();

  // Reads up to `max_messages` changelog messages (waiting at most `wait` for data), applies the
  // batches they complete, and writes the fence and the restore marker when their turn comes.
  // true once the restore is complete (result() is then valid).
  Result<bool> step(const ApplyBatch& apply, std::size_t max_messages,
                    std::chrono::milliseconds wait = 100ms);
  // The whole restore in one call: step() until done.
  Result<RestoreResult> run(const ApplyBatch& apply, std::size_t chunk_messages = 10'000);
  const RestoreResult& result() const;
  // After a complete restore: the writer for the new owner's batches, on the restore's producer
  // (a new idempotent producer first waits for its producer id: 500 ms on the embedded broker;
  // a shared one has it already). kState before the restore is complete.
  Result<ChangelogWriter> into_writer() &&;
  // The changelog offset read up to (the next one to read).
  std::int64_t position() const;

  struct Impl;

 private:
  explicit ChangelogRestorer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Creates the changelog topic (`topic`, normally ingest::kTopicChangelog) where it is missing
// (compacted, with as many partitions as `input_partitions`) and checks it otherwise, with the
// spec and checks of `painpoint topics ensure`.
Result<ingest::TopicCheck> ensure_changelog_topic(ingest::Admin& admin, const std::string& topic,
                                                  int input_partitions,
                                                  std::chrono::milliseconds timeout);

}  // namespace painpoint::changelog

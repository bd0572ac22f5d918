#pragma once

// The aggregator stage's use of the changelog (changelog/README.md; docs/adr-005-scale-out.md,
// item 2): each partition of painpoint.feedback-by-product is restored from its changelog
// partition before it is processed, and every commit hands each partition's writes to that
// partition's ChangelogWriter before the local store writes them, together with the writer's
// Checkpoint (a local record of the partition, so a restart reads only the changelog's tail).
// Every partition's restore and writer append through one shared ChangelogProducer.
//
// Thread safety: begin_restore() and step_restore() of different partitions from several
// threads at once, none during append(); append() from one thread at a time (it appends to the partitions of a
// batch side by side, one thread each).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/changelog/changelog.h"
#include "painpoint/store/store.h"
#include "restored_arrivals.h"

namespace painpoint::service {

// The name of the local record that holds a partition's Checkpoint (Store::put_local_record).
inline constexpr std::string_view kChangelogCheckpointRecord = "changelog-checkpoint";

// A Checkpoint as the local record's value, and back (nullopt: not one).
[[nodiscard]] std::string encode_checkpoint(const changelog::Checkpoint& checkpoint);
[[nodiscard]] std::optional<changelog::Checkpoint> decode_checkpoint(std::string_view text);

// A prepared write of one partition as a changelog Record, and back: a range deletion travels as
// a put in the family `range:<family>` whose value is the range's end.
[[nodiscard]] changelog::Record to_record(const store::PreparedWrite& write);
[[nodiscard]] store::PreparedWrite to_prepared_write(const changelog::Record& record);

// The records of a prepared write: to_record(), except that a range deletion of the arrival log
// travels as a tombstone per arrival number in it. The store cuts the log by ranges from where it
// was last cut; tombstones let the compacted topic drop the entries as it did when they were
// deleted one by one, where a range record would leave every entry on it for good.
void append_records(const store::PreparedWrite& write, std::vector<changelog::Record>& out);

struct PartitionRestoreStats {
  std::int32_t partition = 0;
  bool warm = false;  // from the local checkpoint (only the tail read)
  changelog::RestoreStats stats;
  std::int64_t next_input_offset = -1;
  double seconds = 0;
};

// One partition's restore between PartitionChangelogs::begin_restore() and the step that
// completes it; `stats` are final once `done`.
struct PartitionRestore {
  PartitionRestoreStats stats;
  std::chrono::steady_clock::time_point started;
  changelog::ChangelogRestorer restorer;
  RestoredArrivals arrivals;  // the arrival log's puts, written when the read ends
  bool done = false;
};

// The outbox entries the publisher deleted since the changelog's last append: their deletions
// go to the changelog with the next batch, so that a restore neither brings back (and publishes
// again) every summary ever published nor keeps them on the topic forever. Thread-safe.
class OutboxDeletions {
 public:
  void add(std::span<const store::OutboxPosition> positions);
  [[nodiscard]] std::vector<store::OutboxPosition> take();
  [[nodiscard]] bool empty();

 private:
  std::mutex mutex_;
  std::vector<store::OutboxPosition> positions_;  // guarded by mutex_
};

class PartitionChangelogs {
 public:
  // `deletions` (may be null; outlives this) is drained by each append().
  PartitionChangelogs(changelog::ChangelogConfig config, store::Store& store,
                      OutboxDeletions* deletions);
  // Makes the shared producer and consumer now, before the first assignment, so that the first
  // restores do not wait for their start; what fails is logged and tried again by the restores.
  void connect();

  // Restores a partition into the store in steps, for a caller that keeps polling its group
  // consumer meanwhile: begin_restore() reads the local checkpoint (warm), else clears the
  // partition for a restore from the changelog's beginning (cold; a partition with records but
  // no checkpoint was written without the changelog: refused, kInvalidArgument); each
  // step_restore() reads at most `max_messages` of the changelog and returns true once the
  // partition is restored, the keys the restore reported uncommitted rewritten as a first batch,
  // the checkpoint stored locally and the writer kept. The store's counters are not reloaded:
  // call Store::reload_counters() after the last partition. begin_restore() runs with no
  // commit in flight; begin_restore() and step_restore() of different partitions may run side
  // by side, none during append().
  changelog::Result<std::unique_ptr<PartitionRestore>> begin_restore(std::int32_t partition);
  changelog::Result<bool> step_restore(PartitionRestore& restore, std::size_t max_messages,
                                       std::chrono::milliseconds wait);

  // Forgets partition `partition`'s writer (revoked, or fenced): its appends stop; its local
  // records stay, and its checkpoint lets a later restore read only the tail.
  void drop(std::int32_t partition);
  [[nodiscard]] bool owns(std::int32_t partition) const;

  // Appends each partition's writes of `prepared` (those of kNoPartition, the process-wide
  // records and alerts, stay local) to its changelog, each partition's next input offset from
  // `batch`, and adds the writers' checkpoints to `prepared`. A partition without a writer
  // (not restored here) is kState; kFenced names the partition whose owner changed. When every
  // failed partition was fenced, their writers are dropped and fenced_partitions() lists them;
  // the other partitions of the batch are on their changelogs then, and add_checkpoints() gives
  // a commit prepared again without the fenced ones' writes the checkpoints to store locally.
  changelog::Status append(const store::CommitBatch& batch, store::PreparedCommit& prepared);
  [[nodiscard]] const std::set<std::int32_t>& fenced_partitions() const { return fenced_; }
  [[nodiscard]] changelog::Status add_checkpoints(store::PreparedCommit& prepared) const;

  // Whether the publisher deleted entries the changelog does not know of yet.
  [[nodiscard]] bool deletions_pending() const {
    return deletions_ != nullptr && !deletions_->empty();
  }

  // The partition of the last failed append (for the message).
  [[nodiscard]] std::int32_t failed_partition() const { return failed_partition_; }

 private:
  changelog::Status rewrite_uncommitted(std::int32_t partition,
                                        const changelog::RestoreResult& restored,
                                        changelog::ChangelogWriter& writer);

  // The one producer of every partition's writer and restore, made by the first restore().
  changelog::Result<std::shared_ptr<changelog::ChangelogProducer>> shared_producer();
  // The one consumer every restore reads its partition with, made by the first restore().
  changelog::Result<std::shared_ptr<changelog::ChangelogConsumer>> shared_consumer();

  changelog::ChangelogConfig config_;
  store::Store& store_;
  // Guards the two maps, producer_ and consumer_ during restore()s.
  mutable std::mutex restored_mutex_;
  std::shared_ptr<changelog::ChangelogProducer> producer_;
  std::shared_ptr<changelog::ChangelogConsumer> consumer_;
  std::map<std::int32_t, changelog::ChangelogWriter> writers_;
  std::map<std::int32_t, changelog::PartitionState> states_;
  std::int32_t failed_partition_ = -1;
  std::set<std::int32_t> fenced_;    // of the last append, when only fencing failed it
  std::set<std::int32_t> appended_;  // of the last append: partitions whose batch is on the topic
  OutboxDeletions* deletions_;
};

}  // namespace painpoint::service

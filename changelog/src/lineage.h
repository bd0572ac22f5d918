#pragma once

// Private: the rule that decides, message by message in changelog order, which records belong to
// the partition's state. Every restore applies the same rule, so two restores of the same log
// agree, however far each got before.
//
//  - The lineage epoch starts at the checkpoint's and rises with every accepted fence.
//  - A data record or marker of an epoch below the lineage epoch is ignored: a superseded owner
//    wrote it after a newer owner's fence.
//  - Data records wait until a marker decides about them. A batch marker (epoch E, batch s)
//    commits the waiting records of epoch E up to batch s (earlier markers of E may have been
//    compacted away); a restore marker commits those of the epoch and batch it names. What a
//    marker does not commit is discarded: an unfinished batch.
//  - A fence only raises the lineage epoch; its restore marker, which follows, decides about the
//    records still waiting.
// Committed records are applied in changelog order, several batches per apply call: applying a
// run of committed batches at once gives the state applying them one by one gives.

#include <cstdint>
#include <vector>

#include "codec.h"
#include "painpoint/changelog/changelog.h"

namespace painpoint::changelog::detail {

class LineageReader {
 public:
  explicit LineageReader(const Checkpoint& from);

  // `message` read at `offset`; the records of the batches it completes wait for flush().
  Status on_message(Decoded message, std::int64_t offset);
  // Hands the records of every batch completed since the last flush to `apply` in one call, in
  // changelog order: one store write for a chunk of batches rather than one per batch.
  Status flush(const ApplyBatch& apply);
  // True when a fence of `epoch` would be accepted (no newer owner's fence came first).
  bool accepts_fence(std::int64_t epoch) const { return epoch > lineage_epoch_; }

  std::int64_t lineage_epoch() const { return lineage_epoch_; }
  // The state after the last accepted marker, with the offset behind it.
  const Checkpoint& committed() const { return committed_; }
  RestoreStats& stats() { return stats_; }

 private:
  struct Waiting {
    Record record;
    std::int64_t epoch;
    std::int64_t sequence;
  };
  // Moves the waiting records of `epoch` up to batch `sequence` to settled_ and discards the rest.
  void settle(std::int64_t epoch, std::int64_t sequence);
  void note_uncommitted(Record record);

  Checkpoint committed_;
  std::int64_t lineage_epoch_ = 0;
  std::vector<Waiting> pending_;
  std::vector<Record> settled_;  // committed, not yet flushed; reused between flushes
  RestoreStats stats_;
};

}  // namespace painpoint::changelog::detail

#pragma once

// The copy step of the one-time migration of a schema 2 store into the per-partition layout
// (partition_ranges.h): every record of each partitioned family goes, under its partition's
// prefix (partition_assignment.h), into that family's schema 3 family; the default family's
// product statistics and input offsets move under their partition's meta_prefix(), and every
// partition present gets the process-wide event count and outbox sequence as its own (arrival
// numbers and outbox sequences stay unique and above every existing one in each partition).
//
// Resumable: the schema 2 families are only read, and each chunk is written in one WriteBatch
// with the family's progress (the last key copied) in the default family, so a run after a crash
// continues after that key. The caller then writes the schema version and drops the schema 2
// families; a migration found complete does nothing again.

#include <rocksdb/db.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "partition_assignment.h"
#include "store_internal.h"

namespace painpoint::store::partition_migration {

struct Families {
  // Indexed by Family: the schema 2 families (all of them, kMeta included) ...
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> from{};
  // ... and the schema 3 family of each partitioned one (nullptr for the others).
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> to{};
};

struct CopyLimits {
  std::size_t records_per_batch = 10'000;
  // Stop with Incomplete after this many WriteBatches (0: no limit). Lets a test interrupt the
  // copy where a crash could.
  std::size_t max_batches = 0;
};

struct CopyStats {
  std::uint64_t records = 0;  // records copied by this run
  std::uint64_t batches = 0;  // WriteBatches written by this run
};

// OK once every record is copied (also when an earlier run finished it); Incomplete when
// stopped by max_batches; the assigner's Corruption for a record without a partition.
rocksdb::Status copy(rocksdb::DB& db, const rocksdb::WriteOptions& write, const Families& families,
                     const partition_assignment::PartitionRule& rule, const CopyLimits& limits,
                     CopyStats* stats);

// Adds to `wb` the deletion of the copy's progress keys (default family), for the write that
// ends the migration.
rocksdb::Status add_clear_progress(rocksdb::WriteBatch& wb);

}  // namespace painpoint::store::partition_migration

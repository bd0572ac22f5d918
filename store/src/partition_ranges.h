#pragma once

// The partition-prefixed layout of schema 3 (docs/adr-005-scale-out.md, decision (b);
// store/README.md, "Per-partition layout"): every key of a partitioned family starts with
// keys::partition_prefix(p), and the default family keeps a partition's own records (its
// counters, product statistics and input offset) under meta_prefix(p). One partition is then one
// key range per family, so dropping it is one DeleteRange per family in one WriteBatch, and the
// partitions a store holds are found by seeking from one prefix to the next.

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store_internal.h"

namespace painpoint::store::partition_ranges {

// Whether every key of `family` starts with the partition prefix. Not partitioned: `default`
// (process-wide records, plus meta_prefix() ranges) and `alerts` (its sequence is the API's and
// the webhooks' process-wide cursor; see the README).
[[nodiscard]] constexpr bool is_partitioned(Family family) {
  return family != kMeta && family != kAlerts && family != kFamilyCount;
}

// What every default-family key of a partition's records begins with.
inline constexpr std::string_view kMetaPartitionPrefix = "partition/";
// The default family's key prefix of one partition's records: "partition/" | be16(partition).
[[nodiscard]] std::string meta_prefix(std::int32_t partition);
// meta_prefix(partition) | name.
[[nodiscard]] std::string meta_key(std::int32_t partition, std::string_view name);

// Adds to `wb` the deletion of every record of `partition`: a DeleteRange over its prefix in each
// of `partitioned` (the handles of the is_partitioned() families) and over meta_prefix() in `meta`.
// InvalidArgument for a partition outside keys::valid_partition().
rocksdb::Status add_drop(rocksdb::WriteBatch& wb,
                         std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                         rocksdb::ColumnFamilyHandle* meta, std::int32_t partition);

// The partitions with at least one record in any of `partitioned` or under meta_prefix() in
// `meta`, ascending. Cost: one Seek per partition found and family, plus one per family.
rocksdb::Status present(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                        std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                        rocksdb::ColumnFamilyHandle* meta, std::vector<std::int32_t>* out);

// Whether `partition` has a record in any of `partitioned` or under its meta_prefix() in `meta`.
// Each Seek is bounded by the partition's range: it skips only this partition's deleted keys.
rocksdb::Status has_records(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                            std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                            rocksdb::ColumnFamilyHandle* meta, std::int32_t partition, bool* out);

}  // namespace painpoint::store::partition_ranges

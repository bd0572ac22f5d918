// Store's per-input-partition operations (partition_ranges.h over the store's own families).

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "partition_ranges.h"
#include "store_internal.h"

namespace painpoint::store {
namespace {

// A store below kPartitionedSchemaVersion keeps its keys without the partition prefix: a seek
// for a partition's range would read other records' first bytes as partition numbers.
Status require_partitioned(std::uint32_t schema_version) {
  if (schema_version >= kPartitionedSchemaVersion) return Status::Ok();
  return {StoreErrc::kSchemaMismatch,
          "the store is in schema " + std::to_string(schema_version) +
              ", whose keys carry no input partition (per-partition records begin with schema " +
              std::to_string(kPartitionedSchemaVersion) + ")"};
}

std::vector<rocksdb::ColumnFamilyHandle*> partitioned_families(
    const std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount>& families) {
  std::vector<rocksdb::ColumnFamilyHandle*> out;
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    if (partition_ranges::is_partitioned(static_cast<Family>(f))) out.push_back(families[f]);
  }
  return out;
}

}  // namespace

Status Store::drop_partition(std::int32_t partition) {
  if (Status s = require_partitioned(impl_->schema_version); !s.ok()) return s;
  if (!keys::valid_partition(partition)) {
    return {StoreErrc::kInvalidArgument,
            "partition " + std::to_string(partition) + " is outside the store's partition range"};
  }
  const std::vector<rocksdb::ColumnFamilyHandle*> partitioned =
      partitioned_families(impl_->families);
  rocksdb::WriteBatch wb;
  if (Status s =
          from_rocks(partition_ranges::add_drop(wb, partitioned, impl_->cf(kMeta), partition),
                     "drop partition");
      !s.ok()) {
    return s;
  }
  if (Status s = impl_->write(&wb, "drop partition " + std::to_string(partition)); !s.ok()) {
    return s;
  }
  // The counters follow: the partition's products, arrival numbers and outbox sequence go, and
  // the products' arrival log index (its entries were in the dropped range).
  std::unique_lock lock(impl_->counters_mutex);
  ++impl_->commit_generation;  // a commit prepared before the drop would resurrect counters
  for (auto it = impl_->product_partition.begin(); it != impl_->product_partition.end();) {
    if (it->second != partition) {
      ++it;
      continue;
    }
    if (auto stats = impl_->products.find(it->first); stats != impl_->products.end()) {
      impl_->event_count -= stats->second.event_count();
      impl_->products.erase(stats);
    }
    it = impl_->product_partition.erase(it);
  }
  impl_->arrival_logs.erase(partition);
  impl_->next_arrival.erase(partition);
  impl_->next_outbox_sequence.erase(partition);
  std::erase(impl_->partitions, partition);
  return Status::Ok();
}

Status Store::partitions_present(std::vector<std::int32_t>* out) const {
  if (Status s = require_partitioned(impl_->schema_version); !s.ok()) return s;
  const std::vector<rocksdb::ColumnFamilyHandle*> partitioned =
      partitioned_families(impl_->families);
  const ScopedSnapshot snapshot(impl_->db.get());
  return from_rocks(
      partition_ranges::present(*impl_->db, snapshot.options(), partitioned, impl_->cf(kMeta), out),
      "list partitions");
}

Status Store::partition_present(std::int32_t partition, bool* out) const {
  if (Status s = require_partitioned(impl_->schema_version); !s.ok()) return s;
  const std::vector<rocksdb::ColumnFamilyHandle*> partitioned =
      partitioned_families(impl_->families);
  const ScopedSnapshot snapshot(impl_->db.get());
  return from_rocks(partition_ranges::has_records(*impl_->db, snapshot.options(), partitioned,
                                                  impl_->cf(kMeta), partition, out),
                    "look for partition " + std::to_string(partition));
}

}  // namespace painpoint::store

// The store's side of the aggregator changelog: applying a restored batch of one partition,
// reloading the counters after a restore, and a partition's local records (where its changelog
// was written up to).

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "partition_ranges.h"
#include "rocks_slice.h"
#include "store_internal.h"

namespace painpoint::store {
namespace {

std::optional<Family> family_named(std::string_view name) {
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    if (name == kFamilyNames[f]) return static_cast<Family>(f);
  }
  return std::nullopt;
}

Status require_partition(const Store::Impl& impl, std::int32_t partition) {
  if (impl.schema_version < kPartitionedSchemaVersion || !impl.partitioned) {
    return {StoreErrc::kSchemaMismatch, "per-partition writes need a schema 3 store"};
  }
  if (!keys::valid_partition(partition)) {
    return {StoreErrc::kInvalidArgument,
            "partition " + std::to_string(partition) + " is outside the store's partition range"};
  }
  return Status::Ok();
}

// The key of `key` of partition p in `family`: the partition prefix in a partitioned family,
// the partition's meta range in the default family (alerts have no partition: refused).
std::optional<std::string> partition_key(const Store::Impl& impl, Family family, std::int32_t p,
                                         std::string_view key) {
  if (family == kMeta) return impl.meta_in(p, key);
  if (!partition_ranges::is_partitioned(family)) return std::nullopt;
  return impl.key_in(family, p, key);
}

}  // namespace

Status Store::apply_partition_writes(std::int32_t partition,
                                     std::span<const PreparedWrite> writes) {
  if (Status s = require_partition(*impl_, partition); !s.ok()) return s;
  rocksdb::WriteBatch wb;
  for (const PreparedWrite& w : writes) {
    const std::optional<Family> family = family_named(w.family);
    std::optional<std::string> key;
    if (family) key = partition_key(*impl_, *family, partition, w.key);
    if (!key || (*family == kMeta && w.key.starts_with(kLocalRecordPrefix))) {
      return {
          StoreErrc::kInvalidArgument,
          "a restored write names no partitioned record: family '" + std::string(w.family) + "'"};
    }
    rocksdb::ColumnFamilyHandle* cf = impl_->cf(*family);
    rocksdb::Status built;
    switch (w.kind) {
      case WriteKind::kPut:
        built = wb.Put(cf, *key, slice(w.value));
        break;
      case WriteKind::kDelete:
        built = wb.Delete(cf, *key);
        break;
      case WriteKind::kDeleteRange:
        built = wb.DeleteRange(cf, *key, *partition_key(*impl_, *family, partition, w.value));
        break;
    }
    if (Status s = from_rocks(built, "build restore batch"); !s.ok()) return s;
  }
  return impl_->write(&wb, "restore batch of partition " + std::to_string(partition));
}

Status Store::reload_counters() {
  if (Status s = reload_counters(std::span<const std::int32_t>()); !s.ok()) return s;
  // Takes the lock itself (read_partitions()).
  return impl_->options.read_only ? Status::Ok() : impl_->index_unsaved();
}

Status Store::reload_counters(std::span<const std::int32_t> reindexed) {
  {
    std::unique_lock lock(impl_->counters_mutex);
    ++impl_->commit_generation;  // a commit prepared before the reload would undo it
    impl_->event_count = 0;
    impl_->next_arrival.clear();
    impl_->next_outbox_sequence.clear();
    impl_->products.clear();
    impl_->product_partition.clear();
    impl_->partitions.clear();
    if (Status s = impl_->load_counters(); !s.ok()) return s;
  }
  if (impl_->options.read_only || reindexed.empty()) return Status::Ok();
  return impl_->partitioned ? impl_->index_unsaved_of(reindexed) : impl_->index_unsaved();
}

Status Store::put_local_record(std::int32_t partition, std::string_view name,
                               std::string_view value) {
  if (Status s = require_partition(*impl_, partition); !s.ok()) return s;
  rocksdb::WriteBatch wb;
  if (Status s =
          from_rocks(wb.Put(impl_->cf(kMeta), impl_->meta_in(partition, local_record_name(name)),
                            slice(value)),
                     "build local record");
      !s.ok()) {
    return s;
  }
  return impl_->write(&wb, "local record of partition " + std::to_string(partition));
}

Status Store::partition_record(std::int32_t partition, std::string_view family,
                               std::string_view key, std::optional<std::string>* out) const {
  if (Status s = require_partition(*impl_, partition); !s.ok()) return s;
  const std::optional<Family> f = family_named(family);
  std::optional<std::string> stored_key;
  if (f) stored_key = partition_key(*impl_, *f, partition, key);
  if (!stored_key) {
    return {StoreErrc::kInvalidArgument, "no partitioned family '" + std::string(family) + "'"};
  }
  return impl_->get(*f, *stored_key, out);
}

Status Store::first_partition_key(std::int32_t partition, std::string_view family,
                                  std::string_view from, std::optional<std::string>* out) const {
  if (Status s = require_partition(*impl_, partition); !s.ok()) return s;
  const std::optional<Family> f = family_named(family);
  if (!f || !partition_ranges::is_partitioned(*f)) {
    return {StoreErrc::kInvalidArgument, "no partitioned family '" + std::string(family) + "'"};
  }
  const std::string prefix = keys::partition_prefix(partition);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(*f)));
  it->Seek(slice(impl_->key_in(*f, partition, from)));
  out->reset();
  if (it->Valid() && view(it->key()).starts_with(prefix)) {
    *out = std::string(view(it->key()).substr(prefix.size()));
  }
  return from_rocks(it->status(), "seek in partition " + std::to_string(partition));
}

Status Store::local_record(std::int32_t partition, std::string_view name,
                           std::optional<std::string>* out) const {
  if (Status s = require_partition(*impl_, partition); !s.ok()) return s;
  return impl_->get(kMeta, impl_->meta_in(partition, local_record_name(name)), out);
}

}  // namespace painpoint::store

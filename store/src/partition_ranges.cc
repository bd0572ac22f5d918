#include "partition_ranges.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "painpoint/store/keys.h"

namespace painpoint::store::partition_ranges {
namespace {

// Calls found(p) for each partition with a key in `family` under `outer` | be16(p), ascending:
// a Seek to the start of each next partition's range instead of reading the keys in between.
rocksdb::Status scan_family(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                            rocksdb::ColumnFamilyHandle* family, std::string_view outer,
                            std::vector<std::int32_t>* found) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, family));
  std::string target(outer);
  target += keys::partition_prefix(0);
  for (it->Seek(slice(target)); it->Valid();) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(outer)) break;
    const auto parsed = keys::parse_partitioned_key(key.substr(outer.size()));
    if (!parsed) break;  // the reserved last prefix and anything after it: no partition
    found->push_back(parsed->partition);
    target.assign(outer);
    target += keys::partition_prefix(parsed->partition + 1);
    it->Seek(slice(target));
  }
  return it->status();
}

}  // namespace

std::string meta_prefix(std::int32_t partition) {
  std::string prefix(kMetaPartitionPrefix);
  prefix += keys::partition_prefix(partition);
  return prefix;
}

std::string meta_key(std::int32_t partition, std::string_view name) {
  std::string key = meta_prefix(partition);
  key += name;
  return key;
}

namespace {

// The key range [*begin, *end) of `partition` in the partitioned families.
rocksdb::Status partition_range(std::int32_t partition, std::string* begin, std::string* end) {
  if (!keys::valid_partition(partition)) {
    return rocksdb::Status::InvalidArgument("partition " + std::to_string(partition) +
                                            " is outside the store's partition range");
  }
  *begin = keys::partition_prefix(partition);
  *end = keys::partition_prefix(partition + 1);
  return rocksdb::Status::OK();
}

}  // namespace

rocksdb::Status add_drop(rocksdb::WriteBatch& wb,
                         std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                         rocksdb::ColumnFamilyHandle* meta, std::int32_t partition) {
  std::string begin;
  std::string end;
  if (rocksdb::Status s = partition_range(partition, &begin, &end); !s.ok()) return s;
  for (rocksdb::ColumnFamilyHandle* family : partitioned) {
    if (rocksdb::Status s = wb.DeleteRange(family, begin, end); !s.ok()) return s;
  }
  return wb.DeleteRange(meta, meta_prefix(partition), meta_prefix(partition + 1));
}

rocksdb::Status present(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                        std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                        rocksdb::ColumnFamilyHandle* meta, std::vector<std::int32_t>* out) {
  std::vector<std::int32_t> found;
  for (rocksdb::ColumnFamilyHandle* family : partitioned) {
    if (rocksdb::Status s = scan_family(db, read, family, "", &found); !s.ok()) return s;
  }
  if (rocksdb::Status s = scan_family(db, read, meta, kMetaPartitionPrefix, &found); !s.ok()) {
    return s;
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  *out = std::move(found);
  return rocksdb::Status::OK();
}

namespace {

rocksdb::Status any_in(rocksdb::DB& db, rocksdb::ReadOptions read,
                       rocksdb::ColumnFamilyHandle* family, const std::string& begin,
                       const std::string& end, bool* out) {
  const rocksdb::Slice bound(end);
  read.iterate_upper_bound = &bound;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, family));
  it->Seek(slice(begin));
  *out = it->Valid();
  return it->status();
}

}  // namespace

rocksdb::Status has_records(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                            std::span<rocksdb::ColumnFamilyHandle* const> partitioned,
                            rocksdb::ColumnFamilyHandle* meta, std::int32_t partition, bool* out) {
  *out = false;
  std::string begin;
  std::string end;
  if (rocksdb::Status s = partition_range(partition, &begin, &end); !s.ok()) return s;
  for (rocksdb::ColumnFamilyHandle* family : partitioned) {
    if (rocksdb::Status s = any_in(db, read, family, begin, end, out); !s.ok() || *out) return s;
  }
  return any_in(db, read, meta, meta_prefix(partition), meta_prefix(partition + 1), out);
}

}  // namespace painpoint::store::partition_ranges

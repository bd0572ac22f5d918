#include "partition_migration.h"

#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "painpoint/store/keys.h"
#include "partition_ranges.h"

namespace painpoint::store::partition_migration {
namespace {

// Default family: "migrate-partitions/" | family name -> 'k' | last key copied, or "done".
constexpr std::string_view kProgressPrefix = "migrate-partitions/";
constexpr std::string_view kDone = "done";

std::string progress_key(Family family) {
  std::string key(kProgressPrefix);
  key += kFamilyNames[family];
  return key;
}

class Copier {
 public:
  Copier(rocksdb::DB& db, const rocksdb::WriteOptions& write, const Families& families,
         const partition_assignment::PartitionRule& rule, const CopyLimits& limits,
         CopyStats* stats)
      : db_(db),
        write_(write),
        families_(families),
        assigner_(db, rocksdb::ReadOptions(), families.from, rule),
        limits_(limits),
        stats_(stats) {}

  rocksdb::Status family(Family family) {
    std::optional<std::string> progress;
    if (rocksdb::Status s = read_progress(family, &progress); !s.ok()) return s;
    if (progress == kDone) return rocksdb::Status::OK();
    std::unique_ptr<rocksdb::Iterator> it(
        db_.NewIterator(rocksdb::ReadOptions(), families_.from[family]));
    if (progress) {
      const std::string last = progress->substr(1);
      it->Seek(last);
      if (it->Valid() && it->key() == rocksdb::Slice(last)) it->Next();
    } else {
      it->SeekToFirst();
    }
    rocksdb::WriteBatch wb;
    std::size_t in_batch = 0;
    for (; it->Valid(); it->Next()) {
      const std::string_view key = view(it->key());
      const std::string_view value = view(it->value());
      std::optional<std::int32_t> partition;
      if (rocksdb::Status s = assigner_.partition_of(family, key, value, &partition); !s.ok()) {
        return s;
      }
      if (!partition || !keys::valid_partition(*partition)) {
        return rocksdb::Status::Corruption("a record of " + std::string(kFamilyNames[family]) +
                                           " has no partition");
      }
      if (rocksdb::Status s =
              wb.Put(families_.to[family], keys::partitioned_key(*partition, key), slice(value));
          !s.ok()) {
        return s;
      }
      if (++in_batch == limits_.records_per_batch) {
        if (rocksdb::Status s = finish_batch(wb, family, "k" + std::string(key), in_batch);
            !s.ok()) {
          return s;
        }
        in_batch = 0;
      }
    }
    if (!it->status().ok()) return it->status();
    return finish_batch(wb, family, std::string(kDone), in_batch);
  }

  // Product statistics and input offsets under their partition; the counters per partition.
  rocksdb::Status meta() {
    std::optional<std::string> progress;
    if (rocksdb::Status s = read_progress(kMeta, &progress); !s.ok() || progress == kDone) {
      return s;
    }
    rocksdb::WriteBatch wb;
    std::set<std::int32_t> partitions;
    for (std::string_view prefix : {kProductPrefix, kOffsetPrefix}) {
      if (rocksdb::Status s = move_meta(wb, prefix, &partitions); !s.ok()) return s;
    }
    std::vector<std::int32_t> present;
    std::vector<rocksdb::ColumnFamilyHandle*> partitioned;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (partition_ranges::is_partitioned(static_cast<Family>(f)))
        partitioned.push_back(families_.to[f]);
    }
    if (rocksdb::Status s = partition_ranges::present(db_, rocksdb::ReadOptions(), partitioned,
                                                      db_.DefaultColumnFamily(), &present);
        !s.ok()) {
      return s;
    }
    partitions.insert(present.begin(), present.end());
    for (std::string_view counter : {kEventCountKey, kOutboxSequenceKey}) {
      if (rocksdb::Status s = move_counter(wb, counter, partitions); !s.ok()) return s;
    }
    return finish_batch(wb, kMeta, std::string(kDone), 0);
  }

 private:
  rocksdb::Status read_progress(Family family, std::optional<std::string>* out) const {
    std::string value;
    const rocksdb::Status s = db_.Get(rocksdb::ReadOptions(), progress_key(family), &value);
    if (s.IsNotFound()) return rocksdb::Status::OK();
    if (s.ok()) *out = std::move(value);
    return s;
  }

  // Writes `wb` (holding `copied` copied records) with the family's progress.
  rocksdb::Status finish_batch(rocksdb::WriteBatch& wb, Family family, const std::string& progress,
                               std::size_t copied) {
    if (limits_.max_batches != 0 && stats_->batches == limits_.max_batches) {
      return rocksdb::Status::Incomplete("migration stopped after " +
                                         std::to_string(stats_->batches) + " batches");
    }
    if (rocksdb::Status s = wb.Put(progress_key(family), progress); !s.ok()) return s;
    if (rocksdb::Status s = db_.Write(write_, &wb); !s.ok()) return s;
    stats_->records += copied;
    ++stats_->batches;
    wb.Clear();
    return rocksdb::Status::OK();
  }

  rocksdb::Status move_meta(rocksdb::WriteBatch& wb, std::string_view prefix,
                            std::set<std::int32_t>* partitions) {
    std::unique_ptr<rocksdb::Iterator> it(db_.NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(slice(prefix)); it->Valid() && it->key().starts_with(slice(prefix)); it->Next()) {
      const std::string_view key = view(it->key());
      std::optional<std::int32_t> partition;
      if (rocksdb::Status s = assigner_.partition_of(kMeta, key, view(it->value()), &partition);
          !s.ok()) {
        return s;
      }
      if (!partition || !keys::valid_partition(*partition)) {
        return rocksdb::Status::Corruption("a product or offset record has no partition");
      }
      partitions->insert(*partition);
      if (rocksdb::Status s = wb.Put(partition_ranges::meta_key(*partition, key), it->value());
          !s.ok()) {
        return s;
      }
      if (rocksdb::Status s = wb.Delete(it->key()); !s.ok()) return s;
    }
    return it->status();
  }

  rocksdb::Status move_counter(rocksdb::WriteBatch& wb, std::string_view counter,
                               const std::set<std::int32_t>& partitions) {
    std::string value;
    const rocksdb::Status got = db_.Get(rocksdb::ReadOptions(), slice(counter), &value);
    if (got.IsNotFound()) return rocksdb::Status::OK();
    if (!got.ok()) return got;
    for (std::int32_t partition : partitions) {
      if (rocksdb::Status s = wb.Put(partition_ranges::meta_key(partition, counter), value);
          !s.ok()) {
        return s;
      }
    }
    return wb.Delete(slice(counter));
  }

  rocksdb::DB& db_;
  const rocksdb::WriteOptions& write_;
  const Families& families_;
  partition_assignment::Assigner assigner_;
  const CopyLimits& limits_;
  CopyStats* stats_;
};

}  // namespace

rocksdb::Status copy(rocksdb::DB& db, const rocksdb::WriteOptions& write, const Families& families,
                     const partition_assignment::PartitionRule& rule, const CopyLimits& limits,
                     CopyStats* stats) {
  *stats = {};
  Copier copier(db, write, families, rule, limits, stats);
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    const auto family = static_cast<Family>(f);
    if (!partition_ranges::is_partitioned(family)) continue;
    if (families.to[f] == nullptr) {
      return rocksdb::Status::InvalidArgument(std::string("no schema 3 family for ") +
                                              kFamilyNames[f]);
    }
    if (rocksdb::Status s = copier.family(family); !s.ok()) return s;
  }
  return copier.meta();
}

rocksdb::Status add_clear_progress(rocksdb::WriteBatch& wb) {
  std::string end(kProgressPrefix);
  end.back() += 1;  // the first key after every key with the prefix
  return wb.DeleteRange(slice(kProgressPrefix), end);
}

}  // namespace painpoint::store::partition_migration

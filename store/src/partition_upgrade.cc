#include "partition_upgrade.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "partition_ranges.h"

namespace painpoint::store::partition_upgrade {
namespace {

// The directory's RocksDB with every family it has and a schema 3 family for each partitioned
// one (created when missing); handles destroyed at scope exit.
class UpgradeDb {
 public:
  ~UpgradeDb() {
    for (auto* handle : handles_) {
      const rocksdb::Status ignored = db_->DestroyColumnFamilyHandle(handle);
      (void)ignored;  // closing: nothing left to do about it
    }
  }

  rocksdb::Status open(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    if (rocksdb::Status s = rocksdb::DB::ListColumnFamilies({}, dir.string(), &names); !s.ok()) {
      return s;
    }
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (!partition_ranges::is_partitioned(static_cast<Family>(f))) continue;
      const std::string name = partitioned_family_name(static_cast<Family>(f));
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DBOptions options;
    options.create_missing_column_families = true;
    rocksdb::DB* raw = nullptr;
    if (rocksdb::Status s = rocksdb::DB::Open(options, dir.string(), descriptors, &handles_, &raw);
        !s.ok()) {
      return s;
    }
    db_.reset(raw);
    names_ = std::move(names);
    return rocksdb::Status::OK();
  }

  [[nodiscard]] rocksdb::DB& db() const { return *db_; }
  // nullptr when the directory has no family of that name.
  [[nodiscard]] rocksdb::ColumnFamilyHandle* family(const std::string& name) const {
    const auto it = std::find(names_.begin(), names_.end(), name);
    return it == names_.end() ? nullptr : handles_[static_cast<std::size_t>(it - names_.begin())];
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::string> names_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

rocksdb::Status read_version(rocksdb::DB& db, std::uint32_t* out) {
  std::string value;
  if (rocksdb::Status s = db.Get(rocksdb::ReadOptions(), slice(kSchemaVersionKey), &value);
      !s.ok()) {
    return s;
  }
  const std::optional<std::uint32_t> version = keys::read_be32(value);
  if (!version) return rocksdb::Status::Corruption("undecodable schema version");
  *out = *version;
  return rocksdb::Status::OK();
}

// Steps 2 and 3: the copy, then the version and the end of the progress keys in one write.
rocksdb::Status migrate(const UpgradeDb& db, const partition_assignment::PartitionRule& rule,
                        const UpgradeLimits& limits, UpgradeStats* stats) {
  partition_migration::Families families;
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    const auto family = static_cast<Family>(f);
    families.from[f] = f == kMeta ? db.db().DefaultColumnFamily() : db.family(kFamilyNames[f]);
    if (partition_ranges::is_partitioned(family)) {
      families.to[f] = db.family(partitioned_family_name(family));
    }
    if (families.from[f] == nullptr) {
      return rocksdb::Status::InvalidArgument(std::string("a schema 2 store without family ") +
                                              kFamilyNames[f]);
    }
  }
  const rocksdb::WriteOptions write;
  if (rocksdb::Status s =
          partition_migration::copy(db.db(), write, families, rule, limits.copy, &stats->copy);
      !s.ok()) {
    return s;
  }
  rocksdb::WriteBatch wb;
  std::string version;
  keys::append_be32(version, kPartitionedSchemaVersion);
  if (rocksdb::Status s = wb.Put(slice(kSchemaVersionKey), version); !s.ok()) return s;
  if (rocksdb::Status s = partition_migration::add_clear_progress(wb); !s.ok()) return s;
  return db.db().Write(write, &wb);
}

// Step 4.
rocksdb::Status drop_schema2_families(const UpgradeDb& db, UpgradeStats* stats) {
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    if (!partition_ranges::is_partitioned(static_cast<Family>(f))) continue;
    rocksdb::ColumnFamilyHandle* old = db.family(kFamilyNames[f]);
    if (old == nullptr) continue;
    if (rocksdb::Status s = db.db().DropColumnFamily(old); !s.ok()) return s;
    ++stats->families_dropped;
  }
  return rocksdb::Status::OK();
}

}  // namespace

std::string partitioned_family_name(Family family) {
  return std::string(kFamilyNames[family]) + "@p";
}

rocksdb::Status run(const std::filesystem::path& dir,
                    const partition_assignment::PartitionRule& rule, const UpgradeLimits& limits,
                    UpgradeStats* stats) {
  *stats = {};
  UpgradeDb db;
  if (rocksdb::Status s = db.open(dir); !s.ok()) return s;
  if (rocksdb::Status s = read_version(db.db(), &stats->found_version); !s.ok()) return s;
  if (stats->found_version == kUnpartitionedSchemaVersion) {
    if (rocksdb::Status s = migrate(db, rule, limits, stats); !s.ok()) return s;
    if (limits.stop_before_drop) {
      return rocksdb::Status::Incomplete("upgrade stopped before dropping the schema 2 families");
    }
  } else if (stats->found_version != kPartitionedSchemaVersion) {
    return rocksdb::Status::InvalidArgument(
        "schema version " + std::to_string(stats->found_version) + " is neither 2 nor 3");
  }
  return drop_schema2_families(db, stats);
}

}  // namespace painpoint::store::partition_upgrade

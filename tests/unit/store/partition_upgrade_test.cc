// The schema 2 -> 3 upgrade of a closed directory (store/src/partition_upgrade.h): the families
// it leaves, the version, the progress keys gone, and the same result when interrupted after any
// copy batch or between the version write and the drops.

#include "partition_upgrade.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "painpoint/store/keys.h"
#include "partition_ranges.h"
#include "raw_rocks.h"
#include "schema2_store.h"

namespace painpoint::store {
namespace {

using Dump = std::map<std::string, std::map<std::string, std::string>>;  // family -> key -> value

class PartitionUpgradeTest : public Schema2StoreTest {
 protected:
  void SetUp() override {
    Schema2StoreTest::SetUp();
    write_schema2_store();
  }

  Dump dump() const {
    RawRocks raw(dir_);
    EXPECT_TRUE(raw.open());
    Dump out;
    for (std::size_t i = 0; i < raw.names.size(); ++i) {
      auto& records = out[raw.names[i]];
      std::unique_ptr<rocksdb::Iterator> it(
          raw.db->NewIterator(rocksdb::ReadOptions(), raw.handles[i]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        records[it->key().ToString()] = it->value().ToString();
      }
      EXPECT_TRUE(it->status().ok());
    }
    return out;
  }

  rocksdb::Status upgrade(const partition_upgrade::UpgradeLimits& limits,
                          partition_upgrade::UpgradeStats* stats) const {
    return partition_upgrade::run(dir_, schema2_test_rule(), limits, stats);
  }
};

TEST_F(PartitionUpgradeTest, LeavesTheSchema3FamiliesVersion3AndNoProgress) {
  const Dump before = dump();
  partition_upgrade::UpgradeStats stats;
  const rocksdb::Status s = upgrade({}, &stats);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(stats.found_version, 2u);
  const Dump after = dump();

  std::set<std::string> expected_families = {"default", "alerts"};
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    const auto family = static_cast<Family>(f);
    if (!partition_ranges::is_partitioned(family)) continue;
    expected_families.insert(partition_upgrade::partitioned_family_name(family));
    // Every schema 2 record, under one of the rule's partitions (which one: the migration's test).
    const auto& old_records = before.at(kFamilyNames[f]);
    const auto& new_records = after.at(partition_upgrade::partitioned_family_name(family));
    EXPECT_EQ(new_records.size(), old_records.size()) << kFamilyNames[f];
    for (const auto& [key, value] : new_records) {
      const auto parsed = keys::parse_partitioned_key(key);
      ASSERT_TRUE(parsed.has_value());
      EXPECT_TRUE(parsed->partition == 0 || parsed->partition == 2 || parsed->partition == 300);
      const auto old = old_records.find(std::string(parsed->key));
      ASSERT_NE(old, old_records.end()) << kFamilyNames[f];
      EXPECT_EQ(old->second, value);
    }
  }
  std::set<std::string> families;
  for (const auto& [name, records] : after) families.insert(name);
  EXPECT_EQ(families, expected_families);
  EXPECT_EQ(stats.families_dropped, 9u);
  EXPECT_EQ(after.at("alerts"), before.at("alerts"));

  const auto& meta = after.at("default");
  std::string version;
  keys::append_be32(version, kPartitionedSchemaVersion);
  EXPECT_EQ(meta.at(std::string(kSchemaVersionKey)), version);
  for (const auto& [key, value] : meta) {
    EXPECT_FALSE(key.starts_with("migrate-partitions/")) << key;
  }

  // Found at version 3 with nothing left to drop: nothing changes.
  ASSERT_TRUE(upgrade({}, &stats).ok());
  EXPECT_EQ(stats.found_version, 3u);
  EXPECT_EQ(stats.families_dropped, 0u);
  EXPECT_EQ(dump(), after);
}

// A crash after any copy batch, or after the version write and before the drops: the next run
// finishes with what an uninterrupted run leaves.
TEST_F(PartitionUpgradeTest, AnInterruptedUpgradeFinishesTheSame) {
  const std::filesystem::path pristine = dir_.string() + "-schema2";
  std::filesystem::remove_all(pristine);
  std::filesystem::copy(dir_, pristine, std::filesystem::copy_options::recursive);
  partition_upgrade::UpgradeStats stats;
  ASSERT_TRUE(upgrade({}, &stats).ok());
  const Dump uninterrupted = dump();
  const std::uint64_t batches = stats.copy.batches;
  ASSERT_GT(batches, 9u);  // one or more per family, plus the default family's

  partition_upgrade::UpgradeLimits one_batch;
  one_batch.copy.records_per_batch = 2;
  one_batch.copy.max_batches = 1;
  std::filesystem::remove_all(dir_);
  std::filesystem::copy(pristine, dir_, std::filesystem::copy_options::recursive);
  std::uint64_t runs = 0;
  rocksdb::Status s;
  do {
    s = upgrade(one_batch, &stats);
    ++runs;
  } while (s.IsIncomplete() && runs < 1000);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(runs, batches) << "two records a batch: more batches than with the default size";
  EXPECT_EQ(dump(), uninterrupted);

  partition_upgrade::UpgradeLimits before_drop;
  before_drop.stop_before_drop = true;
  std::filesystem::remove_all(dir_);
  std::filesystem::copy(pristine, dir_, std::filesystem::copy_options::recursive);
  EXPECT_TRUE(upgrade(before_drop, &stats).IsIncomplete());
  EXPECT_TRUE(dump().contains("events")) << "not dropped yet";
  ASSERT_TRUE(upgrade({}, &stats).ok());
  EXPECT_EQ(stats.found_version, 3u);
  EXPECT_EQ(stats.families_dropped, 9u);
  EXPECT_EQ(dump(), uninterrupted);
  std::filesystem::remove_all(pristine);
}

}  // namespace
}  // namespace painpoint::store

// The schema 3 partition ranges (store/src/partition_ranges.h) on a RocksDB with the store's
// partitioned families: which partitions are present, and that dropping one deletes exactly its
// records in every family and in the default family's per-partition range.

#include "partition_ranges.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "painpoint/store/keys.h"
#include "store_dir_test.h"

namespace painpoint::store {
namespace {

using Dump = std::map<std::pair<std::string, std::string>, std::string>;  // (family, key) -> value

// A RocksDB of the default family and the partitioned ones in the test's directory.
class PartitionRangesTest : public StoreDirTest {
 protected:
  void SetUp() override {
    StoreDirTest::SetUp();
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (!partition_ranges::is_partitioned(static_cast<Family>(f))) continue;
      descriptors.emplace_back(kFamilyNames[f], rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.string(), descriptors, &handles_, &raw).ok());
    db_.reset(raw);
    partitioned_.assign(handles_.begin() + 1, handles_.end());
  }
  void TearDown() override {
    for (auto* handle : handles_) EXPECT_TRUE(db_->DestroyColumnFamilyHandle(handle).ok());
    db_.reset();
    StoreDirTest::TearDown();
  }

  rocksdb::ColumnFamilyHandle* meta() const { return handles_[0]; }

  void put(rocksdb::ColumnFamilyHandle* family, const std::string& key, const std::string& value) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), family, key, value).ok());
  }

  // Records of `partition` in every partitioned family (keys that sort first and last within
  // its range among them) and its per-partition records in the default family.
  void fill_partition(std::int32_t partition) {
    const std::string tag = std::to_string(partition);
    for (rocksdb::ColumnFamilyHandle* family : partitioned_) {
      put(family, keys::partitioned_key(partition, ""), "first " + tag);
      put(family, keys::partitioned_key(partition, "event-" + tag), "record " + tag);
      put(family, keys::partitioned_key(partition, std::string(24, '\xff')), "last " + tag);
    }
    put(meta(), partition_ranges::meta_key(partition, "event_count"), "count " + tag);
  }

  Dump dump() const {
    Dump out;
    for (auto* handle : handles_) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handle));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        out[{handle->GetName(), it->key().ToString()}] = it->value().ToString();
      }
      EXPECT_TRUE(it->status().ok());
    }
    return out;
  }

  std::vector<std::int32_t> present() const {
    std::vector<std::int32_t> out;
    const rocksdb::Status s =
        partition_ranges::present(*db_, rocksdb::ReadOptions(), partitioned_, meta(), &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  rocksdb::Status drop(std::int32_t partition) {
    rocksdb::WriteBatch wb;
    if (rocksdb::Status s = partition_ranges::add_drop(wb, partitioned_, meta(), partition);
        !s.ok()) {
      return s;
    }
    return db_->Write(rocksdb::WriteOptions(), &wb);
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::vector<rocksdb::ColumnFamilyHandle*> partitioned_;
};

TEST_F(PartitionRangesTest, ListsThePartitionsHeldInAnyFamily) {
  EXPECT_TRUE(present().empty());
  fill_partition(0);
  fill_partition(1);
  fill_partition(300);
  // A partition with a record in one family only, and one with only its counters.
  put(partitioned_[4], keys::partitioned_key(9, "pp-1"), "summary");
  put(meta(), partition_ranges::meta_key(12, "outbox_next_sequence"), "1");
  // Process-wide records, and a key under the reserved last prefix, belong to no partition.
  put(meta(), "schema_version", "3");
  put(meta(), "product/app", "stats");
  put(partitioned_[0], keys::partition_prefix(keys::kPartitionLimit) + "x", "reserved");
  EXPECT_EQ(present(), (std::vector<std::int32_t>{0, 1, 9, 12, 300}));
}

TEST_F(PartitionRangesTest, DroppingOnePartitionLeavesEveryOtherRecordAsItWas) {
  for (std::int32_t partition : {0, 1, 2, 255, 256}) fill_partition(partition);
  put(meta(), "schema_version", "3");
  put(meta(), "kafka_cluster_id", "cluster");
  const Dump before = dump();

  ASSERT_TRUE(drop(1).ok());
  ASSERT_TRUE(drop(255).ok());

  Dump expected;
  for (const auto& [where, value] : before) {
    const std::string& key = where.second;
    const bool in_dropped = where.first == rocksdb::kDefaultColumnFamilyName
                                ? key.starts_with(partition_ranges::meta_prefix(1)) ||
                                      key.starts_with(partition_ranges::meta_prefix(255))
                                : key.starts_with(keys::partition_prefix(1)) ||
                                      key.starts_with(keys::partition_prefix(255));
    if (!in_dropped) expected.emplace(where, value);
  }
  EXPECT_EQ(dump(), expected);
  // 5 partitions x (9 families x 3 records + 1 counter) + 2 process-wide records, less 2 dropped.
  EXPECT_EQ(expected.size(), 3U * 28U + 2U);
  EXPECT_EQ(present(), (std::vector<std::int32_t>{0, 2, 256}));

  ASSERT_TRUE(drop(1).ok());  // already gone: nothing changes
  EXPECT_EQ(dump(), expected);
}

TEST_F(PartitionRangesTest, RefusesPartitionsOutsideTheRange) {
  EXPECT_TRUE(drop(-1).IsInvalidArgument());
  EXPECT_TRUE(drop(keys::kPartitionLimit).IsInvalidArgument());
  fill_partition(keys::kPartitionLimit - 1);  // the highest partition still has a range
  EXPECT_EQ(present(), (std::vector<std::int32_t>{keys::kPartitionLimit - 1}));
  ASSERT_TRUE(drop(keys::kPartitionLimit - 1).ok());
  EXPECT_TRUE(present().empty());
  EXPECT_TRUE(dump().empty());
}

}  // namespace
}  // namespace painpoint::store

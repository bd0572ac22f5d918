// The copy step of the migration into the per-partition layout (store/src/partition_migration.h)
// on a schema 2 store written by the current Store::commit(): every record under its partition's
// prefix in the schema 3 family, product statistics, offsets and counters per partition, the
// schema 2 families untouched, and a copy interrupted after any batch finishing the same.

#include "partition_migration.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "painpoint/store/keys.h"
#include "partition_ranges.h"
#include "raw_rocks.h"
#include "schema2_store.h"

namespace painpoint::store {
namespace {

using Records = std::map<std::string, std::string>;
constexpr std::string_view kTopic = "painpoint.feedback-by-product";

bool partitioned(std::size_t family) {
  return partition_ranges::is_partitioned(static_cast<Family>(family));
}

class PartitionMigrationTest : public Schema2StoreTest {
 protected:
  // The schema 2 store, with an empty schema 3 family ("<name>@p") beside each partitioned one.
  void SetUp() override {
    Schema2StoreTest::SetUp();
    write_schema2_store();
    RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (!partitioned(f)) continue;
      rocksdb::ColumnFamilyHandle* handle = nullptr;
      ASSERT_TRUE(raw.db
                      ->CreateColumnFamily(rocksdb::ColumnFamilyOptions(),
                                           std::string(kFamilyNames[f]) + "@p", &handle)
                      .ok());
      ASSERT_TRUE(raw.db->DestroyColumnFamilyHandle(handle).ok());
    }
  }

  static partition_migration::Families families_of(const RawRocks& raw) {
    partition_migration::Families families;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      families.from[f] = raw.family(kFamilyNames[f]);
      if (partitioned(f)) families.to[f] = raw.family(std::string(kFamilyNames[f]) + "@p");
    }
    return families;
  }

  static Records dump(const RawRocks& raw, rocksdb::ColumnFamilyHandle* family) {
    Records out;
    std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator(rocksdb::ReadOptions(), family));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out[it->key().ToString()] = it->value().ToString();
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }

  // What each schema 3 family must hold: the schema 2 records under their partition's prefix.
  static std::map<std::size_t, Records> expected_copies(const RawRocks& raw) {
    const partition_migration::Families families = families_of(raw);
    partition_assignment::Assigner assigner(*raw.db, rocksdb::ReadOptions(), families.from,
                                            schema2_test_rule());
    std::map<std::size_t, Records> out;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      if (!partitioned(f)) continue;
      for (const auto& [key, value] : dump(raw, families.from[f])) {
        std::optional<std::int32_t> partition;
        EXPECT_TRUE(assigner.partition_of(static_cast<Family>(f), key, value, &partition).ok());
        out[f][keys::partitioned_key(partition.value_or(-1), key)] = value;
      }
    }
    return out;
  }

  static std::uint64_t count(const std::map<std::size_t, Records>& copies) {
    std::uint64_t n = 0;
    for (const auto& [family, records] : copies) n += records.size();
    return n;
  }

  static rocksdb::Status copy(const RawRocks& raw, const partition_migration::CopyLimits& limits,
                              partition_migration::CopyStats* stats) {
    return partition_migration::copy(*raw.db, rocksdb::WriteOptions(), families_of(raw),
                                     schema2_test_rule(), limits, stats);
  }

  static void expect_migrated(const RawRocks& raw, const std::map<std::size_t, Records>& copies) {
    const partition_migration::Families families = families_of(raw);
    for (const auto& [f, records] : copies) {
      EXPECT_EQ(dump(raw, families.to[f]), records) << kFamilyNames[f];
    }
    const Records meta = dump(raw, families.from[kMeta]);
    using partition_ranges::meta_key;
    // Six events, four summaries published: the next arrival number 6, outbox sequence 5.
    for (std::int32_t partition : {0, 2, 300}) {
      EXPECT_EQ(meta.at(meta_key(partition, kEventCountKey)), be64_value(6));
      EXPECT_EQ(meta.at(meta_key(partition, kOutboxSequenceKey)), be64_value(5));
    }
    EXPECT_TRUE(meta.contains(meta_key(0, product_key("alpha"))));
    EXPECT_TRUE(meta.contains(meta_key(2, product_key("beta"))));
    EXPECT_TRUE(meta.contains(meta_key(300, product_key("gamma"))));
    const std::string offset_2 = std::string(kOffsetPrefix) + keys::offset_key(kTopic, 2);
    EXPECT_EQ(meta.at(meta_key(2, offset_2)), be64_value(2));
    for (std::string_view moved : {std::string_view(kEventCountKey), kOutboxSequenceKey,
                                   std::string_view(offset_2), std::string_view("product/beta")}) {
      EXPECT_FALSE(meta.contains(std::string(moved))) << moved;
    }
    EXPECT_TRUE(meta.contains(std::string(kSchemaVersionKey)));
  }
};

TEST_F(PartitionMigrationTest, CopiesEveryRecordUnderItsPartitionAndDropsOneCleanly) {
  RawRocks raw(dir_);
  ASSERT_TRUE(raw.open());
  const std::map<std::size_t, Records> copies = expected_copies(raw);
  std::map<std::size_t, Records> before;
  for (std::size_t f = 1; f < kFamilyCount; ++f) before[f] = dump(raw, families_of(raw).from[f]);

  partition_migration::CopyStats stats;
  ASSERT_TRUE(copy(raw, {}, &stats).ok());
  EXPECT_EQ(stats.records, count(copies));
  expect_migrated(raw, copies);
  for (std::size_t f = 1; f < kFamilyCount; ++f) {
    EXPECT_EQ(dump(raw, families_of(raw).from[f]), before[f]) << "schema 2 " << kFamilyNames[f];
  }

  ASSERT_TRUE(copy(raw, {}, &stats).ok());  // complete: nothing again
  EXPECT_EQ(stats.records, 0U);
  expect_migrated(raw, copies);

  // The migrated store's partitions are separable: dropping partition 2 leaves 0 and 300.
  const partition_migration::Families families = families_of(raw);
  std::vector<rocksdb::ColumnFamilyHandle*> to;
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    if (partitioned(f)) to.push_back(families.to[f]);
  }
  std::vector<std::int32_t> present;
  ASSERT_TRUE(partition_ranges::present(*raw.db, {}, to, families.from[kMeta], &present).ok());
  EXPECT_EQ(present, (std::vector<std::int32_t>{0, 2, 300}));
  rocksdb::WriteBatch drop;
  ASSERT_TRUE(partition_ranges::add_drop(drop, to, families.from[kMeta], 2).ok());
  ASSERT_TRUE(raw.db->Write({}, &drop).ok());
  ASSERT_TRUE(partition_ranges::present(*raw.db, {}, to, families.from[kMeta], &present).ok());
  EXPECT_EQ(present, (std::vector<std::int32_t>{0, 300}));
  for (const auto& [f, records] : copies) {
    Records kept;
    for (const auto& [key, value] : records) {
      if (!key.starts_with(keys::partition_prefix(2))) kept.emplace(key, value);
    }
    EXPECT_EQ(dump(raw, families.to[f]), kept) << kFamilyNames[f];
  }
}

TEST_F(PartitionMigrationTest, ACopyInterruptedAfterAnyBatchFinishesTheSame) {
  RawRocks raw(dir_);
  ASSERT_TRUE(raw.open());
  const std::map<std::size_t, Records> copies = expected_copies(raw);
  std::uint64_t copied = 0;
  int runs = 0;
  // Two records per batch, at most three batches per run: every run stops as a crash would
  // (its last batch unwritten) until the copy completes.
  for (;; ++runs) {
    ASSERT_LT(runs, 100);
    partition_migration::CopyStats stats;
    const rocksdb::Status s = copy(raw, {2, 3}, &stats);
    copied += stats.records;
    if (s.ok()) break;
    ASSERT_TRUE(s.IsIncomplete()) << s.ToString();
    EXPECT_EQ(stats.batches, 3U);
  }
  EXPECT_GT(runs, 5);
  EXPECT_EQ(copied, count(copies));  // each record written once: resumed after the last batch
  expect_migrated(raw, copies);
}

}  // namespace
}  // namespace painpoint::store

// The partition of every record of a schema 2 store written by the current Store
// (store/src/partition_assignment.h): each record goes with its product's partition, records
// keyed by an event or a pain point find the product through it, offsets keep their own
// partition, process-wide records and alerts go to none.

#include "partition_assignment.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "raw_rocks.h"
#include "schema2_store.h"

namespace painpoint::store {
namespace {

using partition_assignment::Assigner;
// family name -> partition (-1: none) -> records
using Tally = std::map<std::string, std::map<std::int32_t, int>>;

class PartitionAssignmentTest : public Schema2StoreTest {
 protected:
  // Every record of every family through the assigner.
  rocksdb::Status assign_all(RawRocks& raw, Tally* tally) {
    std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> families{};
    for (std::size_t f = 0; f < kFamilyCount; ++f) families[f] = raw.family(kFamilyNames[f]);
    Assigner assigner(*raw.db, rocksdb::ReadOptions(), families, schema2_test_rule());
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      std::unique_ptr<rocksdb::Iterator> it(
          raw.db->NewIterator(rocksdb::ReadOptions(), families[f]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        std::optional<std::int32_t> partition;
        rocksdb::Status s = assigner.partition_of(static_cast<Family>(f), it->key().ToString(),
                                                  it->value().ToString(), &partition);
        if (!s.ok()) return s;
        ++(*tally)[kFamilyNames[f]][partition.value_or(-1)];
      }
      if (!it->status().ok()) return it->status();
    }
    return rocksdb::Status::OK();
  }
};

TEST_F(PartitionAssignmentTest, EveryRecordGoesWithItsProductsPartition) {
  write_schema2_store();
  RawRocks raw(dir_);
  ASSERT_TRUE(raw.open());
  Tally tally;
  const rocksdb::Status s = assign_all(raw, &tally);
  ASSERT_TRUE(s.ok()) << s.ToString();

  // alpha (partition 0): 3 events, 1 pain point; beta (2): 2 events, 2 pain points; gamma (300).
  const std::map<std::int32_t, int> per_event = {{0, 3}, {2, 2}, {300, 1}};
  const std::map<std::int32_t, int> per_pain_point = {{0, 1}, {2, 2}, {300, 1}};
  for (const char* family :
       {"events", "by_time", "members", "members_by_pain_point", "unsaved_arrivals"}) {
    EXPECT_EQ(tally[family], per_event) << family;
  }
  for (const char* family : {"pain_points", "pain_points_by_product", "outbox"}) {
    EXPECT_EQ(tally[family], per_pain_point) << family;
  }
  // agg-merged/pp-b2 follows the merged pain point's product (beta).
  EXPECT_EQ(tally["aggregator_state"], (std::map<std::int32_t, int>{{0, 1}, {2, 1}, {300, 1}}));
  // Product statistics (3) and input offsets (partitions 0 and 2) have a partition; the schema
  // version, event count and outbox sequence do not.
  EXPECT_EQ(tally["default"][0], 2);
  EXPECT_EQ(tally["default"][2], 2);
  EXPECT_EQ(tally["default"][300], 1);
  EXPECT_GE(tally["default"][-1], 3);
  EXPECT_EQ(tally["alerts"].size(), 1U);
  EXPECT_GT(tally["alerts"][-1], 0);
}

TEST_F(PartitionAssignmentTest, RecordsNamingWhatIsNotStoredAreCorruption) {
  write_schema2_store();
  RawRocks raw(dir_);
  ASSERT_TRUE(raw.open());
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> families{};
  for (std::size_t f = 0; f < kFamilyCount; ++f) families[f] = raw.family(kFamilyNames[f]);
  Assigner assigner(*raw.db, rocksdb::ReadOptions(), families, schema2_test_rule());
  std::optional<std::int32_t> partition;
  EXPECT_TRUE(
      assigner.partition_of(kMembers, "no-such-event", "pp-alpha", &partition).IsCorruption());
  EXPECT_TRUE(
      assigner.partition_of(kMembersByPainPoint, std::string("pp-none\0pos", 11), "", &partition)
          .IsCorruption());
  EXPECT_TRUE(
      assigner.partition_of(kPainPointsByProduct, "no-separator", "", &partition).IsCorruption());
  EXPECT_TRUE(
      assigner.partition_of(kAggregatorState, "foreign/key", "", &partition).IsCorruption());
  EXPECT_TRUE(assigner.partition_of(kEvents, "e1", "\xff\xff", &partition).IsCorruption());
  ASSERT_TRUE(assigner.partition_of(kByTime, "ignored", "gamma", &partition).ok());
  EXPECT_EQ(partition, 300);
}

}  // namespace
}  // namespace painpoint::store

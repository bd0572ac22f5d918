// The pure parts of serve's changelog use: the local checkpoint record's encoding, a prepared
// write as a changelog record and back, the configuration key, and which partitions publish.
#include "partition_changelog.h"

#include <gtest/gtest.h>

#include <sstream>

#include "aggregator_stage.h"
#include "config_file.h"
#include "painpoint/store/keys.h"

namespace painpoint::service {
namespace {

TEST(PartitionChangelogTest, CheckpointRecordRoundTrips) {
  changelog::Checkpoint cp;
  cp.next_changelog_offset = 12'345;
  cp.epoch = 3;
  cp.batch_sequence = 77;
  cp.state.next_input_offset = 9'001;
  cp.state.cluster_id = "Mk3OEYBSD34fcwNTJENDM2Qk";
  cp.state.counters = {{"arrivals", 5}, {"outbox", 6}};
  EXPECT_EQ(decode_checkpoint(encode_checkpoint(cp)), cp);

  const changelog::Checkpoint from_start;  // offset -1, no cluster id yet: a cold restore's
  EXPECT_EQ(decode_checkpoint(encode_checkpoint(from_start)), from_start);

  EXPECT_FALSE(decode_checkpoint("").has_value());
  EXPECT_FALSE(decode_checkpoint("2 1 1 1 1 -").has_value());  // unknown version
  EXPECT_FALSE(decode_checkpoint("1 x 1 1 1 -").has_value());
  EXPECT_FALSE(decode_checkpoint("1 1 1 1 1 - counter").has_value());
}

TEST(PartitionChangelogTest, PreparedWritesTravelAsRecordsAndBack) {
  const store::PreparedWrite put{"events", store::WriteKind::kPut, "e-1", "bytes", 3};
  const store::PreparedWrite erase{"members", store::WriteKind::kDelete, "e-2", "", 3};
  const store::PreparedWrite range{"unsaved_arrivals", store::WriteKind::kDeleteRange,
                                   std::string_view("\0\0\0\0", 4), "\x01\x02", 3};
  const changelog::Record put_record = to_record(put);
  EXPECT_EQ(put_record, (changelog::Record{"events", "e-1", "bytes"}));
  const changelog::Record erase_record = to_record(erase);
  EXPECT_EQ(erase_record, (changelog::Record{"members", "e-2", std::nullopt}));
  // A range deletion is a put (a tombstone would be compacted away) in a family of its own.
  const changelog::Record range_record = to_record(range);
  EXPECT_EQ(range_record.family, "range:unsaved_arrivals");
  EXPECT_EQ(range_record.value, std::optional<std::string>("\x01\x02"));

  for (const auto& [record, want] : {std::pair{put_record, put}, std::pair{erase_record, erase},
                                     std::pair{range_record, range}}) {
    const store::PreparedWrite back = to_prepared_write(record);
    EXPECT_EQ(back.family, want.family);
    EXPECT_EQ(back.kind, want.kind);
    EXPECT_EQ(back.key, want.key);
    if (want.kind != store::WriteKind::kDelete) {
      EXPECT_EQ(back.value, want.value);
    }
  }
}

// The store cuts the arrival log by ranges; on the compacted topic each arrival number of a range
// is a tombstone instead, so that the entries leave the topic. Other writes keep their record.
TEST(PartitionChangelogTest, ArrivalLogRangeDeletionsTravelAsTombstones) {
  std::string from;
  std::string to;
  store::keys::append_be64(from, 5);
  store::keys::append_be64(to, 8);
  std::vector<changelog::Record> records;
  append_records({store::kArrivalLogFamily, store::WriteKind::kDeleteRange, from, to, 3}, records);
  ASSERT_EQ(records.size(), 3U);
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::string key;
    store::keys::append_be64(key, 5 + i);
    EXPECT_EQ(records[i], (changelog::Record{"unsaved_arrivals", key, std::nullopt}));
  }
  append_records({store::kArrivalLogFamily, store::WriteKind::kDeleteRange, to, to, 3}, records);
  EXPECT_EQ(records.size(), 3U) << "an empty range has no record";
  const store::PreparedWrite put{"events", store::WriteKind::kPut, "e-1", "bytes", 3};
  const store::PreparedWrite range{"members", store::WriteKind::kDeleteRange, from, to, 3};
  append_records(put, records);
  append_records(range, records);
  ASSERT_EQ(records.size(), 5U);
  EXPECT_EQ(records[3], to_record(put));
  EXPECT_EQ(records[4], to_record(range)) << "other families' ranges stay range records";
}

TEST(PartitionChangelogTest, ConfigKeyIsOffByDefaultAndTakesTrueOrFalse) {
  std::istringstream none("");
  EXPECT_FALSE(parse_service_config(none).config->changelog_enabled);
  std::istringstream on("changelog.enabled = true\n");
  EXPECT_TRUE(parse_service_config(on).config->changelog_enabled);
  std::istringstream bad("changelog.enabled = 1\n");
  const ConfigLoadResult refused = parse_service_config(bad);
  EXPECT_FALSE(refused.config.has_value());
  EXPECT_NE(refused.error.find("line 1"), std::string::npos) << refused.error;
  EXPECT_NE(describe_service_config(ServiceConfig{}).find("changelog.enabled = false\n"),
            std::string::npos);
}

TEST(PublishedPartitionsTest, AfterAStallHeldPartitionsWaitForALatePollOfTheGroup) {
  using Clock = PublishedPartitions::Clock;
  PublishedPartitions published;
  published.hold({1, 2});
  EXPECT_TRUE(published.contains(1));
  EXPECT_FALSE(published.contains(3));

  const Clock::time_point resumed = Clock::now();
  published.stalled(resumed);
  EXPECT_FALSE(published.contains(1)) << "nothing held publishes right after a stall";
  published.polled(resumed + PublishedPartitions::kRejoinGrace - std::chrono::milliseconds(1));
  EXPECT_FALSE(published.contains(1)) << "a poll begun too early may not know of an expulsion";
  published.keep_at_stop({2});
  EXPECT_TRUE(published.contains(2)) << "a clean stop's partitions were left, not lost";

  // The late poll served the lost assignment: partition 1 left, and 3 came back restored.
  published.hold({3});
  published.polled(resumed + PublishedPartitions::kRejoinGrace);
  EXPECT_FALSE(published.contains(1));
  EXPECT_TRUE(published.contains(3));
}

}  // namespace
}  // namespace painpoint::service

#include "painpoint/store/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace painpoint::store::keys {
namespace {

TEST(KeysTest, Be64RoundTripsAndSortsNumerically) {
  const std::vector<std::uint64_t> values = {0, 1, 255, 256, 65535, 1ULL << 32, ~0ULL};
  std::vector<std::string> encoded;
  for (std::uint64_t v : values) {
    std::string out;
    append_be64(out, v);
    ASSERT_EQ(out.size(), 8U);
    EXPECT_EQ(read_be64(out), v);
    encoded.push_back(out);
  }
  EXPECT_TRUE(std::is_sorted(encoded.begin(), encoded.end()));
  EXPECT_EQ(read_be64("short"), std::nullopt);
}

TEST(KeysTest, SignedTimesKeepTheirOrder) {
  const std::vector<std::int64_t> times = {INT64_MIN, -5'000'000, -1, 0, 1, 1'700'000'000'000'000,
                                           INT64_MAX};
  std::vector<std::string> encoded;
  for (std::int64_t t : times) {
    encoded.push_back(time_key(t, "e"));
    EXPECT_EQ(from_order_preserving(order_preserving(t)), t);
  }
  EXPECT_TRUE(std::is_sorted(encoded.begin(), encoded.end()));
}

TEST(KeysTest, TimeKeyRoundTripsAndOrdersByTimeThenId) {
  const std::string key = time_key(1'234'567, "event-9");
  auto parsed = parse_time_key(key);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->occurred_at_micros, 1'234'567);
  EXPECT_EQ(parsed->event_id, "event-9");
  EXPECT_LT(time_key(5, "b"), time_key(6, "a"));
  EXPECT_LT(time_key(5, "a"), time_key(5, "b"));
  EXPECT_EQ(parse_time_key("1234567"), std::nullopt);
  EXPECT_EQ(parse_time_key(time_key(1, "").substr(0, 8)), std::nullopt);
}

TEST(KeysTest, OffsetKeyRoundTripsAndSortsPartitionsNumerically) {
  const std::string key = offset_key("painpoint.feedback-by-product", 12);
  auto parsed = parse_offset_key(key);  // views into `key`
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->topic, "painpoint.feedback-by-product");
  EXPECT_EQ(parsed->partition, 12);
  EXPECT_LT(offset_key("t", 2), offset_key("t", 10));
  // A topic that is a prefix of another must not interleave with it.
  EXPECT_LT(offset_key("t", 99), offset_key("t2", 0));
  EXPECT_EQ(parse_offset_key("no-separator"), std::nullopt);
}

TEST(KeysTest, ProductItemKeysGroupByProduct) {
  EXPECT_LT(product_item_key("app", "zz"), product_item_key("app2", "aa"));
  EXPECT_EQ(product_item_key("app", "pp-1").substr(0, 4), std::string("app\0", 4));
}

TEST(KeysTest, LeadingIdIsTheProductOrPainPointInFrontOfTheSeparator) {
  const std::string listing = product_item_key("app", "pp-1");
  EXPECT_EQ(leading_id(listing), std::optional<std::string_view>("app"));
  const std::string member = member_key("pp-1", member_position(5, "event-3"));
  EXPECT_EQ(leading_id(member), std::optional<std::string_view>("pp-1"));
  EXPECT_EQ(leading_id("no-separator"), std::nullopt);
}

TEST(KeysTest, PartitionPrefixIsBigEndianAndRoundTrips) {
  EXPECT_EQ(partition_prefix(0), std::string("\0\0", 2));
  EXPECT_EQ(partition_prefix(258), std::string("\x01\x02", 2));
  const std::string key = partitioned_key(300, "event-7");
  const auto parsed = parse_partitioned_key(key);  // views into `key`
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->partition, 300);
  EXPECT_EQ(parsed->key, "event-7");
  EXPECT_EQ(parse_partitioned_key("x"), std::nullopt);
  EXPECT_EQ(parse_partitioned_key(std::string("\xff\xff", 2)), std::nullopt);  // reserved
  EXPECT_TRUE(valid_partition(kPartitionLimit - 1));
  EXPECT_FALSE(valid_partition(kPartitionLimit));
  EXPECT_FALSE(valid_partition(-1));
}

TEST(KeysTest, EachPartitionIsOneRangeBelowTheNextPrefix) {
  // Partition 1's keys, whatever follows the prefix, sort after partition 0's longest keys and
  // before partition 2's prefix, so [prefix(p), prefix(p + 1)) holds exactly partition p.
  const std::vector<std::string> sorted = {partitioned_key(0, std::string(40, '\xff')),
                                           partition_prefix(1),
                                           partitioned_key(1, ""),
                                           partitioned_key(1, std::string("\0", 1)),
                                           partitioned_key(1, "zzz"),
                                           partitioned_key(1, std::string(40, '\xff')),
                                           partition_prefix(2),
                                           partitioned_key(256, "a"),
                                           partition_prefix(kPartitionLimit - 1) + "z",
                                           partition_prefix(kPartitionLimit)};
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
}

}  // namespace
}  // namespace painpoint::store::keys

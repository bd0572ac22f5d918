#include "painpoint/base/time.h"

#include <gtest/gtest.h>

namespace painpoint::base {
namespace {

google::protobuf::Timestamp timestamp(std::int64_t seconds, std::int32_t nanos) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(nanos);
  return ts;
}

TEST(Time, MicrosOfDropsSubMicrosecondNanos) {
  EXPECT_EQ(micros_of(timestamp(0, 0)), 0);
  EXPECT_EQ(micros_of(timestamp(1'790'000'000, 123'456'789)), 1'790'000'000'123'456);
  // 1969-12-31T23:59:59.5Z: normalized as -1 s + 0.5 s.
  EXPECT_EQ(micros_of(timestamp(-1, 500'000'000)), -500'000);
}

TEST(Time, SecondsAndDaysFloorBefore1970) {
  EXPECT_EQ(seconds_floor(1'999'999), 1);
  EXPECT_EQ(seconds_floor(-1), -1);
  EXPECT_EQ(seconds_floor(-1'000'000), -1);
  EXPECT_EQ(seconds_floor(-1'000'001), -2);
  EXPECT_EQ(day_of(86'399), 0);
  EXPECT_EQ(day_of(86'400), 1);
  EXPECT_EQ(day_of(-1), -1);
  EXPECT_EQ(day_of(-86'400), -1);
  EXPECT_EQ(day_of(-86'401), -2);
}

TEST(Time, TimestampOfMicrosRoundTrips) {
  for (std::int64_t micros : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1},
                              std::int64_t{-500'000}, std::int64_t{1'790'000'000'123'456}}) {
    const auto ts = timestamp_of_micros(micros);
    EXPECT_GE(ts.nanos(), 0) << micros;
    EXPECT_LT(ts.nanos(), 1'000'000'000) << micros;
    EXPECT_EQ(micros_of(ts), micros);
  }
  EXPECT_EQ(timestamp_of_micros(-500'000).seconds(), -1);
  EXPECT_EQ(timestamp_of_micros(-500'000).nanos(), 500'000'000);
}

}  // namespace
}  // namespace painpoint::base

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

TEST(Time, ClockTimesTruncateTowardZero) {
  using std::chrono::system_clock;
  const system_clock::time_point t{std::chrono::nanoseconds{1'790'000'000'123'456'789}};
  EXPECT_EQ(micros_of(t), 1'790'000'000'123'456);
  EXPECT_EQ(seconds_of(t), 1'790'000'000);
  const google::protobuf::Timestamp ts = timestamp_of(t);
  EXPECT_EQ(ts.seconds(), 1'790'000'000);
  EXPECT_EQ(ts.nanos(), 123'456'789);
  // 1.5 µs before the epoch: duration_cast gives -1 µs (micros_of of a Timestamp floors to -2).
  const system_clock::time_point before{std::chrono::nanoseconds{-1'500}};
  EXPECT_EQ(micros_of(before), -1);
  EXPECT_EQ(seconds_of(before), 0);
}

}  // namespace
}  // namespace painpoint::base

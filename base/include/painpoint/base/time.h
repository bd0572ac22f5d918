// Event times: protobuf Timestamps to and from microseconds since the epoch, whole seconds and
// days, floored for times before 1970. The one place these conversions are written.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>

namespace painpoint::base {

inline constexpr std::int64_t kMicrosPerSecond = 1'000'000;
inline constexpr std::int64_t kSecondsPerDay = 86'400;

[[nodiscard]] inline std::int64_t seconds_of(const google::protobuf::Timestamp& ts) {
  return ts.seconds();
}

// Timestamps are normalized (0 <= nanos < 1e9), so this is exact for times before 1970 too.
[[nodiscard]] inline std::int64_t micros_of(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * kMicrosPerSecond + ts.nanos() / 1'000;
}

[[nodiscard]] inline constexpr std::int64_t seconds_floor(std::int64_t micros) {
  return micros >= 0 ? micros / kMicrosPerSecond
                     : -((-micros + kMicrosPerSecond - 1) / kMicrosPerSecond);
}

[[nodiscard]] inline constexpr std::int64_t day_of(std::int64_t unix_s) {
  return unix_s >= 0 ? unix_s / kSecondsPerDay : -((-unix_s + kSecondsPerDay - 1) / kSecondsPerDay);
}

[[nodiscard]] inline google::protobuf::Timestamp timestamp_of_micros(std::int64_t micros) {
  google::protobuf::Timestamp ts;
  const std::int64_t seconds = seconds_floor(micros);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<std::int32_t>((micros - seconds * kMicrosPerSecond) * 1'000));
  return ts;
}

}  // namespace painpoint::base

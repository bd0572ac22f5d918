// Event times: protobuf Timestamps and clock times to and from microseconds since the epoch, whole
// seconds and days, floored for times before 1970 (clock times: truncated, as duration_cast does).
// The one place these conversions are written.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <chrono>
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

// Clock times, truncated toward zero as std::chrono::duration_cast does: before 1970 a fraction
// of the unit rounds up, not down as above. The store's time-index bounds, the connectors' and
// webhooks' signed timestamps and an event's default occurred_at were always computed so.
[[nodiscard]] inline std::int64_t micros_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

[[nodiscard]] inline std::int64_t seconds_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

[[nodiscard]] inline google::protobuf::Timestamp timestamp_of(
    std::chrono::system_clock::time_point t) {
  const auto since_epoch = t.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs);
  google::protobuf::Timestamp ts;
  ts.set_seconds(secs.count());
  ts.set_nanos(static_cast<std::int32_t>(nanos.count()));
  return ts;
}

}  // namespace painpoint::base

// Event times: microseconds since the epoch, whole seconds and days, floored for times before 1970.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>

namespace painpoint::aggregator {

inline constexpr std::int64_t kSecondsPerDay = 86'400;

inline std::int64_t seconds_of(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

// Timestamps are normalized (0 <= nanos < 1e9), so this is exact for times before 1970 too.
inline std::int64_t micros_of(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1'000'000 + ts.nanos() / 1'000;
}

inline std::int64_t seconds_floor(std::int64_t micros) {
  return micros >= 0 ? micros / 1'000'000 : -((-micros + 999'999) / 1'000'000);
}

inline std::int64_t day_of(std::int64_t unix_s) {
  return unix_s >= 0 ? unix_s / kSecondsPerDay : -((-unix_s + kSecondsPerDay - 1) / kSecondsPerDay);
}

inline google::protobuf::Timestamp ts_of_micros(std::int64_t micros) {
  google::protobuf::Timestamp ts;
  const std::int64_t seconds = seconds_floor(micros);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<std::int32_t>((micros - seconds * 1'000'000) * 1'000));
  return ts;
}

}  // namespace painpoint::aggregator

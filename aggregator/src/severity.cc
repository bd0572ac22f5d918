#include "painpoint/aggregator/severity.h"

#include <algorithm>
#include <cmath>

namespace painpoint::aggregator {

double trend_of(std::span<const std::int64_t> daily) {
  std::int64_t last7 = 0;
  std::int64_t prev7 = 0;
  const std::size_t n = daily.size();
  for (std::size_t i = 0; i < n && i < 14; ++i) {
    (i < 7 ? last7 : prev7) += daily[n - 1 - i];
  }
  return std::log((static_cast<double>(last7) + 1.0) / (static_cast<double>(prev7) + 1.0));
}

double severity(const SeverityInputs& in) {
  const double arr_usd =
      static_cast<double>(std::max<std::int64_t>(in.arr_at_risk_cents, 0)) / 100.0;
  const double raw =
      std::log1p(static_cast<double>(std::max<std::int64_t>(in.event_count, 0))) +
      1.5 * std::log1p(static_cast<double>(std::max<std::int64_t>(in.account_count, 0))) +
      0.5 * std::log1p(arr_usd / 1000.0) + std::max(0.0, in.trend);
  const double age = std::max(0.0, in.days_since_last_seen);
  const double half = in.half_life_days > 0 ? in.half_life_days : 14.0;
  return raw * std::exp2(-age / half);
}

}  // namespace painpoint::aggregator

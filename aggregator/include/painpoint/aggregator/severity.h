#pragma once

// Trend and severity of a pain point; pure functions, documented in aggregator/README.md.

#include <cstdint>
#include <span>

namespace painpoint::aggregator {

// Growth of the last 7 days against the 7 before, from daily counts (oldest first, the last
// element is the newest day): ln((last7 + 1) / (prev7 + 1)). 0 = flat, +0.69 ≈ doubled.
[[nodiscard]] double trend_of(std::span<const std::int64_t> daily);

struct SeverityInputs {
  std::int64_t event_count = 0;
  std::int64_t account_count = 0;
  std::int64_t arr_at_risk_cents = 0;
  double trend = 0;
  double days_since_last_seen = 0;  // product time: newest event of the product - last_seen
  double half_life_days = 14;
};

// severity = (ln(1 + events) + 1.5 ln(1 + accounts) + 0.5 ln(1 + ARR_usd / 1000) + max(0, trend))
//            * 0.5 ^ (days_since_last_seen / half_life_days)
[[nodiscard]] double severity(const SeverityInputs& in);

}  // namespace painpoint::aggregator

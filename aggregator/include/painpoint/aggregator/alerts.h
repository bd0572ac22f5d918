#pragma once

// Alert rules and their evaluation (docs/alerts.md). Pure and deterministic like the rest of the
// module: an alert is a function of a pain point's summary, whose times are event times, so a
// replay or a crash recovery that reproduces the summaries reproduces the alerts. Each alert's
// id names its rule, pain point and window: the caller fires an id at most once.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "painpoint/v1/alert.pb.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::aggregator {

// An amount of money in cents of the account currency (the unit of account_arr_cents).
struct Cents {
  std::int64_t value = 0;
  friend auto operator<=>(const Cents&, const Cents&) = default;
};

// A new pain point reaches `accounts` distinct accounts while its events span at most `within`
// (last_seen - first_seen). Once per pain point.
struct NewPainPointRule {
  std::uint32_t accounts = 0;
  std::chrono::hours within{24};
};

// The last 7 days hold at least `min_events` events and at least `factor` times the 7 days before
// (which must hold at least one: a spike needs a baseline), and the ARR at risk is at least
// `min_arr`. Once per pain point and 7-day window (days since the epoch, in blocks of 7).
struct SpikeRule {
  double factor = 0;
  std::int64_t min_events = 10;
  Cents min_arr;
};

// Severity at or above `at_least`. Once per pain point and window of `window` (blocks since the
// epoch).
struct SeverityRule {
  double at_least = 0;
  std::chrono::days window{7};
};

struct AlertRule {
  std::string name;  // [a-z0-9_-], 1-64 characters; part of the alert id
  std::variant<NewPainPointRule, SpikeRule, SeverityRule> condition;
};

// Parses the value of a configuration line `alerts.rules.<name> = <kind> key=value ...`:
//   new_pain_point accounts=N [within_hours=H]
//   spike factor=X [min_events=M] [min_arr_cents=Y]
//   severity at_least=Z [window_days=D]
// Returns the rule, or what is wrong with it.
[[nodiscard]] std::variant<AlertRule, std::string> parse_alert_rule(std::string_view name,
                                                                    std::string_view spec);
// The rule back in the form parse_alert_rule() reads (for `painpoint config`).
[[nodiscard]] std::string describe_alert_rule(const AlertRule& rule);

// The alerts whose conditions `summary` meets (ACTIVE pain points only), one per rule at most,
// in rule order. The caller drops the ids already fired.
[[nodiscard]] std::vector<v1::AlertEvent> evaluate_alerts(std::span<const AlertRule> rules,
                                                          const v1::PainPointSummary& summary);

}  // namespace painpoint::aggregator

#pragma once

// Alert rules and their evaluation (docs/alerts.md). Pure and deterministic like the rest of the
// module: an alert is a function of a pain point's summary, whose times are event times, so a
// replay or a crash recovery that reproduces the summaries reproduces the alerts. Each alert's
// id names its rule, pain point and window (episode): the caller fires an id at most once.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/v1/alert.pb.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::aggregator {

// An amount of money in cents of the account currency (the unit of account_arr_cents).
struct Cents {
  std::int64_t value = 0;
  friend auto operator<=>(const Cents&, const Cents&) = default;
};

// A new pain point reaches `accounts` distinct accounts while its events span at most `within`
// (last_seen - first_seen). Its window is first_seen: once per pain point.
struct NewPainPointRule {
  std::uint32_t accounts = 0;
  std::chrono::hours within{24};
};

// The last 7 days hold at least `min_events` events and at least `factor` times the 7 days before,
// which hold at least `min_baseline` events of a pain point that already existed when they began
// (a spike rises over an established baseline; a new pain point is the first kind's job); the
// rise is also `factor` times that of the product's other pain points (when they grew), so that
// more feedback overall is not a spike; and the ARR at risk is at least `min_arr`.
struct SpikeRule {
  double factor = 0;
  std::int64_t min_events = 10;
  std::int64_t min_baseline = 5;
  Cents min_arr;
};

// Severity at or above `at_least`.
struct SeverityRule {
  double at_least = 0;
};

struct AlertRule {
  std::string name;  // [a-z0-9_-], 1-64 characters; part of the alert id
  std::variant<NewPainPointRule, SpikeRule, SeverityRule> condition;
};

// The daily counts of every pain point, from its latest summary, summed per product and day: what
// the spike rule compares a pain point's rise with. Fed every summary the caller commits (and,
// after a restart, the stored ones), it holds what the store holds.
class ProductVolumes {
 public:
  // Takes `summary` as its pain point's latest; a pain point no longer ACTIVE leaves the sums.
  void update(const v1::PainPointSummary& summary);
  // Events of the product's pain points other than `summary`'s on the days [first_day, last_day]
  // (days since the epoch, UTC).
  [[nodiscard]] std::int64_t others(const v1::PainPointSummary& summary, std::int64_t first_day,
                                    std::int64_t last_day) const;

 private:
  struct Counts {
    std::string product;
    std::int64_t last_day = 0;
    std::vector<std::int64_t> daily;  // ending on last_day
  };
  void add(const Counts& counts, std::int64_t sign);
  std::unordered_map<std::string, Counts> pain_points_;
  std::unordered_map<std::string, std::map<std::int64_t, std::int64_t>> products_;  // day -> events
};

// Parses the value of a configuration line `alerts.rules.<name> = <kind> key=value ...`:
//   new_pain_point accounts=N [within_hours=H]
//   spike factor=X [min_events=M] [min_baseline=B] [min_arr_cents=Y]
//   severity at_least=Z
// Returns the rule, or what is wrong with it.
[[nodiscard]] std::variant<AlertRule, std::string> parse_alert_rule(std::string_view name,
                                                                    std::string_view spec);
// The rule back in the form parse_alert_rule() reads (for `painpoint config`).
[[nodiscard]] std::string describe_alert_rule(const AlertRule& rule);

// The alerts whose conditions `summary` meets (ACTIVE pain points only), one per rule at most,
// in rule order, without ids (AlertEpisodes gives them), with window_start: first_seen for
// new_pain_point, the start of last_seen's day (UTC) for the others.
// Without `volumes`, spikes are judged on the pain point's own counts.
[[nodiscard]] std::vector<v1::AlertEvent> evaluate_alerts(std::span<const AlertRule> rules,
                                                          const v1::PainPointSummary& summary,
                                                          const ProductVolumes* volumes = nullptr);

// Episodes of (rule, pain point): an alert fires when a rule's condition becomes true and the
// rule re-arms only once the condition was seen false, so a condition that holds for weeks
// raises one alert. Episodes are numbered per rule and pain point; the number is the window in
// the alert id of spike and severity alerts (a new pain point's window stays its first_seen).
// They are state of the caller's store (keys under kEpisodeStatePrefix, value "<number>
// open|closed", written in the commit of the batch that opened or closed them), so a restart or
// a replay of the same events opens and closes the same episodes under the same ids.
class AlertEpisodes {
 public:
  static constexpr std::string_view kEpisodeStatePrefix = "alert-episode/";

  // Takes back an episode that evaluate() wrote; false when the entry is not one.
  bool restore(std::string_view key, std::string_view value);

  // The alerts that open an episode on `summary` (an id may have fired before, e.g. a new pain
  // point's: the caller checks), and the state writes that record the episodes opened and closed.
  // A pain point that is no longer ACTIVE closes its episodes.
  std::vector<v1::AlertEvent> evaluate(std::span<const AlertRule> rules,
                                       const v1::PainPointSummary& summary,
                                       const ProductVolumes* volumes,
                                       std::vector<StateWrite>* writes);

  [[nodiscard]] std::size_t open_episodes() const;

 private:
  struct Episode {
    std::uint64_t number = 0;  // 1 for the first episode
    bool open = false;
  };
  // By state key; closed episodes stay for their number (one entry per rule and pain point
  // that ever fired).
  std::unordered_map<std::string, Episode> episodes_;
};

}  // namespace painpoint::aggregator

#include "painpoint/aggregator/alerts.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

#include "painpoint/base/time.h"
#include "painpoint/aggregator/text.h"

namespace painpoint::aggregator {
namespace {

constexpr std::int64_t kSpikeDays = 7;
constexpr std::size_t kMaxRuleName = 64;

bool valid_rule_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRuleName) return false;
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

template <typename T>
bool parse_integer(std::string_view text, T* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool parse_double(std::string_view text, double* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(*out);
}

// "kind k=v k=v" -> the kind and the pairs, or what is malformed.
struct Spec {
  std::string kind;
  std::map<std::string, std::string, std::less<>> values;
};

std::variant<Spec, std::string> split_spec(std::string_view spec) {
  Spec out;
  std::size_t pos = 0;
  while (pos < spec.size()) {
    while (pos < spec.size() && (spec[pos] == ' ' || spec[pos] == '\t')) ++pos;
    std::size_t end = pos;
    while (end < spec.size() && spec[end] != ' ' && spec[end] != '\t') ++end;
    if (end == pos) break;
    const std::string_view word = spec.substr(pos, end - pos);
    pos = end;
    if (out.kind.empty()) {
      out.kind = std::string(word);
      continue;
    }
    const auto eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == word.size()) {
      return "expected key=value, got '" + std::string(word) + "'";
    }
    if (!out.values.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)))
             .second) {
      return "'" + std::string(word.substr(0, eq)) + "' given twice";
    }
  }
  if (out.kind.empty())
    return std::string("empty rule: expected new_pain_point, spike or severity");
  return out;
}

// Takes the value of `key` out of `values`; "" or what is wrong.
template <typename T, typename Parse>
std::string take(Spec& spec, std::string_view key, bool required, T* out, Parse parse,
                 std::string_view expected) {
  auto it = spec.values.find(key);
  if (it == spec.values.end()) {
    return required ? spec.kind + " needs " + std::string(key) + "=" + std::string(expected)
                    : std::string();
  }
  const std::string text = it->second;
  spec.values.erase(it);
  if (!parse(text, out)) {
    return "bad value '" + text + "' for " + std::string(key) + " (expected " +
           std::string(expected) + ")";
  }
  return {};
}

bool positive_u32(std::string_view t, std::uint32_t* v) { return parse_integer(t, v) && *v > 0; }
bool non_negative_i64(std::string_view t, std::int64_t* v) {
  return parse_integer(t, v) && *v >= 0;
}
bool positive_i64(std::string_view t, std::int64_t* v) { return parse_integer(t, v) && *v > 0; }
bool at_least_one(std::string_view t, double* v) { return parse_double(t, v) && *v >= 1.0; }
bool non_negative(std::string_view t, double* v) { return parse_double(t, v) && *v >= 0.0; }

std::variant<NewPainPointRule, SpikeRule, SeverityRule, std::string> parse_condition(Spec& spec) {
  std::string error;
  auto first_error = [&error](std::string e) {
    if (error.empty()) error = std::move(e);
  };
  if (spec.kind == "new_pain_point") {
    NewPainPointRule rule;
    std::int64_t hours = rule.within.count();
    first_error(take(spec, "accounts", true, &rule.accounts, positive_u32, "a whole number >= 1"));
    first_error(take(spec, "within_hours", false, &hours, positive_i64, "whole hours >= 1"));
    rule.within = std::chrono::hours(hours);
    if (!error.empty()) return error;
    return rule;
  }
  if (spec.kind == "spike") {
    SpikeRule rule;
    first_error(take(spec, "factor", true, &rule.factor, at_least_one, "a number >= 1"));
    first_error(
        take(spec, "min_events", false, &rule.min_events, positive_i64, "a whole number >= 1"));
    first_error(take(spec, "min_arr_cents", false, &rule.min_arr.value, non_negative_i64,
                     "whole cents >= 0"));
    if (!error.empty()) return error;
    return rule;
  }
  if (spec.kind == "severity") {
    SeverityRule rule;
    std::int64_t days = rule.window.count();
    first_error(take(spec, "at_least", true, &rule.at_least, non_negative, "a number >= 0"));
    first_error(take(spec, "window_days", false, &days, positive_i64, "whole days >= 1"));
    rule.window = std::chrono::days(days);
    if (!error.empty()) return error;
    return rule;
  }
  return "unknown rule kind '" + spec.kind + "' (expected new_pain_point, spike or severity)";
}

std::string format_double(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

// "al-" and 16 hex digits of a hash of (rule, pain point, window): the same inputs always give
// the same id, which makes the id the alert's idempotency key.
std::string alert_id(std::string_view rule, std::string_view pain_point_id,
                     std::int64_t window_start_micros) {
  std::string material(rule);
  material += '\0';
  material += pain_point_id;
  material += '\0';
  material += std::to_string(window_start_micros);
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "al-%016llx",
                static_cast<unsigned long long>(fnv1a64(material)));
  return buffer;
}

// Sum of daily_counts over [end - days, end) counted from the newest entry (end = 0: newest).
std::int64_t days_sum(const v1::PainPointSummary& s, std::int64_t skip_newest, std::int64_t days) {
  std::int64_t sum = 0;
  const std::int64_t n = s.daily_counts_size();
  for (std::int64_t i = n - 1 - skip_newest; i >= 0 && i > n - 1 - skip_newest - days; --i) {
    sum += s.daily_counts(static_cast<int>(i));
  }
  return sum;
}

std::int64_t block_start_micros(std::int64_t micros, std::int64_t days) {
  const std::int64_t day = base::day_of(base::seconds_floor(micros));
  const std::int64_t block = day >= 0 ? day / days : -((-day + days - 1) / days);
  return block * days * base::kSecondsPerDay * 1'000'000;
}

struct Evaluation {
  v1::AlertKind kind;
  std::int64_t window_start_micros;
};

std::optional<Evaluation> check(const NewPainPointRule& rule, const v1::PainPointSummary& s) {
  const std::int64_t first = base::micros_of(s.first_seen());
  const std::int64_t span = base::micros_of(s.last_seen()) - first;
  const std::int64_t within =
      std::chrono::duration_cast<std::chrono::microseconds>(rule.within).count();
  if (s.account_count() < rule.accounts || span > within) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_NEW_PAIN_POINT, first};
}

std::optional<Evaluation> check(const SpikeRule& rule, const v1::PainPointSummary& s) {
  const std::int64_t last = days_sum(s, 0, kSpikeDays);
  const std::int64_t previous = days_sum(s, kSpikeDays, kSpikeDays);
  if (previous == 0 || last < rule.min_events) return std::nullopt;
  if (static_cast<double>(last) < rule.factor * static_cast<double>(previous)) return std::nullopt;
  if (Cents{s.arr_at_risk_cents()} < rule.min_arr) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_SPIKE,
                    block_start_micros(base::micros_of(s.last_seen()), kSpikeDays)};
}

std::optional<Evaluation> check(const SeverityRule& rule, const v1::PainPointSummary& s) {
  if (s.severity() < rule.at_least) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_SEVERITY,
                    block_start_micros(base::micros_of(s.last_seen()), rule.window.count())};
}

}  // namespace

std::variant<AlertRule, std::string> parse_alert_rule(std::string_view name,
                                                      std::string_view spec) {
  if (!valid_rule_name(name)) {
    return "rule name '" + std::string(name) + "' must be 1-64 characters of a-z, 0-9, _ and -";
  }
  auto split = split_spec(spec);
  if (auto* error = std::get_if<std::string>(&split)) return *error;
  Spec& parts = std::get<Spec>(split);
  auto condition = parse_condition(parts);
  if (auto* error = std::get_if<std::string>(&condition)) return *error;
  if (!parts.values.empty()) {
    return "unknown key '" + parts.values.begin()->first + "' for " + parts.kind;
  }
  AlertRule rule;
  rule.name = std::string(name);
  std::visit(
      [&rule](auto&& c) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(c)>, std::string>) rule.condition = c;
      },
      condition);
  return rule;
}

std::string describe_alert_rule(const AlertRule& rule) {
  if (const auto* r = std::get_if<NewPainPointRule>(&rule.condition)) {
    return "new_pain_point accounts=" + std::to_string(r->accounts) +
           " within_hours=" + std::to_string(r->within.count());
  }
  if (const auto* r = std::get_if<SpikeRule>(&rule.condition)) {
    return "spike factor=" + format_double(r->factor) +
           " min_events=" + std::to_string(r->min_events) +
           " min_arr_cents=" + std::to_string(r->min_arr.value);
  }
  const auto& r = std::get<SeverityRule>(rule.condition);
  return "severity at_least=" + format_double(r.at_least) +
         " window_days=" + std::to_string(r.window.count());
}

std::vector<v1::AlertEvent> evaluate_alerts(std::span<const AlertRule> rules,
                                            const v1::PainPointSummary& summary) {
  std::vector<v1::AlertEvent> out;
  if (summary.status() != v1::STATUS_ACTIVE) return out;
  for (const AlertRule& rule : rules) {
    const std::optional<Evaluation> hit =
        std::visit([&summary](const auto& c) { return check(c, summary); }, rule.condition);
    if (!hit) continue;
    v1::AlertEvent& alert = out.emplace_back();
    alert.set_alert_id(alert_id(rule.name, summary.id(), hit->window_start_micros));
    alert.set_rule(rule.name);
    alert.set_kind(hit->kind);
    alert.set_pain_point_id(summary.id());
    alert.set_product_id(summary.product_id());
    alert.set_label(summary.label());
    *alert.mutable_window_start() = base::timestamp_of_micros(hit->window_start_micros);
    *alert.mutable_triggered_at() = summary.last_seen();
    alert.set_event_count(summary.event_count());
    alert.set_account_count(summary.account_count());
    alert.set_arr_at_risk_cents(summary.arr_at_risk_cents());
    alert.set_severity(summary.severity());
    alert.set_last_7_days_count(days_sum(summary, 0, kSpikeDays));
    alert.set_previous_7_days_count(days_sum(summary, kSpikeDays, kSpikeDays));
  }
  return out;
}

}  // namespace painpoint::aggregator

#include "painpoint/aggregator/alerts.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

#include "painpoint/aggregator/text.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"

namespace painpoint::aggregator {
namespace {

constexpr std::int64_t kSpikeDays = 7;
// A spike's split between its two weeks must be rarer than this by chance (see check()).
constexpr double kSpikeChance = 0.001;
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
    first_error(
        take(spec, "min_baseline", false, &rule.min_baseline, positive_i64, "a whole number >= 1"));
    first_error(take(spec, "min_arr_cents", false, &rule.min_arr.value, non_negative_i64,
                     "whole cents >= 0"));
    if (!error.empty()) return error;
    return rule;
  }
  if (spec.kind == "severity") {
    SeverityRule rule;
    first_error(take(spec, "at_least", true, &rule.at_least, non_negative, "a number >= 0"));
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
// the same id, which makes the id the alert's idempotency key. The window of a new pain point is
// its first_seen; of the other kinds, the number of the episode ("e1", "e2", ...), which does not
// depend on where batches were cut.
std::string alert_id(std::string_view rule, std::string_view pain_point_id,
                     std::string_view window) {
  std::string material(rule);
  material += '\0';
  material += pain_point_id;
  material += '\0';
  material += window;
  return "al-" + base::hex_u64(fnv1a64(material));
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

// P(X >= k) for X ~ Binomial(n, p), summed in log space from k up until the terms vanish
// (called with k at or above the mean, where they only decrease).
double binomial_tail(std::int64_t k, std::int64_t n, double p) {
  if (k <= 0) return 1.0;
  if (k > n) return 0.0;
  const double log_p = std::log(p);
  const double log_q = std::log1p(-p);
  const double log_n_factorial = std::lgamma(static_cast<double>(n) + 1.0);
  double sum = 0.0;
  for (std::int64_t i = k; i <= n; ++i) {
    const auto x = static_cast<double>(i);
    const double term = std::exp(log_n_factorial - std::lgamma(x + 1.0) -
                                 std::lgamma(static_cast<double>(n - i) + 1.0) + x * log_p +
                                 static_cast<double>(n - i) * log_q);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return std::min(sum, 1.0);
}

std::int64_t day_of_micros(std::int64_t micros) {
  return base::day_of(base::seconds_floor(micros));
}

std::int64_t day_start_micros(std::int64_t micros) {
  return day_of_micros(micros) * base::kSecondsPerDay * base::kMicrosPerSecond;
}

struct Evaluation {
  v1::AlertKind kind;
  std::int64_t window_start_micros;
};

std::optional<Evaluation> check(const NewPainPointRule& rule, const v1::PainPointSummary& s,
                                const ProductVolumes*) {
  const std::int64_t first = base::micros_of(s.first_seen());
  const std::int64_t span = base::micros_of(s.last_seen()) - first;
  const std::int64_t within =
      std::chrono::duration_cast<std::chrono::microseconds>(rule.within).count();
  if (s.account_count() < rule.accounts || span > within) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_NEW_PAIN_POINT, first};
}

std::optional<Evaluation> check(const SpikeRule& rule, const v1::PainPointSummary& s,
                                const ProductVolumes* volumes) {
  const std::int64_t last_seen = base::micros_of(s.last_seen());
  // The baseline week is days [last - 13, last - 7]: the pain point's first event is on its
  // first day or before it.
  const std::int64_t baseline_first_day = day_of_micros(last_seen) - (2 * kSpikeDays - 1);
  if (day_of_micros(base::micros_of(s.first_seen())) > baseline_first_day) return std::nullopt;
  const std::int64_t last = days_sum(s, 0, kSpikeDays);
  const std::int64_t previous = days_sum(s, kSpikeDays, kSpikeDays);
  if (previous < rule.min_baseline || last < rule.min_events) return std::nullopt;
  // How much the product's other pain points grew over the same two weeks (1 when they did not,
  // or when nothing is known of them): the pain point must have grown `factor` times more.
  double growth = 1.0;
  if (volumes != nullptr) {
    const std::int64_t last_day = day_of_micros(last_seen);
    const std::int64_t others_last = volumes->others(s, last_day - kSpikeDays + 1, last_day);
    const std::int64_t others_previous =
        volumes->others(s, baseline_first_day, last_day - kSpikeDays);
    if (others_previous > 0 && others_last > others_previous) {
      growth = static_cast<double>(others_last) / static_cast<double>(others_previous);
    }
  }
  if (static_cast<double>(last) < rule.factor * growth * static_cast<double>(previous)) {
    return std::nullopt;
  }
  // Beyond chance: had the pain point grown like the rest (each of its events in the last week
  // with probability growth / (1 + growth)), a split this uneven would be rarer than
  // kSpikeChance. Small counts cross a ratio by chance; hundreds of pain points evaluated batch
  // after batch give chance many tries.
  if (binomial_tail(last, last + previous, growth / (1.0 + growth)) >= kSpikeChance) {
    return std::nullopt;
  }
  if (Cents{s.arr_at_risk_cents()} < rule.min_arr) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_SPIKE, day_start_micros(last_seen)};
}

std::optional<Evaluation> check(const SeverityRule& rule, const v1::PainPointSummary& s,
                                const ProductVolumes*) {
  if (s.severity() < rule.at_least) return std::nullopt;
  return Evaluation{v1::ALERT_KIND_SEVERITY, day_start_micros(base::micros_of(s.last_seen()))};
}

std::string episode_key(std::string_view rule, std::string_view pain_point_id) {
  std::string key(AlertEpisodes::kEpisodeStatePrefix);
  key += rule;
  key += '/';
  key += pain_point_id;
  return key;
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
           " min_baseline=" + std::to_string(r->min_baseline) +
           " min_arr_cents=" + std::to_string(r->min_arr.value);
  }
  return "severity at_least=" + format_double(std::get<SeverityRule>(rule.condition).at_least);
}

void ProductVolumes::add(const Counts& counts, std::int64_t sign) {
  auto& days = products_[counts.product];
  const auto n = static_cast<std::int64_t>(counts.daily.size());
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t events = counts.daily[static_cast<std::size_t>(i)];
    if (events == 0) continue;
    const std::int64_t day = counts.last_day - (n - 1 - i);
    auto it = days.try_emplace(day, 0).first;
    it->second += sign * events;
    if (it->second == 0) days.erase(it);
  }
}

void ProductVolumes::update(const v1::PainPointSummary& summary) {
  const auto found = pain_points_.find(summary.id());
  if (found != pain_points_.end()) {
    add(found->second, -1);
    if (summary.status() != v1::STATUS_ACTIVE) {
      pain_points_.erase(found);
      return;
    }
  }
  if (summary.status() != v1::STATUS_ACTIVE) return;
  Counts& counts = pain_points_[summary.id()];
  counts.product = summary.product_id();
  counts.last_day = day_of_micros(base::micros_of(summary.last_seen()));
  counts.daily.assign(summary.daily_counts().begin(), summary.daily_counts().end());
  add(counts, +1);
}

std::int64_t ProductVolumes::others(const v1::PainPointSummary& summary, std::int64_t first_day,
                                    std::int64_t last_day) const {
  const auto product = products_.find(summary.product_id());
  if (product == products_.end()) return 0;
  std::int64_t total = 0;
  for (auto it = product->second.lower_bound(first_day);
       it != product->second.end() && it->first <= last_day; ++it) {
    total += it->second;
  }
  const auto own = pain_points_.find(summary.id());
  if (own == pain_points_.end()) return total;
  const Counts& counts = own->second;
  const auto n = static_cast<std::int64_t>(counts.daily.size());
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t day = counts.last_day - (n - 1 - i);
    if (day >= first_day && day <= last_day) total -= counts.daily[static_cast<std::size_t>(i)];
  }
  return total;
}

std::vector<v1::AlertEvent> evaluate_alerts(std::span<const AlertRule> rules,
                                            const v1::PainPointSummary& summary,
                                            const ProductVolumes* volumes) {
  std::vector<v1::AlertEvent> out;
  if (summary.status() != v1::STATUS_ACTIVE) return out;
  for (const AlertRule& rule : rules) {
    const std::optional<Evaluation> hit = std::visit(
        [&summary, volumes](const auto& c) { return check(c, summary, volumes); }, rule.condition);
    if (!hit) continue;
    v1::AlertEvent& alert = out.emplace_back();
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

bool AlertEpisodes::restore(std::string_view key, std::string_view value) {
  if (!key.starts_with(kEpisodeStatePrefix)) return false;
  const auto space = value.find(' ');
  Episode episode;
  if (space == std::string_view::npos || !parse_integer(value.substr(0, space), &episode.number) ||
      episode.number == 0) {
    return false;
  }
  const std::string_view state = value.substr(space + 1);
  if (state != "open" && state != "closed") return false;
  episode.open = state == "open";
  episodes_.insert_or_assign(std::string(key), episode);
  return true;
}

std::vector<v1::AlertEvent> AlertEpisodes::evaluate(std::span<const AlertRule> rules,
                                                    const v1::PainPointSummary& summary,
                                                    const ProductVolumes* volumes,
                                                    std::vector<StateWrite>* writes) {
  std::vector<v1::AlertEvent> holding = evaluate_alerts(rules, summary, volumes);
  std::vector<v1::AlertEvent> opened;
  auto next = holding.begin();
  for (const AlertRule& rule : rules) {
    const bool holds = next != holding.end() && next->rule() == rule.name;
    std::string key = episode_key(rule.name, summary.id());
    auto found = episodes_.find(key);
    const bool open = found != episodes_.end() && found->second.open;
    if (holds == open) {
      if (holds) ++next;  // the episode goes on
      continue;
    }
    Episode& episode = found != episodes_.end() ? found->second : episodes_[key];
    episode.open = holds;
    if (holds) ++episode.number;
    writes->push_back(StateWrite{std::move(key),
                                 std::to_string(episode.number) + (holds ? " open" : " closed"),
                                 summary.product_id()});
    if (!holds) continue;
    v1::AlertEvent& alert = *next++;
    alert.set_alert_id(
        alert.kind() == v1::ALERT_KIND_NEW_PAIN_POINT
            ? alert_id(rule.name, summary.id(),
                       std::to_string(base::micros_of(alert.window_start())))
            : alert_id(rule.name, summary.id(), "e" + std::to_string(episode.number)));
    opened.push_back(std::move(alert));
  }
  return opened;
}

std::size_t AlertEpisodes::open_episodes() const {
  std::size_t open = 0;
  for (const auto& [key, episode] : episodes_) open += episode.open ? 1 : 0;
  return open;
}

}  // namespace painpoint::aggregator

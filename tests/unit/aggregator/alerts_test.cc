// Alert rules: parsing, each kind's threshold and window, episodes (once while a condition holds,
// again only after it was false), and that a replay of the same events through the aggregator in
// differently sized batches fires the same alerts.
#include "painpoint/aggregator/alerts.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "map_state.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/state_key_owner.h"

namespace painpoint::aggregator {
namespace {

constexpr std::int64_t kDay = 86'400;
// 2026-09-28 00:00:00 UTC, a Monday; 20,724 days after the epoch (a multiple of 7 plus 4).
constexpr std::int64_t kStart = 1'790'553'600;

AlertRule rule(std::string_view name, std::string_view spec) {
  auto parsed = parse_alert_rule(name, spec);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    ADD_FAILURE() << *error;
    return {};
  }
  return std::get<AlertRule>(parsed);
}

std::string error_of(std::string_view name, std::string_view spec) {
  auto parsed = parse_alert_rule(name, spec);
  auto* error = std::get_if<std::string>(&parsed);
  return error ? *error : "<parsed>";
}

v1::PainPointSummary summary(std::int64_t first_s, std::int64_t last_s, std::int64_t accounts) {
  v1::PainPointSummary s;
  s.set_id("pp-1");
  s.set_product_id("app");
  s.set_status(v1::STATUS_ACTIVE);
  s.set_label("camera crash");
  s.mutable_first_seen()->set_seconds(first_s);
  s.mutable_last_seen()->set_seconds(last_s);
  s.set_account_count(accounts);
  s.set_event_count(accounts);
  return s;
}

// 28 daily counts ending on the day of last_seen: `previous` per day in the 7 days before the
// last 7, `last` per day in the last 7.
v1::PainPointSummary with_days(v1::PainPointSummary s, std::int64_t previous, std::int64_t last) {
  s.clear_daily_counts();
  for (int i = 0; i < 28; ++i) s.add_daily_counts(i >= 21 ? last : (i >= 14 ? previous : 0));
  return s;
}

TEST(AlertRules, ParseEachKindWithDefaultsAndDescribeRoundTrips) {
  const AlertRule fresh = rule("fresh", "new_pain_point accounts=5");
  const auto& n = std::get<NewPainPointRule>(fresh.condition);
  EXPECT_EQ(n.accounts, 5u);
  EXPECT_EQ(n.within, std::chrono::hours(24));
  const AlertRule spike = rule("spike-7d", "spike  factor=3 min_arr_cents=5000000");
  const auto& sp = std::get<SpikeRule>(spike.condition);
  EXPECT_DOUBLE_EQ(sp.factor, 3.0);
  EXPECT_EQ(sp.min_events, 10);
  EXPECT_EQ(sp.min_baseline, 5);
  EXPECT_EQ(sp.min_arr, Cents{5'000'000});
  const AlertRule severe = rule("severe", "severity at_least=7.5");
  EXPECT_DOUBLE_EQ(std::get<SeverityRule>(severe.condition).at_least, 7.5);
  for (const AlertRule& r : {fresh, spike, severe}) {
    const AlertRule again = rule(r.name, describe_alert_rule(r));
    EXPECT_EQ(describe_alert_rule(again), describe_alert_rule(r));
  }
}

TEST(AlertRules, BadRulesSayWhatIsWrong) {
  EXPECT_EQ(error_of("x", "spike"), "spike needs factor=a number >= 1");
  EXPECT_EQ(error_of("x", "new_pain_point accounts=0"),
            "bad value '0' for accounts (expected a whole number >= 1)");
  EXPECT_EQ(error_of("x", "severity at_least=high"),
            "bad value 'high' for at_least (expected a number >= 0)");
  EXPECT_EQ(error_of("x", "spike factor=3 min_arr=5"), "unknown key 'min_arr' for spike");
  EXPECT_EQ(error_of("x", "spike factor=3 min_baseline=0"),
            "bad value '0' for min_baseline (expected a whole number >= 1)");
  EXPECT_EQ(error_of("x", "trend above=2"),
            "unknown rule kind 'trend' (expected new_pain_point, spike or severity)");
  EXPECT_EQ(error_of("x", "spike factor"), "expected key=value, got 'factor'");
  EXPECT_EQ(error_of("x", "spike factor=2 factor=3"), "'factor' given twice");
  EXPECT_EQ(error_of("x", ""), "empty rule: expected new_pain_point, spike or severity");
  EXPECT_EQ(error_of("Big Rule", "spike factor=2"),
            "rule name 'Big Rule' must be 1-64 characters of a-z, 0-9, _ and -");
}

TEST(AlertRules, NewPainPointFiresAtTheAccountThresholdWithinTheSpanOnly) {
  const std::vector<AlertRule> rules = {rule("fresh", "new_pain_point accounts=5 within_hours=24")};
  EXPECT_TRUE(evaluate_alerts(rules, summary(kStart, kStart + 3600, 4)).empty());
  const auto fired = evaluate_alerts(rules, summary(kStart, kStart + 3600, 5));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind(), v1::ALERT_KIND_NEW_PAIN_POINT);
  EXPECT_EQ(fired[0].rule(), "fresh");
  EXPECT_EQ(fired[0].pain_point_id(), "pp-1");
  EXPECT_EQ(fired[0].window_start().seconds(), kStart);
  EXPECT_EQ(fired[0].triggered_at().seconds(), kStart + 3600);
  // Later states of the same pain point have the same window: its id is the same.
  const auto later = evaluate_alerts(rules, summary(kStart, kStart + 7200, 9));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].window_start().seconds(), kStart);
  // Exactly 24 h still counts; past it the pain point is no longer new.
  EXPECT_EQ(evaluate_alerts(rules, summary(kStart, kStart + kDay, 5)).size(), 1u);
  EXPECT_TRUE(evaluate_alerts(rules, summary(kStart, kStart + kDay + 1, 5)).empty());
  // Merged and retired pain points raise nothing.
  auto merged = summary(kStart, kStart + 3600, 9);
  merged.set_status(v1::STATUS_MERGED);
  EXPECT_TRUE(evaluate_alerts(rules, merged).empty());
}

TEST(AlertRules, SpikeNeedsTheFactorAnEstablishedBaselineEnoughEventsAndArr) {
  const std::vector<AlertRule> rules = {
      rule("spike", "spike factor=3 min_events=10 min_arr_cents=100000")};
  auto s = summary(kStart - 30 * kDay, kStart + 3 * kDay, 40);
  s.set_arr_at_risk_cents(100'000);
  // 7 before: 7 events; last 7: 14 (2x), 28 (4x); none before (no baseline).
  EXPECT_TRUE(evaluate_alerts(rules, with_days(s, 1, 2)).empty());
  const auto fired = evaluate_alerts(rules, with_days(s, 1, 4));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind(), v1::ALERT_KIND_SPIKE);
  EXPECT_EQ(fired[0].last_7_days_count(), 28);
  EXPECT_EQ(fired[0].previous_7_days_count(), 7);
  EXPECT_EQ(fired[0].window_start().seconds(), kStart + 3 * kDay);  // the day it holds
  EXPECT_TRUE(evaluate_alerts(rules, with_days(s, 0, 4)).empty());
  auto poor = with_days(s, 1, 4);
  poor.set_arr_at_risk_cents(99'999);
  EXPECT_TRUE(evaluate_alerts(rules, poor).empty());
  // Nine times the baseline, but 9 events are fewer than min_events.
  auto few = with_days(s, 0, 0);
  few.set_daily_counts(13, 1);
  few.set_daily_counts(27, 9);
  EXPECT_TRUE(evaluate_alerts(rules, few).empty());
  // 40 over 4: ten times, but a baseline of 4 events is below min_baseline (5) ...
  auto thin = with_days(s, 0, 0);
  for (int day : {14, 16, 18, 20}) thin.set_daily_counts(day, 1);
  thin.set_daily_counts(27, 40);
  EXPECT_TRUE(evaluate_alerts(rules, thin).empty());
  thin.set_daily_counts(15, 1);
  EXPECT_EQ(evaluate_alerts(rules, thin).size(), 1u);
  // ... and a pain point that began after the first day of the baseline week has no baseline
  // week: its first weeks are the new_pain_point rule's business.
  auto young = with_days(s, 1, 4);
  young.mutable_first_seen()->set_seconds(kStart + 3 * kDay - 13 * kDay);
  EXPECT_EQ(evaluate_alerts(rules, young).size(), 1u);
  young.mutable_first_seen()->set_seconds(kStart + 3 * kDay - 12 * kDay);
  EXPECT_TRUE(evaluate_alerts(rules, young).empty());
}

TEST(AlertRules, ASpikeIsBeyondChance) {
  const std::vector<AlertRule> rules = {rule("spike", "spike factor=3")};
  auto s = with_days(summary(kStart - 30 * kDay, kStart, 40), 1, 3);
  // 21 after 7: three times, but 21 or more of 28 events in one of two equal weeks happens by
  // chance with probability 0.0063 (binomial, p = 1/2): not yet a spike.
  EXPECT_TRUE(evaluate_alerts(rules, s).empty());
  // 26 after 7: P = 0.00066.
  s.set_daily_counts(27, 8);
  EXPECT_EQ(evaluate_alerts(rules, s).size(), 1u);
  // 63 after 21 is three times too, and far beyond chance (P = 3e-6).
  EXPECT_EQ(evaluate_alerts(rules, with_days(s, 3, 9)).size(), 1u);
}

TEST(AlertRules, ASpikeOutgrowsTheRestOfItsProduct) {
  const std::vector<AlertRule> rules = {rule("spike", "spike factor=3")};
  const auto camera = with_days(summary(kStart - 30 * kDay, kStart, 40), 2, 8);  // 14 -> 56
  auto other = with_days(summary(kStart - 30 * kDay, kStart, 400), 10, 20);      // 70 -> 140
  other.set_id("pp-2");
  ProductVolumes volumes;
  volumes.update(camera);
  volumes.update(other);
  EXPECT_EQ(volumes.others(camera, 0, 1'000'000), 70 + 140);  // the other's, not its own
  // The camera quadrupled, the rest of the product doubled: 4 < 3 x 2, no spike ...
  EXPECT_EQ(evaluate_alerts(rules, camera).size(), 1u);
  EXPECT_TRUE(evaluate_alerts(rules, camera, &volumes).empty());
  // ... until the rest is flat again (a new summary replaces the old one).
  volumes.update(with_days(other, 10, 10));
  EXPECT_EQ(evaluate_alerts(rules, camera, &volumes).size(), 1u);
  // A merged pain point leaves the product's volume.
  auto merged = with_days(other, 10, 10);
  merged.set_status(v1::STATUS_MERGED);
  volumes.update(merged);
  EXPECT_EQ(volumes.others(camera, 0, 1'000'000), 0);
}

TEST(AlertRules, AnEpisodeFiresOnceWhileItsConditionHoldsAndAgainOnlyAfterItWasFalse) {
  const std::vector<AlertRule> rules = {rule("severe", "severity at_least=5"),
                                        rule("severe-2", "severity at_least=5")};
  AlertEpisodes episodes;
  std::vector<StateWrite> writes;
  auto s = summary(kStart - 30 * kDay, kStart, 40);
  s.set_severity(4.99);
  EXPECT_TRUE(episodes.evaluate(rules, s, nullptr, &writes).empty());
  EXPECT_TRUE(writes.empty());
  s.set_severity(5.0);
  const auto first = episodes.evaluate(rules, s, nullptr, &writes);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].kind(), v1::ALERT_KIND_SEVERITY);
  EXPECT_EQ(first[0].window_start().seconds(), kStart);
  // Another rule with the same condition is another alert.
  EXPECT_NE(first[0].alert_id(), first[1].alert_id());
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].key, "alert-episode/severe/pp-1");
  EXPECT_EQ(writes[0].value, "1 open");
  EXPECT_EQ(writes[0].product_id, "app") << "the pain point's product";
  const auto owner = state_key_owner(writes[0].key);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->pain_point_id, "pp-1");
  // Still severe three weeks later: the same episode, nothing new.
  s.mutable_last_seen()->set_seconds(kStart + 21 * kDay);
  writes.clear();
  EXPECT_TRUE(episodes.evaluate(rules, s, nullptr, &writes).empty());
  EXPECT_TRUE(writes.empty());
  // The episodes as stored take over in another process (a restart).
  AlertEpisodes restarted;
  for (const auto& w : std::vector<StateWrite>{{"alert-episode/severe/pp-1", "1 open"},
                                               {"alert-episode/severe-2/pp-1", "1 open"}}) {
    EXPECT_TRUE(restarted.restore(w.key, *w.value));
  }
  EXPECT_FALSE(restarted.restore("agg/app/m", "1 open"));
  EXPECT_FALSE(restarted.restore("alert-episode/x/pp-1", "1"));
  EXPECT_TRUE(restarted.evaluate(rules, s, nullptr, &writes).empty());
  // Below the threshold: the episodes close; above it again: the second episodes, new ids.
  s.set_severity(4.0);
  EXPECT_TRUE(restarted.evaluate(rules, s, nullptr, &writes).empty());
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].value, "1 closed");
  EXPECT_EQ(restarted.open_episodes(), 0u);
  s.set_severity(6.0);
  s.mutable_last_seen()->set_seconds(kStart + 22 * kDay + 3600);
  writes.clear();
  const auto again = restarted.evaluate(rules, s, nullptr, &writes);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(writes[0].value, "2 open");
  EXPECT_EQ(again[0].window_start().seconds(), kStart + 22 * kDay);
  EXPECT_NE(again[0].alert_id(), first[0].alert_id());
  // A merged pain point closes its episodes.
  s.set_status(v1::STATUS_MERGED);
  writes.clear();
  EXPECT_TRUE(restarted.evaluate(rules, s, nullptr, &writes).empty());
  EXPECT_EQ(writes.size(), 2u);
}

v1::FeedbackEvent event(int n, std::int64_t seconds, const std::string& account,
                        const std::string& text) {
  v1::FeedbackEvent e;
  e.set_event_id("e-" + std::to_string(n));
  e.set_product_id("app");
  e.set_text(text);
  e.mutable_occurred_at()->set_seconds(seconds);
  e.set_account_id(account);
  e.set_account_arr_cents(1'000'000);
  e.set_source(v1::SOURCE_SUPPORT);
  return e;
}

// A quiet baseline of camera crashes (one a day for 14 days), then a burst from many accounts,
// plus a new billing pain point that reaches 6 accounts within hours.
std::vector<v1::FeedbackEvent> alert_stream() {
  const std::vector<std::string> camera = {"the app crashes when I open the camera",
                                           "the app crashes when I open the camera again",
                                           "the app crashes when I open the camera today"};
  const std::vector<std::string> billing = {"billing charged me twice this month",
                                            "billing charged me twice this month again",
                                            "billing charged me twice this month, please refund"};
  std::vector<v1::FeedbackEvent> events;
  int n = 0;
  for (int day = 0; day < 14; ++day) {
    events.push_back(event(n++, kStart + day * kDay, "acct-base", camera[day % 3]));
  }
  for (int i = 0; i < 30; ++i) {
    events.push_back(event(n++, kStart + 14 * kDay + i * 3600, "acct-" + std::to_string(i % 12),
                           camera[i % 3]));
  }
  for (int i = 0; i < 8; ++i) {
    events.push_back(
        event(n++, kStart + 15 * kDay + i * 600, "acct-b" + std::to_string(i), billing[i % 3]));
  }
  return events;
}

// Fires the alerts of every take_changes() after `batch` events, by episode and once per id (as
// the service does), and returns them in firing order.
std::vector<std::string> replay(std::size_t batch, const std::vector<AlertRule>& rules) {
  testing::MapState state;
  Aggregator aggregator(ClusterConfig{.encoder = EncoderMode::kStatic}, &state);
  AlertEpisodes episodes;
  ProductVolumes volumes;
  std::vector<StateWrite> writes;
  std::vector<std::string> fired;
  std::set<std::string> seen;
  const auto events = alert_stream();
  for (std::size_t i = 0; i < events.size(); ++i) {
    aggregator.add(events[i]);
    if ((i + 1) % batch != 0 && i + 1 != events.size()) continue;
    const auto summaries = aggregator.take_changes().summaries;
    for (const auto& s : summaries) volumes.update(s);
    for (const auto& s : summaries) {
      for (const auto& alert : episodes.evaluate(rules, s, &volumes, &writes)) {
        if (seen.insert(alert.alert_id()).second) fired.push_back(alert.rule() + " " + s.id());
      }
    }
  }
  return fired;
}

TEST(AlertRules, AReplayInOtherBatchSizesFiresTheSameAlertsOnce) {
  const std::vector<AlertRule> rules = {rule("fresh", "new_pain_point accounts=6"),
                                        rule("spike", "spike factor=3 min_events=10")};
  const auto one_by_one = replay(1, rules);
  std::multiset<std::string> kinds;
  for (const auto& f : one_by_one) kinds.insert(f.substr(0, f.find(' ')));
  // The billing pain point is new with 8 accounts in 70 minutes; the camera one spikes. The
  // camera pain point is 14 days old when it reaches 6 accounts: not new.
  EXPECT_EQ(kinds.count("fresh"), 1u) << ::testing::PrintToString(one_by_one);
  EXPECT_EQ(kinds.count("spike"), 1u) << ::testing::PrintToString(one_by_one);
  for (std::size_t batch : {3u, 7u, 1000u}) {
    auto other = replay(batch, rules);
    EXPECT_EQ(std::multiset<std::string>(other.begin(), other.end()),
              std::multiset<std::string>(one_by_one.begin(), one_by_one.end()))
        << "batch " << batch;
  }
}

}  // namespace
}  // namespace painpoint::aggregator

// Human curation on the aggregator: merge, rename, split, and that maintenance, restarts and
// reruns respect them.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "curation_fixture.h"
#include "map_state.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/state_key_owner.h"

namespace painpoint::aggregator {
namespace {

using Code = CurationOutcome::Code;

using namespace testing;  // MapState, and the events and config of curation_fixture.h

TEST(Curation, MergeKeepsIntoIdAndMarksTheOtherMerged) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  ASSERT_NE(camera, billing);
  const auto before = latest(a.take_changes());
  ASSERT_EQ(a.active_pain_points(), 2u);

  // Into the younger one: a human merge keeps `into` whatever the ages.
  const auto out = a.merge("p", camera, billing);
  ASSERT_TRUE(out.ok()) << out.message;
  EXPECT_EQ(out.id, billing);
  const auto after = latest(a.take_changes());
  ASSERT_TRUE(after.contains(camera));
  EXPECT_EQ(after.at(camera).status(), v1::STATUS_MERGED);
  EXPECT_EQ(after.at(camera).merged_into(), billing);
  EXPECT_GT(after.at(camera).version(), before.at(camera).version());
  ASSERT_TRUE(after.contains(billing));
  EXPECT_EQ(after.at(billing).status(), v1::STATUS_ACTIVE);
  EXPECT_EQ(after.at(billing).event_count(), 8);
  EXPECT_GT(after.at(billing).version(), before.at(billing).version());
  EXPECT_EQ(a.resolve(camera), billing);
  EXPECT_EQ(a.active_pain_points(), 1u);

  EXPECT_EQ(a.merge("p", billing, billing).code, Code::kConflict);
  EXPECT_EQ(a.merge("p", camera, billing).code, Code::kNotFound) << "a merge is final";
  EXPECT_EQ(a.merge("p", billing, camera).code, Code::kNotFound);
  EXPECT_EQ(a.merge("p", "pp-nope", billing).code, Code::kNotFound);
  EXPECT_EQ(a.merge("other", billing, "pp-x").code, Code::kNotFound);
  EXPECT_TRUE(a.take_changes().summaries.empty()) << "failed operations change nothing";
}

// The per-partition store keeps each state key in its product's partition: every write names the
// product, the merge records of a curation included, and another product's writes name theirs.
TEST(Curation, EveryStateWriteNamesItsProduct) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  for (int i = 0; i < 3; ++i)
    a.add(event("o" + std::to_string(i), kCamera, 1'790'000'000, "other"));
  ASSERT_TRUE(a.merge("p", camera, billing).ok());
  const Changes changes = a.take_changes(Aggregator::StateOutput::kInclude);
  std::map<std::string, int> writes_per_product;
  bool merge_record = false;
  for (const StateWrite& w : changes.state) {
    ++writes_per_product[w.product_id];
    const std::optional<StateKeyOwner> owner = state_key_owner(w.key);
    ASSERT_TRUE(owner.has_value()) << w.key;
    if (w.key.starts_with("agg-merged/")) {
      merge_record = true;
      EXPECT_EQ(w.product_id, "p") << w.key;
      EXPECT_EQ(owner->pain_point_id, camera) << "merged away";
    } else {
      EXPECT_EQ(owner->product_id, w.product_id) << w.key;
      EXPECT_TRUE(w.key.starts_with("agg/" + w.product_id + "/")) << w.key << " / " << w.product_id;
    }
  }
  EXPECT_TRUE(merge_record);
  EXPECT_GT(writes_per_product["p"], 0);
  EXPECT_GT(writes_per_product["other"], 0);
  EXPECT_EQ(writes_per_product.size(), 2u) << "no write without a product";
}

// Keys of each kind, and what is none of them (the migration refuses a store holding such keys).
TEST(StateKeys, OwnerOfEachKindOfKey) {
  auto owner = [](std::string_view key) {
    const std::optional<StateKeyOwner> o = state_key_owner(key);
    return o ? o->product_id + "|" + o->pain_point_id : std::string("none");
  };
  EXPECT_EQ(owner("agg/app/m"), "app|");
  EXPECT_EQ(owner("agg/web.v2/c/0000002a"), "web.v2|");
  EXPECT_EQ(owner("agg-merged/pp-00000000000000ff"), "|pp-00000000000000ff");
  EXPECT_EQ(owner("alert-episode/spike/pp-1"), "|pp-1");
  EXPECT_EQ(owner("alert-episode/team/spike/pp-2"), "|pp-2");
  for (const char* none : {"agg/", "agg//m", "agg/app", "agg-merged/", "alert-episode/pp-1",
                           "alert-episode/spike/", "other/app/m", ""}) {
    EXPECT_EQ(owner(none), "none") << none;
  }
}

TEST(Curation, RenameSurvivesLaterEvents) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  a.take_changes();
  ASSERT_TRUE(a.rename("p", camera, "Camera crashes (iOS 18)").ok());
  auto s = latest(a.take_changes());
  EXPECT_EQ(s.at(camera).label(), "Camera crashes (iOS 18)");
  const std::int64_t v = s.at(camera).version();
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(feed(a, "more" + std::to_string(round) + "-", kCamera + " again", 5), camera);
    s = latest(a.take_changes());
    ASSERT_TRUE(s.contains(camera));
    EXPECT_EQ(s.at(camera).label(), "Camera crashes (iOS 18)");
    EXPECT_GT(s.at(camera).version(), v);
  }
  EXPECT_FALSE(s.at(camera).keywords().empty()) << "keywords stay automatic";

  EXPECT_EQ(a.rename("p", camera, "bad\nlabel").code, Code::kInvalid);
  EXPECT_EQ(a.rename("p", camera, std::string("\xff\xfe", 2)).code, Code::kInvalid);
  EXPECT_EQ(a.rename("p", camera, std::string(Aggregator::kMaxLabelBytes + 1, 'x')).code,
            Code::kInvalid);
  EXPECT_EQ(a.rename("p", "pp-nope", "x").code, Code::kNotFound);
  // An empty label hands the label back to the automatic one.
  ASSERT_TRUE(a.rename("p", camera, "").ok());
  EXPECT_NE(latest(a.take_changes()).at(camera).label(), "Camera crashes (iOS 18)");
}

// Near-duplicates open separate pain points, merged only at the maintenance that
// run_to_maintenance() triggers.
ClusterConfig merged_at_maintenance_only() {
  ClusterConfig c = config();
  c.join_threshold = 0.99;
  c.size_bonus = 0;
  c.maintenance_interval = 1000;
  return c;
}

// Adds unrelated events until the aggregator, fed `fed` events so far, reaches its maintenance.
void run_to_maintenance(Aggregator& a, int fed) {
  for (int i = 0; i < 1000 - fed; ++i)
    (void)a.add(event("f" + std::to_string(i), "filler " + std::to_string(i)));
}

TEST(Curation, RenamedPainPointSurvivesAnAutomaticMerge) {
  Aggregator a(merged_at_maintenance_only(), nullptr);
  const std::string older = feed(a, "a", "card payment declined at checkout", 3);
  const std::string younger = feed(a, "b", "card payment declined at checkout with visa", 3);
  ASSERT_NE(older, younger);
  ASSERT_TRUE(a.rename("p", younger, "Visa declines").ok());
  run_to_maintenance(a, 6);
  EXPECT_EQ(a.resolve(older), younger) << "the human-named pain point is the survivor";
  const auto s = latest(a.take_changes());
  EXPECT_EQ(s.at(younger).label(), "Visa declines");
  EXPECT_EQ(s.at(older).status(), v1::STATUS_MERGED);
}

TEST(Curation, APainPointAHumanMergedIntoSurvivesAnAutomaticMerge) {
  Aggregator a(merged_at_maintenance_only(), nullptr);
  const std::string older = feed(a, "a", "card payment declined at checkout", 3);
  const std::string younger = feed(a, "b", "card payment declined at checkout with visa", 3);
  const std::string third = feed(a, "c", "card payment declined at checkout with amex", 3);
  ASSERT_EQ(std::set<std::string>({older, younger, third}).size(), 3u);
  ASSERT_TRUE(a.merge("p", third, younger).ok());
  run_to_maintenance(a, 9);
  EXPECT_EQ(a.resolve(older), younger) << "the pain point a human merged into is the survivor";
  EXPECT_EQ(a.resolve(third), younger);
  const auto s = latest(a.take_changes());
  EXPECT_EQ(s.at(older).status(), v1::STATUS_MERGED);
  EXPECT_EQ(s.at(younger).status(), v1::STATUS_ACTIVE);
}

TEST(Curation, ASplitPainPointSurvivesAnAutomaticMergeWithAnUncuratedOne) {
  Aggregator a(merged_at_maintenance_only(), nullptr);
  const std::string older = feed(a, "a", "card payment declined at checkout", 3);
  const std::string younger = feed(a, "b", "card payment declined at checkout with visa", 4);
  ASSERT_NE(older, younger);
  const std::vector<v1::FeedbackEvent> moved = {
      event("b2", "card payment declined at checkout with visa", 1'790'000'000 + 120),
      event("b3", "card payment declined at checkout with visa", 1'790'000'000 + 180)};
  const auto out = a.split("p", younger, moved);
  ASSERT_TRUE(out.ok()) << out.message;
  run_to_maintenance(a, 7);
  const std::string survivor = a.resolve(older);
  EXPECT_TRUE(survivor == younger || survivor == out.id)
      << "the uncurated pain point goes into a split one, not the other way round: " << survivor;
  EXPECT_EQ(a.resolve(younger), younger);
  EXPECT_EQ(a.resolve(out.id), out.id);
}

TEST(Curation, SplitMovesEventsAndMaintenanceDoesNotMergeThemBack) {
  Aggregator a(config(), nullptr);
  std::vector<v1::FeedbackEvent> events;
  for (int i = 0; i < 8; ++i)
    events.push_back(event("e" + std::to_string(i), kCamera, 1'790'000'000 + i));
  std::string id;
  for (const auto& e : events) id = a.add(e);
  const auto before = latest(a.take_changes());
  ASSERT_EQ(before.at(id).event_count(), 8);

  const std::vector<v1::FeedbackEvent> moved(events.begin() + 5, events.end());
  const auto out = a.split("p", id, moved);
  ASSERT_TRUE(out.ok()) << out.message;
  ASSERT_NE(out.id, id);
  const Changes ch = a.take_changes();
  std::map<std::string, std::string> membership;
  for (const auto& m : ch.memberships) membership[m.event_id] = m.pain_point_id;
  EXPECT_EQ(membership,
            (std::map<std::string, std::string>{{"e5", out.id}, {"e6", out.id}, {"e7", out.id}}));
  auto s = latest(ch);
  EXPECT_EQ(s.at(id).event_count(), 5);
  EXPECT_GT(s.at(id).version(), before.at(id).version());
  EXPECT_EQ(s.at(out.id).event_count(), 3);
  EXPECT_EQ(s.at(out.id).status(), v1::STATUS_ACTIVE);
  for (const auto& x : s.at(id).exemplars()) EXPECT_LT(x.event_id(), "e5");
  for (const auto& x : s.at(out.id).exemplars()) EXPECT_GE(x.event_id(), "e5");
  EXPECT_EQ(a.active_pain_points(), 2u);

  // Identical texts: maintenance would merge the two at once if it ignored the split.
  for (int i = 0; i < 40; ++i) a.add(event("late" + std::to_string(i), kCamera));
  a.take_changes();
  EXPECT_EQ(a.resolve(out.id), out.id);
  EXPECT_EQ(a.resolve(id), id);
  EXPECT_EQ(a.active_pain_points(), 2u);

  // Small splits are pain points too (a human made them), and a human may still merge back.
  const auto tiny = a.split("p", id, std::span(events).subspan(0, 1));
  ASSERT_TRUE(tiny.ok()) << tiny.message;
  EXPECT_TRUE(latest(a.take_changes()).contains(tiny.id));
  ASSERT_TRUE(a.merge("p", tiny.id, id).ok());
  EXPECT_EQ(a.resolve(tiny.id), id);

  EXPECT_EQ(a.split("p", id, {}).code, Code::kInvalid);
  const std::vector<v1::FeedbackEvent> twice = {events[0], events[0]};
  EXPECT_EQ(a.split("p", id, twice).code, Code::kInvalid);
  const std::vector<v1::FeedbackEvent> foreign = {event("z", kCamera, 0, "q")};
  EXPECT_EQ(a.split("p", id, foreign).code, Code::kInvalid);
  EXPECT_EQ(a.split("p", out.id, moved).code, Code::kConflict) << "would empty it";
}

// A stream with curation interleaved; `restart_at` (batch index) rebuilds the aggregator from
// the state written so far, as a service restart does.
struct CuratedRun {
  std::vector<std::string> summaries;
  std::vector<std::string> state;
  std::vector<std::string> memberships;
};

CuratedRun run(std::size_t restart_at) {
  MapState store;
  auto a = std::make_unique<Aggregator>(config(), &store);
  CuratedRun r;
  auto flush = [&] {
    const Changes c = a->take_changes();
    store.apply(c);
    for (const auto& s : c.summaries) r.summaries.push_back(s.SerializeAsString());
    for (const auto& w : c.state) r.state.push_back(w.key + "=" + w.value.value_or("<del>"));
    for (const auto& m : c.memberships) r.memberships.push_back(m.event_id + ">" + m.pain_point_id);
  };
  const std::vector<std::string> texts = {kCamera, kBilling, "password reset email never arrives",
                                          "csv export drops the date column"};
  std::vector<v1::FeedbackEvent> all;
  for (int i = 0; i < 120; ++i) {
    all.push_back(
        event("e" + std::to_string(i),
              texts[static_cast<std::size_t>(i) % texts.size()] + (i % 3 == 0 ? " today" : ""),
              1'790'000'000 + i * 3600));
  }
  std::map<std::string, std::string> joined;
  for (std::size_t batch = 0; batch * 10 < all.size(); ++batch) {
    if (batch == restart_at) a = std::make_unique<Aggregator>(config(), &store);
    for (std::size_t i = batch * 10; i < (batch + 1) * 10; ++i)
      joined[all[i].event_id()] = a->add(all[i]);
    if (batch == 3) {
      EXPECT_TRUE(a->rename("p", a->resolve(joined["e0"]), "Camera crash").ok());
      const std::vector<v1::FeedbackEvent> moved = {all[4], all[8]};
      EXPECT_TRUE(a->split("p", a->resolve(joined["e4"]), moved).ok());
    }
    if (batch == 5) {
      EXPECT_TRUE(a->merge("p", a->resolve(joined["e3"]), a->resolve(joined["e2"])).ok());
    }
    flush();
  }
  return r;
}

// Index of the first difference (or "equal"): the records are bytes, too long to print whole.
std::string first_difference(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) return "record " + std::to_string(i) + " differs";
  }
  if (a.size() != b.size()) {
    return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  }
  return "equal";
}

TEST(Curation, DeterministicAndRestartKeepsCuration) {
  const CuratedRun straight = run(SIZE_MAX);
  EXPECT_EQ(first_difference(run(SIZE_MAX).summaries, straight.summaries), "equal");
  EXPECT_EQ(first_difference(run(SIZE_MAX).state, straight.state), "equal");
  // Restarting after the curation (batch 4 and 6) continues exactly like the straight run.
  for (std::size_t restart : {4u, 6u, 9u}) {
    const CuratedRun r = run(restart);
    EXPECT_EQ(first_difference(r.summaries, straight.summaries), "equal")
        << "restart at batch " << restart;
    EXPECT_EQ(first_difference(r.state, straight.state), "equal") << "restart at batch " << restart;
    EXPECT_EQ(first_difference(r.memberships, straight.memberships), "equal")
        << "restart at batch " << restart;
  }
  bool labelled = false;
  for (const auto& bytes : straight.summaries) {
    v1::PainPointSummary s;
    ASSERT_TRUE(s.ParseFromString(bytes));
    labelled = labelled || s.label() == "Camera crash";
  }
  EXPECT_TRUE(labelled);
}

}  // namespace
}  // namespace painpoint::aggregator

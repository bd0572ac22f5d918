// Aggregator::succeed(): how a rebuilt product takes over the identity of the state it replaces
// (`painpoint replay rebuild`), and read_curation().
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "curation_fixture.h"
#include "map_state.h"
#include "painpoint/aggregator/aggregator.h"

namespace painpoint::aggregator {
namespace {

using Code = CurationOutcome::Code;
using namespace testing;  // MapState, and the events and config of curation_fixture.h

TEST(Succession, RenamesRaiseVersionsAndRepublish) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  (void)a.take_changes();
  Succession s;
  s.renames.push_back({camera, "pp-old-camera", 41});
  const auto out = a.succeed("p", nullptr, s);
  ASSERT_TRUE(out.ok()) << out.message;
  const auto after = latest(a.take_changes());
  ASSERT_TRUE(after.contains("pp-old-camera"));
  EXPECT_FALSE(after.contains(camera));
  EXPECT_EQ(after.at("pp-old-camera").version(), 42);
  EXPECT_EQ(after.at("pp-old-camera").event_count(), 4);
  EXPECT_FALSE(after.contains(billing));  // untouched: nothing to republish
  // New events join the renamed pain point under its new id.
  EXPECT_EQ(a.add(event("c9", kCamera, 1'790'001'000)), "pp-old-camera");
  EXPECT_EQ(a.resolve("pp-old-camera"), "pp-old-camera");
}

TEST(Succession, IdsMaySwapAndPendingMembershipsFollow) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  Succession s;
  s.renames.push_back({camera, billing, 0});
  s.renames.push_back({billing, camera, 0});
  ASSERT_TRUE(a.succeed("p", nullptr, s).ok());
  const Changes c = a.take_changes();
  for (const auto& m : c.memberships) {
    EXPECT_EQ(m.pain_point_id, m.event_id[0] == 'c' ? billing : camera) << m.event_id;
  }
  const auto after = latest(c);
  EXPECT_EQ(after.at(billing).exemplars(0).text(), kCamera);
  EXPECT_EQ(after.at(camera).exemplars(0).text(), kBilling);
}

TEST(Succession, RejectsBadRequestsWithoutChangingAnything) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  (void)a.take_changes();
  Succession dup;
  dup.renames.push_back({camera, billing, 0});  // billing stays live: two clusters, one id
  EXPECT_EQ(a.succeed("p", nullptr, dup).code, Code::kConflict);
  Succession missing;
  missing.renames.push_back({"pp-nope", "pp-x", 0});
  EXPECT_EQ(a.succeed("p", nullptr, missing).code, Code::kNotFound);
  Succession empty;
  empty.renames.push_back({camera, "", 0});
  EXPECT_EQ(a.succeed("p", nullptr, empty).code, Code::kInvalid);
  Succession live_merged;
  live_merged.merged_into.emplace_back(camera, billing);
  EXPECT_EQ(a.succeed("p", nullptr, live_merged).code, Code::kConflict);
  EXPECT_TRUE(a.take_changes().summaries.empty());
  EXPECT_EQ(a.add(event("c9", kCamera, 1'790'001'000)), camera);
}

TEST(Succession, MergedAndRetiredIdsResolveAsDeclared) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  Succession s;
  s.merged_into.emplace_back("pp-gone-into-camera", camera);
  s.retired.push_back("pp-retired");
  ASSERT_TRUE(a.succeed("p", nullptr, s).ok());
  MapState state;
  state.apply(a.take_changes());
  Aggregator reloaded(config(), &state);
  EXPECT_EQ(reloaded.resolve("pp-gone-into-camera"), camera);
  EXPECT_EQ(reloaded.resolve("pp-retired"), "pp-retired");
}

TEST(Succession, ARenamedIdLosesAStaleMergeRecord) {
  // A rebuild can merge away a cluster whose id the replaced state used for a pain point that
  // another cluster now inherits: the inherited id must not resolve to the merge survivor.
  ClusterConfig cfg = config();
  Aggregator a(cfg, nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  ASSERT_TRUE(a.merge("p", billing, camera).ok());
  ASSERT_EQ(a.resolve(billing), camera);
  Succession s;
  s.renames.push_back({camera, billing, 0});  // the survivor continues as `billing`
  ASSERT_TRUE(a.succeed("p", nullptr, s).ok());
  EXPECT_EQ(a.resolve(billing), billing);
  const auto after = latest(a.take_changes());
  ASSERT_TRUE(after.contains(billing));
  EXPECT_EQ(after.at(billing).status(), v1::STATUS_ACTIVE);  // no stale "merged" final record
  EXPECT_EQ(after.at(billing).event_count(), 8);
}

TEST(Succession, CurationFollowsRenamesAndReadCurationSeesIt) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 6);
  const std::string billing = feed(a, "b", kBilling, 4);
  ASSERT_TRUE(a.rename("p", camera, "Camera crashes").ok());
  Succession s;
  s.renames.push_back({camera, "pp-cam", 0});
  s.keep_apart.emplace_back("pp-cam", billing);
  ASSERT_TRUE(a.succeed("p", nullptr, s).ok());
  MapState state;
  const Changes c = a.take_changes();
  state.apply(c);
  EXPECT_EQ(latest(c).at("pp-cam").label(), "Camera crashes");
  const CurationRecord rec = read_curation(state, "p");
  ASSERT_EQ(rec.labels.size(), 1u);
  EXPECT_EQ(rec.labels[0].first, "pp-cam");
  ASSERT_EQ(rec.apart.size(), 1u);
  EXPECT_TRUE((rec.apart[0] == std::pair<std::string, std::string>{"pp-cam", billing}) ||
              (rec.apart[0] == std::pair<std::string, std::string>{billing, "pp-cam"}));
  EXPECT_TRUE(rec.merges.empty());
}

TEST(Succession, HumanMergesAreRecorded) {
  Aggregator a(config(), nullptr);
  const std::string camera = feed(a, "c", kCamera, 4);
  const std::string billing = feed(a, "b", kBilling, 4);
  ASSERT_TRUE(a.merge("p", camera, billing).ok());
  MapState state;
  state.apply(a.take_changes());
  const CurationRecord rec = read_curation(state, "p");
  ASSERT_EQ(rec.merges.size(), 1u);
  EXPECT_EQ(rec.merges[0].first, camera);
  EXPECT_EQ(rec.merges[0].second, billing);
}

TEST(Succession, SequenceNumbersContinueAfterThePreviousState) {
  // The previous state split a pain point, then opened more clusters. A rebuild that reaches
  // the same split with fewer clusters behind it must not mint that split id again.
  const std::vector<v1::FeedbackEvent> first = {event("c0", kCamera, 1'790'000'000)};
  Aggregator old(config(), nullptr);
  const std::string camera = feed(old, "c", kCamera, 5);
  const auto split = old.split("p", camera, first);
  ASSERT_TRUE(split.ok()) << split.message;
  for (int k = 0; k < 12; ++k) {
    feed(old, "n" + std::to_string(k) + "-",
         "unique remark number " + std::to_string(k) + " about widget" + std::to_string(k), 1);
  }
  MapState previous;
  previous.apply(old.take_changes());

  Aggregator same(config(), nullptr);  // without succession: the very same id comes back
  ASSERT_EQ(same.split("p", feed(same, "c", kCamera, 5), first).id, split.id);

  Aggregator fresh(config(), nullptr);
  const std::string rebuilt = feed(fresh, "c", kCamera, 5);
  ASSERT_TRUE(fresh.succeed("p", &previous, {}).ok());
  const auto again = fresh.split("p", rebuilt, first);
  ASSERT_TRUE(again.ok()) << again.message;
  EXPECT_NE(again.id, split.id);
}

}  // namespace
}  // namespace painpoint::aggregator

// The pure parts of `painpoint replay`: the id-inheritance rule, the rewind plan, the token
// bucket and timestamp parsing.
#include "replay.h"

#include <gtest/gtest.h>

#include <chrono>

#include "id_inheritance.h"

namespace painpoint::service {
namespace {

using Kind = OldFate::Kind;

// Events as (old group or -1, new group) pairs, in replay order.
InheritanceInput input(std::size_t n_old, std::size_t n_new,
                       const std::vector<std::pair<int, int>>& events) {
  InheritanceInput in;
  in.old_groups.assign(n_old, {true});
  in.new_groups.assign(n_new, {true});
  for (const auto& [o, n] : events) {
    InheritanceInput::Event e;
    if (o >= 0) e.old_group = static_cast<std::uint32_t>(o);
    e.new_group = static_cast<std::uint32_t>(n);
    in.events.push_back(e);
  }
  return in;
}

std::vector<std::pair<int, int>> repeat(int o, int n, int times) {
  return std::vector<std::pair<int, int>>(static_cast<std::size_t>(times), {o, n});
}

std::vector<std::pair<int, int>> concat(std::initializer_list<std::vector<std::pair<int, int>>> l) {
  std::vector<std::pair<int, int>> out;
  for (const auto& v : l) out.insert(out.end(), v.begin(), v.end());
  return out;
}

TEST(Inheritance, IdenticalGroupingsKeepEveryId) {
  const auto r =
      match_inheritance(input(3, 3, concat({repeat(0, 2, 5), repeat(1, 0, 4), repeat(2, 1, 3)})));
  EXPECT_EQ(r.heir_of[2], 0u);
  EXPECT_EQ(r.heir_of[0], 1u);
  EXPECT_EQ(r.heir_of[1], 2u);
  for (const auto& f : r.old_fates) {
    EXPECT_EQ(f.kind, Kind::kInherited);
    EXPECT_DOUBLE_EQ(f.jaccard, 1.0);
  }
}

TEST(Inheritance, MergeOfUnequalGroupsKeepsTheLargerIdAndMergesTheOther) {
  // Old 0 (6 events) and old 1 (4 events) become one new group: J = 0.6 and 0.4.
  const auto r = match_inheritance(input(2, 1, concat({repeat(0, 0, 6), repeat(1, 0, 4)})));
  EXPECT_EQ(r.heir_of[0], 0u);
  EXPECT_EQ(r.old_fates[0].kind, Kind::kInherited);
  EXPECT_EQ(r.old_fates[1].kind, Kind::kMerged);
  EXPECT_EQ(r.old_fates[1].new_group, 0u);
}

TEST(Inheritance, EvenMergeKeepsTheIdOfTheGroupWithTheEarliestEvent) {
  // J = 0.5 for both: the tie goes to the old group whose first event came first (old 1 here).
  const auto r = match_inheritance(input(2, 1, concat({repeat(1, 0, 3), repeat(0, 0, 3)})));
  EXPECT_EQ(r.heir_of[0], 1u);
  EXPECT_EQ(r.old_fates[0].kind, Kind::kMerged);
}

TEST(Inheritance, SplitGivesTheIdToTheLargerPartAndANewIdToTheRest) {
  // Old 0 (10 events) splits 7 / 3: J 0.7 inherits, the 3 form a new group without an heir.
  const auto r = match_inheritance(input(1, 2, concat({repeat(0, 1, 3), repeat(0, 0, 7)})));
  EXPECT_EQ(r.heir_of[0], 0u);
  EXPECT_FALSE(r.heir_of[1].has_value());
}

TEST(Inheritance, EvenSplitKeepsTheIdForThePartWithTheEarliestEvent) {
  const auto r = match_inheritance(input(1, 2, concat({repeat(0, 1, 4), repeat(0, 0, 4)})));
  EXPECT_EQ(r.heir_of[1], 0u);
  EXPECT_FALSE(r.heir_of[0].has_value());
}

TEST(Inheritance, BelowTheThresholdAnIdRetires) {
  // Old 0 spreads 4/3/3 over three new groups: best J = 0.4 < 0.5, no majority either.
  const auto r =
      match_inheritance(input(1, 3, concat({repeat(0, 0, 4), repeat(0, 1, 3), repeat(0, 2, 3)})));
  EXPECT_EQ(r.old_fates[0].kind, Kind::kRetired);
  for (const auto& h : r.heir_of) EXPECT_FALSE(h.has_value());
}

TEST(Inheritance, OneToOneEvenWhenAGroupWouldSuitTwo) {
  // With a low threshold new 0 suits old 0 (J 0.5) and old 1 (J 0.375): one heir each.
  InheritanceInput in = input(2, 2, concat({repeat(0, 0, 6), repeat(1, 0, 6), repeat(1, 1, 4)}));
  in.threshold = 0.3;
  const auto r = match_inheritance(in);
  ASSERT_TRUE(r.heir_of[0].has_value());
  ASSERT_TRUE(r.heir_of[1].has_value());
  EXPECT_NE(*r.heir_of[0], *r.heir_of[1]);
}

TEST(Inheritance, PublishedIdsNeverPassToCandidates) {
  InheritanceInput in = input(1, 1, repeat(0, 0, 3));
  in.new_groups[0].published = false;  // the same events are only a candidate now
  const auto r = match_inheritance(in);
  EXPECT_FALSE(r.heir_of[0].has_value());
  EXPECT_EQ(r.old_fates[0].kind, Kind::kRetired);  // no published majority holder either

  InheritanceInput cand = input(1, 1, repeat(0, 0, 2));
  cand.old_groups[0].published = false;
  cand.new_groups[0].published = false;
  EXPECT_EQ(match_inheritance(cand).heir_of[0], 0u);  // candidates may keep candidate ids
}

TEST(Inheritance, UnpublishedWithoutHeirIsDroppedNotRetired) {
  InheritanceInput in = input(1, 2, concat({repeat(0, 0, 1), repeat(0, 1, 1), repeat(-1, 0, 3)}));
  in.old_groups[0].published = false;
  in.threshold = 0.9;
  const auto r = match_inheritance(in);
  EXPECT_EQ(r.old_fates[0].kind, Kind::kDropped);
}

TEST(Inheritance, OldGroupWithoutReplayedEventsRetires) {
  const auto r = match_inheritance(input(2, 1, repeat(0, 0, 3)));
  EXPECT_EQ(r.old_fates[1].kind, Kind::kRetired);
}

TEST(RewindPlan, MovesBackNeverForwardAndTreatsNoneAsTheEnd) {
  const std::vector<std::pair<std::int32_t, std::int64_t>> stored = {{0, 100}, {1, 50}, {2, 80}};
  const std::vector<PartitionTimeOffset> lookup = {
      {0, 0, 120, 40},           // back from 100 to 40
      {1, 0, 90, 70},            // 70 is after the stored 50: stays at 50
      {2, 0, 80, std::nullopt},  // none at or after the time: the end (80), unchanged
      {3, 0, 30, 10},            // nothing stored: serve reads from the earliest anyway
  };
  const auto plan = plan_rewind(stored, lookup);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_TRUE(plan[0].changed);
  EXPECT_EQ(plan[0].target, 40);
  EXPECT_FALSE(plan[1].changed);
  EXPECT_EQ(plan[1].target, 50);
  EXPECT_FALSE(plan[2].changed);
  EXPECT_EQ(plan[2].target, 80);
  EXPECT_FALSE(plan[3].changed);
  EXPECT_FALSE(plan[3].stored.has_value());
}

TEST(RewindPlan, AnOffsetBelowTheLowWatermarkIsClamped) {
  const auto plan = plan_rewind({{0, 100}}, {{0, 30, 120, 5}});
  EXPECT_EQ(plan[0].target, 30);
}

TEST(TokenBucket, PacesToTheRateAfterTheBurst) {
  using Clock = TokenBucket::Clock;
  Clock::time_point now{};
  Clock::duration slept{};
  TokenBucket bucket(
      100.0, 10.0, [&] { return now; },
      [&](Clock::duration d) {
        now += d;
        slept += d;
      });
  for (int i = 0; i < 10; ++i) bucket.take();  // the burst: no wait
  EXPECT_EQ(slept, Clock::duration::zero());
  for (int i = 0; i < 100; ++i) bucket.take();  // then 100 more at 100/s: about one second
  EXPECT_NEAR(std::chrono::duration<double>(slept).count(), 1.0, 0.02);
}

TEST(ReplayTime, ParsesRfc3339AndRejectsGarbage) {
  const auto t = parse_timestamp("2026-10-01T12:00:00Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count(),
            1'790'856'000);
  EXPECT_TRUE(parse_timestamp("2026-10-01T14:00:00.5+02:00").has_value());
  EXPECT_FALSE(parse_timestamp("yesterday").has_value());
}

}  // namespace
}  // namespace painpoint::service

// When the aggregator stage writes a checkpoint (service/src/checkpoint_schedule.h).
#include "checkpoint_schedule.h"

#include <gtest/gtest.h>

namespace painpoint::service {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kEvery = 1000;
constexpr std::chrono::milliseconds kInterval = 60s;

CheckpointProgress progress(std::uint64_t events, std::chrono::steady_clock::duration since) {
  CheckpointProgress p;
  p.events = events;
  p.since_last = since;
  return p;
}

TEST(CheckpointSchedule, DueByEventsOrByTime) {
  EXPECT_FALSE(checkpoint_due(progress(999, 59s), kEvery, kInterval));
  EXPECT_TRUE(checkpoint_due(progress(1000, 1s), kEvery, kInterval));
  EXPECT_TRUE(checkpoint_due(progress(1, 60s), kEvery, kInterval));
}

TEST(CheckpointSchedule, NothingToWriteIsNeverDue) {
  CheckpointProgress p = progress(0, 600s);
  p.stopping = true;
  EXPECT_FALSE(checkpoint_due(p, kEvery, kInterval));
}

TEST(CheckpointSchedule, StoppingWritesWhatIsPending) {
  CheckpointProgress p = progress(1, 0s);
  p.stopping = true;
  EXPECT_TRUE(checkpoint_due(p, kEvery, kInterval));
}

// While a round runs, the products it has not saved yet are already due; the counters of the
// others must not start a second round on top of it.
TEST(CheckpointSchedule, NotDueWhileARoundRuns) {
  CheckpointProgress p = progress(250'000, 61s);
  p.round_in_progress = true;
  EXPECT_FALSE(checkpoint_due(p, kEvery, kInterval));
  p.round_in_progress = false;
  EXPECT_TRUE(checkpoint_due(p, kEvery, kInterval));
}

void add(CheckpointRounds& rounds, std::string_view product, int events) {
  for (int i = 0; i < events; ++i) rounds.added(product);
}

TEST(CheckpointRounds, ARoundSavesEveryProductWithEventsASharePerBatch) {
  CheckpointRounds rounds(3);
  for (const char* product : {"e", "a", "d", "b", "c", "f", "g"}) add(rounds, product, 2);
  EXPECT_EQ(rounds.unsaved_events(), 14U);
  EXPECT_TRUE(rounds.next_share(false).products.empty()) << "nothing is due";

  const CheckpointRounds::Share first = rounds.next_share(true);
  EXPECT_EQ(first.products, (std::vector<std::string>{"a", "b", "c"}));  // ceil(7 / 3) each
  EXPECT_FALSE(first.completes_round);
  EXPECT_TRUE(rounds.round_in_progress());
  EXPECT_EQ(rounds.unsaved_events(), 8U);

  add(rounds, "a", 5);  // after its share: waits for the next round
  add(rounds, "g", 1);  // still waiting in this one: saved with its share, these events too
  const CheckpointRounds::Share second = rounds.next_share(false);
  EXPECT_EQ(second.products, (std::vector<std::string>{"d", "e", "f"}));
  const CheckpointRounds::Share third = rounds.next_share(true);  // due again: the round goes on
  EXPECT_EQ(third.products, (std::vector<std::string>{"g"}));
  EXPECT_TRUE(third.completes_round);
  EXPECT_FALSE(rounds.round_in_progress());
  EXPECT_EQ(rounds.unsaved_events(), 5U) << "a's five events since its share";

  const CheckpointRounds::Share next = rounds.next_share(true);
  EXPECT_EQ(next.products, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(next.completes_round);
  EXPECT_EQ(rounds.unsaved_events(), 0U);
}

TEST(CheckpointRounds, OneBatchPerRoundSavesEverythingAtOnce) {
  CheckpointRounds rounds(1);
  add(rounds, "b", 1);
  add(rounds, "a", 3);
  const CheckpointRounds::Share share = rounds.next_share(true);
  EXPECT_EQ(share.products, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(share.completes_round);
}

TEST(CheckpointRounds, SavingEverythingEndsTheRound) {
  CheckpointRounds rounds(4);
  for (const char* product : {"a", "b", "c", "d", "e"}) add(rounds, product, 1);
  EXPECT_EQ(rounds.next_share(true).products.size(), 2U);
  rounds.saved_all();
  EXPECT_FALSE(rounds.round_in_progress());
  EXPECT_EQ(rounds.unsaved_events(), 0U);
  EXPECT_TRUE(rounds.next_share(false).products.empty());
}

}  // namespace
}  // namespace painpoint::service

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

// The batch after a checkpoint is aggregated while that checkpoint is still being committed, so
// the counters still say "due"; the checkpoint in flight already covers what they count.
TEST(CheckpointSchedule, NotDueRightBehindACheckpointInFlight) {
  CheckpointProgress p = progress(250'000, 61s);
  p.checkpoint_in_flight = true;
  EXPECT_FALSE(checkpoint_due(p, kEvery, kInterval));
  p.checkpoint_in_flight = false;
  EXPECT_TRUE(checkpoint_due(p, kEvery, kInterval));
}

}  // namespace
}  // namespace painpoint::service

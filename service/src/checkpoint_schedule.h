#pragma once

// When the aggregator stage writes out the aggregator state (a checkpoint): every
// `aggregator.checkpoint_events` events or `aggregator.checkpoint_interval_ms`, and when stopping.

#include <chrono>
#include <cstdint>

namespace painpoint::service {

struct CheckpointProgress {
  std::uint64_t events = 0;  // committed since the last checkpoint, plus this batch's
  std::chrono::steady_clock::duration since_last{};
  // The batch still on its way to the store is itself a checkpoint. Its state holds everything
  // added before this batch, and its commit resets the counters only when it finishes; checking
  // the counters alone would write a second checkpoint right behind it and stall the stage twice.
  bool checkpoint_in_flight = false;
  bool stopping = false;
};

inline bool checkpoint_due(const CheckpointProgress& progress, std::uint64_t every_events,
                           std::chrono::milliseconds every) {
  if (progress.events == 0 || progress.checkpoint_in_flight) return false;
  return progress.stopping || progress.events >= every_events || progress.since_last >= every;
}

}  // namespace painpoint::service

#include "painpoint/ingest/stage_backlog.h"

#include <algorithm>

namespace painpoint::ingest {
namespace {

// A record's framing in a Kafka record batch (length, attributes, deltas, header count) plus
// its share of the batch header: the broker counts these bytes too.
constexpr std::size_t kRecordOverheadBytes = 32;

void raise_to(std::atomic<std::int64_t>& value, std::int64_t at_least) {
  std::int64_t current = value.load(std::memory_order_relaxed);
  while (current < at_least &&
         !value.compare_exchange_weak(current, at_least, std::memory_order_relaxed)) {
  }
}

}  // namespace

StageBacklog::StageBacklog(std::int32_t partitions, Limits limits)
    : count_(std::max<std::int32_t>(partitions, 0)),
      partitions_(std::make_unique<Partition[]>(static_cast<std::size_t>(count_))),
      limits_(limits) {}

void StageBacklog::produced(std::int32_t partition, std::int64_t offset, std::size_t bytes) {
  if (partition < 0 || partition >= count_ || offset < 0) return;
  Partition& p = partitions_[static_cast<std::size_t>(partition)];
  std::int32_t used = used_.load(std::memory_order_relaxed);
  while (used <= partition &&
         !used_.compare_exchange_weak(used, partition + 1, std::memory_order_relaxed)) {
  }
  p.messages.fetch_add(1, std::memory_order_relaxed);
  p.bytes.fetch_add(bytes + kRecordOverheadBytes, std::memory_order_relaxed);
  raise_to(p.acknowledged_end, offset + 1);
}

void StageBacklog::polled(std::int32_t partition, std::int64_t next_offset) {
  if (partition < 0 || partition >= count_) return;
  partitions_[static_cast<std::size_t>(partition)].polled_end.store(next_offset,
                                                                    std::memory_order_relaxed);
}

// Bytes are the messages behind times the mean size acknowledged on the partition: exact sizes
// would need a record per message, and the mean of thousands of events is close enough for a
// limit with a 2.5x margin.
StageBacklog::Backlog StageBacklog::backlog_of(const Partition& p) const {
  const std::int64_t end = p.acknowledged_end.load(std::memory_order_relaxed);
  if (end < 0) return {};
  // Before the stage's first poll of the partition its position is unknown: counting from 0
  // errs on the side of holding, and the first poll corrects it.
  const std::int64_t polled = std::max<std::int64_t>(p.polled_end.load(std::memory_order_relaxed), 0);
  const std::int64_t behind = std::max<std::int64_t>(end - polled, 0);
  const std::uint64_t messages = p.messages.load(std::memory_order_relaxed);
  const std::uint64_t bytes = p.bytes.load(std::memory_order_relaxed);
  const std::size_t mean = messages == 0 ? 0 : static_cast<std::size_t>(bytes / messages);
  return {behind, static_cast<std::size_t>(behind) * mean};
}

bool StageBacklog::should_hold() const {
  const std::int32_t used = used_.load(std::memory_order_relaxed);
  for (std::int32_t i = 0; i < used; ++i) {
    const Backlog b = backlog_of(partitions_[static_cast<std::size_t>(i)]);
    if (b.bytes > limits_.hold_bytes || b.messages > limits_.hold_messages) return true;
  }
  return false;
}

bool StageBacklog::may_resume() const {
  const std::int32_t used = used_.load(std::memory_order_relaxed);
  for (std::int32_t i = 0; i < used; ++i) {
    const Backlog b = backlog_of(partitions_[static_cast<std::size_t>(i)]);
    if (b.bytes > limits_.resume_bytes || b.messages > limits_.resume_messages) return false;
  }
  return true;
}

StageBacklog::Largest StageBacklog::largest() const {
  Largest largest;
  const std::int32_t used = used_.load(std::memory_order_relaxed);
  for (std::int32_t i = 0; i < used; ++i) {
    const Backlog b = backlog_of(partitions_[static_cast<std::size_t>(i)]);
    largest.messages = std::max(largest.messages, b.messages);
    largest.bytes = std::max(largest.bytes, b.bytes);
  }
  return largest;
}

bool is_mock_cluster(std::string_view cluster_id) { return cluster_id.starts_with("mockCluster"); }

}  // namespace painpoint::ingest

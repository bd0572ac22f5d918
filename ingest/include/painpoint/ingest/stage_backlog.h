#pragma once

// Flow control between serve's ingest and its aggregator stage, for brokers that keep little per
// partition: librdkafka's mock cluster (the embedded broker and `painpoint broker`) drops the
// oldest messages of a partition beyond 5 MiB or 100,000 messages, whether read or not. Ingest
// reads its input far faster than the stage clusters, so without this a backlog on
// painpoint.feedback-by-product would be lost to that limit.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace painpoint::ingest {

// How far the stage is behind ingest on each partition of the topic between them. Ingest reports
// the messages the broker acknowledged, the stage the offsets it polled; both from any thread.
class StageBacklog {
 public:
  struct Limits {
    // Ingest holds its input while some partition has more than this not yet polled by the stage,
    // and reads again once every partition is at or below the resume marks.
    std::size_t hold_bytes = std::size_t{2} << 20;
    std::size_t resume_bytes = std::size_t{1} << 20;
    std::int64_t hold_messages = 40'000;
    std::int64_t resume_messages = 20'000;
  };

  // `partitions`: how many partitions of the topic between ingest and the stage are followed
  // (from 0); reports about higher ones are ignored.
  StageBacklog(std::int32_t partitions, Limits limits);
  explicit StageBacklog(std::int32_t partitions) : StageBacklog(partitions, Limits{}) {}
  StageBacklog(const StageBacklog&) = delete;
  StageBacklog& operator=(const StageBacklog&) = delete;

  // Ingest: a message of `bytes` (key and payload) was acknowledged at `offset`.
  void produced(std::int32_t partition, std::int64_t offset, std::size_t bytes);
  // The stage: it polled `partition` up to `next_offset` (exclusive). Seeking back is fine: the
  // backlog is measured from where the stage reads now.
  void polled(std::int32_t partition, std::int64_t next_offset);

  // Some partition is above the hold marks.
  bool should_hold() const;
  // Every partition is at or below the resume marks.
  bool may_resume() const;
  // The largest backlog over the partitions, in messages and (estimated) bytes.
  struct Largest {
    std::int64_t messages = 0;
    std::size_t bytes = 0;
  };
  Largest largest() const;
  const Limits& limits() const { return limits_; }

 private:
  struct Partition {
    std::atomic<std::int64_t> acknowledged_end{-1};  // last acknowledged offset + 1
    std::atomic<std::int64_t> polled_end{-1};        // next offset the stage polls
    std::atomic<std::uint64_t> messages{0};          // acknowledged this run, for the mean size
    std::atomic<std::uint64_t> bytes{0};
  };
  struct Backlog {
    std::int64_t messages = 0;
    std::size_t bytes = 0;
  };
  Backlog backlog_of(const Partition& p) const;

  std::int32_t count_;
  std::unique_ptr<Partition[]> partitions_;
  std::atomic<std::int32_t> used_{0};  // highest partition acknowledged + 1: the checks stop there
  Limits limits_;
};

// librdkafka's mock cluster (what the embedded broker and `painpoint broker` run) names itself
// "mockCluster..." in its metadata.
bool is_mock_cluster(std::string_view cluster_id);

}  // namespace painpoint::ingest

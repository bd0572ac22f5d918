#pragma once

// Private: the changelog's two librdkafka clients for one partition, as RAII types over the
// handles of painpoint/ingest/kafka_handles.h (target painpoint_kafka_handles: one set of
// deleters, one conf builder that keeps secrets out of error messages).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"
#include "painpoint/ingest/kafka_handles.h"
#include "painpoint/changelog/changelog.h"

namespace painpoint::changelog::detail {

Status from_kafka(const ingest::Status& status);

// A message read back from the changelog, decoded (codec.h); kCorrupt names its offset.
Result<Decoded> decode_message(const rd_kafka_message_t& msg);

// Appends to one partition through a ChangelogProducer (its own or a shared one) and waits for
// the acknowledgements of its own messages only. One thread at a time per appender; appenders of
// different partitions on the same producer work side by side.
class PartitionAppender {
 public:
  // On a producer of its own.
  [[nodiscard]] static Result<PartitionAppender> create(const ChangelogConfig& config,
                                                        std::int32_t partition);
  // On `producer`, shared with other partitions' appenders.
  [[nodiscard]] static PartitionAppender attach(std::shared_ptr<ChangelogProducer> producer,
                                                std::int32_t partition);
  PartitionAppender(PartitionAppender&&) noexcept;
  PartitionAppender& operator=(PartitionAppender&&) noexcept;
  ~PartitionAppender();

  struct Headers {
    std::int64_t epoch = 0;
    std::int64_t batch = 0;
  };
  // Enqueues one message (no value: a tombstone). Blocks while the local queue is full.
  Status enqueue(std::string_view key, std::optional<std::string_view> value,
                 std::optional<Headers> headers, std::chrono::milliseconds timeout);
  // Waits until every message enqueued since the last wait is acknowledged; their offsets in
  // enqueue order. Any failed message fails the whole wait. Acknowledgements of messages from
  // before an earlier failed or timed-out wait are not counted again.
  Result<std::vector<std::int64_t>> wait(std::chrono::milliseconds timeout);

  const std::shared_ptr<ChangelogProducer>& producer() const;

  struct Impl;

 private:
  explicit PartitionAppender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A group-less reader of one partition (librdkafka's simple consumer: no group membership, no
// commits, nothing that a rebalance could interrupt). One reader per partition of a consumer at
// a time.
class PartitionReader {
 public:
  // On `consumer`, shared with other partitions' readers; without one, on a consumer of its own.
  [[nodiscard]] static Result<PartitionReader> create(
      const ChangelogConfig& config, std::int32_t partition, std::int64_t start_offset,
      std::shared_ptr<ChangelogConsumer> consumer = nullptr);
  PartitionReader(PartitionReader&&) noexcept;
  PartitionReader& operator=(PartitionReader&&) noexcept;
  ~PartitionReader();

  // The partition's high watermark, asked from the broker.
  Result<std::int64_t> high_watermark(std::chrono::milliseconds timeout);
  // Up to `max` messages, waiting at most `timeout` for the first. Reaching the end of the
  // partition sets `eof_offset` (the offset after the last message).
  struct Chunk {
    std::vector<ingest::detail::MessagePtr> messages;
    std::optional<std::int64_t> eof_offset;
  };
  Result<Chunk> read(std::size_t max, std::chrono::milliseconds timeout);

  struct Impl;

 private:
  explicit PartitionReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::changelog::detail

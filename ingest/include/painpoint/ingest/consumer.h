#pragma once

// The Kafka group consumer (manual commits, rebalance listeners, batches that own their
// messages); kafka_types.h has the common rules.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "painpoint/ingest/kafka_types.h"
#include "painpoint/ingest/status.h"

struct rd_kafka_message_s;  // librdkafka's message, opaque here

namespace painpoint::ingest {

struct ConsumerConfig {
  std::string brokers;
  std::string group_id;
  std::string client_id = "painpoint";
  // Where to start a partition without a committed offset (or after an out-of-range offset):
  // true = earliest, false = latest.
  bool start_from_earliest = true;
  std::chrono::milliseconds session_timeout{10'000};
  std::chrono::milliseconds max_poll_interval{300'000};
  // How often librdkafka reports broker state (feeds broker_reachable()).
  std::chrono::milliseconds stats_interval{1'000};
  // fetch.wait.max.ms: how long the broker may hold a fetch that found no data. A Kafka broker
  // answers as soon as data arrives, so there this only sets how often an idle consumer asks;
  // the embedded broker always holds an empty fetch for the whole wait, so there it is added to
  // the latency of every event that arrives during the wait (librdkafka's 500 ms default made
  // up to a second of the produce-to-summary latency over serve's two consuming hops).
  std::chrono::milliseconds fetch_wait_max{100};
  // partition.assignment.strategy. "cooperative-sticky": a rebalance moves only the partitions
  // that change owner and the others keep flowing (incremental protocol); "range,roundrobin" and
  // the other eager assignors revoke every partition at each rebalance.
  std::string assignment_strategy = "cooperative-sticky";
  // group.instance.id (static membership, KIP-345), unique per member of the group, e.g. the pod
  // name. A member that closes and comes back with it within `session_timeout` gets its
  // partitions back without a rebalance. Empty: dynamic membership.
  std::string group_instance_id;
  std::map<std::string, std::string> extra;
};

// Where to start consuming an assigned partition.
struct StartOffset {
  enum class Kind { kOffset, kCommitted, kEarliest, kLatest };
  Kind kind = Kind::kCommitted;
  std::int64_t offset = -1;  // for kOffset: the next offset to read

  static StartOffset at(std::int64_t next_offset) { return {Kind::kOffset, next_offset}; }
  static StartOffset committed() { return {Kind::kCommitted, -1}; }  // the group's, or reset
  static StartOffset earliest() { return {Kind::kEarliest, -1}; }
  static StartOffset latest() { return {Kind::kLatest, -1}; }
};

// Called with the newly assigned partitions; returns one StartOffset per partition, same order.
// A result of the wrong size (or a throwing handler) means committed() for all.
using AssignHandler = std::function<std::vector<StartOffset>(std::span<const TopicPartition>)>;
// Called before partitions are taken away (rebalance or close): finish and commit their work.
using RevokeHandler = std::function<void(std::span<const TopicPartition>)>;

// The protocol of the group's assignor (ConsumerConfig::assignment_strategy). kCooperative:
// rebalances assign and revoke only the partitions that move. kEager: every partition is revoked,
// then the whole new assignment is handed out.
enum class RebalanceProtocol { kEager, kCooperative };

// Told of every change of a member's assignment, on the consumer's thread inside poll_batch()
// or close(). The consumer applies the change after the call returns.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // `partitions` join the assignment (cooperative: only the added ones, possibly none; eager: the
  // whole new assignment). One StartOffset per partition, same order; a result of another size
  // (or a throw) means committed() for all. A partition that must not be read yet (its state is
  // being restored) can be paused here and sought and resumed later.
  virtual std::vector<StartOffset> on_assigned(std::span<const TopicPartition> partitions,
                                               RebalanceProtocol protocol) = 0;
  // `partitions` leave the assignment (cooperative: only those; eager: all of them): finish and
  // commit their work. `lost`: the session timed out and another member may own them already,
  // so their offsets must not be committed.
  virtual void on_revoked(std::span<const TopicPartition> partitions, bool lost,
                          RebalanceProtocol protocol) = 0;
};

// A non-owning view of one consumed message. Valid while its MessageBatch lives.
class Message {
 public:
  explicit Message(const rd_kafka_message_s* msg) : msg_(msg) {}
  std::string_view topic() const;
  std::int32_t partition() const;
  std::int64_t offset() const;
  std::optional<std::string_view> key() const;  // nullopt: null key
  std::string_view payload() const;             // empty for a null value
  std::optional<std::int64_t> timestamp_ms() const;
  // All headers in order; a null header value is an empty view.
  std::vector<std::pair<std::string_view, std::string_view>> headers() const;
  // Last value of header `name`, if present.
  std::optional<std::string_view> header(std::string_view name) const;

 private:
  friend class MessageBatch;  // owns and destroys msg_
  const rd_kafka_message_s* msg_;
};

// A consumer error that does not stop consumption (transport hiccup, unknown topic, ...).
struct ConsumerError {
  Status status;
  std::optional<TopicPartition> partition;
};

// The start offset of a partition was no longer available on the broker (retention passed it,
// or the broker lost its data); consumption continued from `resumed_at` (the earliest available
// offset, or latest per config). Messages in [requested, low_watermark) are lost.
struct OffsetReset {
  TopicPartition partition;
  std::int64_t requested = -1;
  std::int64_t low_watermark = -1;
  std::int64_t high_watermark = -1;
  std::int64_t resumed_at = -1;
  std::int64_t lost() const {
    return requested >= 0 && low_watermark > requested ? low_watermark - requested : 0;
  }
};

// Owns the messages of one poll; releases them (and the librdkafka memory) on destruction.
// Must be destroyed before the Consumer that produced it.
class MessageBatch {
 public:
  MessageBatch() = default;
  MessageBatch(MessageBatch&&) noexcept;
  MessageBatch& operator=(MessageBatch&&) noexcept;
  MessageBatch(const MessageBatch&) = delete;
  MessageBatch& operator=(const MessageBatch&) = delete;
  ~MessageBatch();

  const std::vector<Message>& messages() const { return messages_; }
  std::size_t size() const { return messages_.size(); }
  bool empty() const { return messages_.empty(); }
  auto begin() const { return messages_.begin(); }
  auto end() const { return messages_.end(); }

  const std::vector<ConsumerError>& errors() const { return errors_; }
  const std::vector<OffsetReset>& offset_resets() const { return offset_resets_; }

  // Per partition: the offset after the last message of this batch (what to commit).
  std::vector<TopicPartitionOffset> next_offsets() const;
  // Per partition: the offset of the first message of this batch (where to seek to redo it).
  std::vector<TopicPartitionOffset> first_offsets() const;

 private:
  friend class Consumer;
  void release() noexcept;
  std::vector<Message> messages_;
  std::vector<ConsumerError> errors_;
  std::vector<OffsetReset> offset_resets_;
};

struct Watermarks {
  std::int64_t low = -1;   // earliest offset still on the broker
  std::int64_t high = -1;  // offset the next produced message will get
};

// Group consumer with manual commits (enable.auto.commit=false).
//
// Thread safety: poll_batch(), seek(), commit() and close() must be called from ONE thread (the
// consumer loop); the assign/revoke handlers run on that thread, inside poll_batch() or close().
// broker_reachable(), cluster_id(), query_watermarks() and offsets_for_times() may be called from
// any thread.
class Consumer {
 public:
  [[nodiscard]] static Result<Consumer> create(const ConsumerConfig& config);
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();  // close()s if not closed yet

  // Joins the group. Handlers may be empty: then all partitions start at committed().
  Status subscribe(std::span<const std::string> topics, AssignHandler on_assign = nullptr,
                   RevokeHandler on_revoke = nullptr);
  // Joins the group; `listener` hears of every assignment change and must outlive close().
  Status subscribe(std::span<const std::string> topics, RebalanceListener& listener);

  // Returns up to `max_messages`, waiting at most `timeout` for the first one and not at all for
  // the rest. Stops early once the payloads add up to `max_bytes` (the message that crosses it is
  // included, so a batch is never empty for a large message). Rebalance handlers run inside this
  // call. Partition EOF is not reported.
  MessageBatch poll_batch(std::size_t max_messages, std::chrono::milliseconds timeout,
                          std::size_t max_bytes = SIZE_MAX);

  // `offsets` are next-to-consume offsets (see TopicPartitionOffset). async=true returns at once.
  Status commit(std::span<const TopicPartitionOffset> offsets, bool async);
  // Moves the fetch position of assigned partitions (e.g. to redo a batch whose output failed).
  Status seek(std::span<const TopicPartitionOffset> offsets, std::chrono::milliseconds timeout);
  Status seek(const TopicPartition& partition, std::int64_t next_offset,
              std::chrono::milliseconds timeout);
  // Stops fetching assigned partitions (messages already fetched for them are dropped, so none
  // arrives after this returns), or starts again where they stopped.
  Status pause(std::span<const TopicPartition> partitions);
  Status resume(std::span<const TopicPartition> partitions);

  // The watermarks this client last learned from its fetches (the high one is refreshed with
  // every fetch response). Never blocks; nullopt before the partition was fetched at all. The
  // cheap way to compute lag on a consumer loop's own thread.
  std::optional<Watermarks> cached_watermarks(const std::string& topic,
                                              std::int32_t partition) const;
  Result<Watermarks> query_watermarks(const std::string& topic, std::int32_t partition,
                                      std::chrono::milliseconds timeout) const;
  // Input offsets hold timestamps (ms); output holds the earliest offset whose timestamp is >=
  // that (or the high watermark / -1 when none).
  Result<std::vector<TopicPartitionOffset>> offsets_for_times(
      std::span<const TopicPartitionOffset> timestamps, std::chrono::milliseconds timeout) const;
  // The group's committed offsets (next offset to consume; -1001 when none), e.g. for lag.
  Result<std::vector<TopicPartitionOffset>> committed(std::span<const TopicPartition> partitions,
                                                      std::chrono::milliseconds timeout) const;
  // The cluster's id (KIP-78); the store keeps it beside offsets to detect a different cluster.
  Result<std::string> cluster_id(std::chrono::milliseconds timeout) const;
  // Partitions currently assigned to this member.
  Result<std::vector<TopicPartition>> assignment() const;
  // The protocol of the group's current generation (kEager until the first join).
  RebalanceProtocol rebalance_protocol() const;
  // False after librdkafka reported all brokers down; true once a broker is up again.
  bool broker_reachable() const;
  // As Producer::connection_problem. Learned from the polls (and, before subscribe(), from
  // failed lookups such as cluster_id()).
  std::string connection_problem() const;

  // Leaves the group (runs the revoke handler on this thread). Blocks at most `timeout`: when the
  // group leave has not finished by then (the coordinator is unreachable), returns kTimedOut and
  // the handle is later destroyed without waiting for the group; the coordinator drops the member
  // after session_timeout. Nothing is lost either way: offsets are committed before close, and
  // what the group had not seen committed is re-read. Idempotent.
  Status close(std::chrono::milliseconds timeout = 10'000ms);

  struct Impl;

 private:
  explicit Consumer(std::unique_ptr<Impl> impl);
  // Destroys `impl`, in the background if close() gave up on the group.
  static void release(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A Consumer whose close() timed out is torn down on a background thread when it is destroyed:
// librdkafka's destroy still waits for the unreachable coordinator (up to the session timeout),
// and a destructor must not block that long. Waits until every such teardown has finished; false
// if some are still running after `timeout`. A process that is about to exit may then leave them
// to the OS (std::_Exit after flushing its logs): returning from main would run static
// destructors under their threads.
bool await_background_teardown(std::chrono::milliseconds timeout);

}  // namespace painpoint::ingest

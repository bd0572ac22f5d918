#pragma once

// The Kafka producer (idempotent, murmur2 partitioner); kafka_types.h has the common rules.

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

#include "painpoint/ingest/kafka_types.h"
#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

struct ProducerConfig {
  std::string brokers;  // "host:port,host:port"
  std::string client_id = "painpoint";
  // Batching for throughput: wait up to `linger` to fill batches of up to `batch_bytes`.
  std::chrono::milliseconds linger{20};
  std::size_t batch_bytes = 1024 * 1024;
  std::string compression = "lz4";  // none, gzip, snappy, lz4, zstd
  // A message not acknowledged within this time is reported as failed (librdkafka retries
  // internally until then; idempotence keeps retries free of duplicates and reordering).
  std::chrono::milliseconds delivery_timeout{120'000};
  std::size_t queue_max_messages = 100'000;
  // produce() blocks at most this long while the local queue is full (it serves delivery
  // reports meanwhile), then returns kQueueFull.
  std::chrono::milliseconds backpressure_timeout{30'000};
  std::map<std::string, std::string> extra;
};

struct DeliveryReport {
  std::string_view topic;  // valid only during the callback
  std::int32_t partition = -1;
  std::int64_t offset = -1;  // -1 if unknown or failed
  std::uint64_t tag = 0;     // the value passed to produce()
  Status status;             // ok() when the broker acknowledged the message
};

struct ProducerCounters {
  std::uint64_t produced = 0;   // accepted into the local queue
  std::uint64_t delivered = 0;  // acknowledged by the broker
  std::uint64_t failed = 0;     // permanently failed (delivery timeout, fatal error, ...)
};

// Idempotent producer (enable.idempotence=true, acks=all, murmur2 partitioner so that keys map
// to the same partitions as Java clients and Kafka Streams).
//
// Thread safety: all methods are thread-safe. Delivery reports are served by produce(), poll()
// and flush(), so the callback runs on whichever thread is inside one of them; if several threads
// drive the producer, the callback must be thread-safe itself. It must not call produce()/flush().
class Producer {
 public:
  using DeliveryCallback = std::function<void(const DeliveryReport&)>;

  [[nodiscard]] static Result<Producer> create(const ProducerConfig& config,
                                               DeliveryCallback on_delivery = nullptr);
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  ~Producer();  // flushes for up to 5 s, then drops what is left (counted as failed)

  // Enqueues one message, partitioned by key (no key: sticky partitioning). Non-blocking unless
  // the local queue is full (see ProducerConfig::backpressure_timeout). The payload and key are
  // copied. `tag` is echoed in the DeliveryReport (e.g. an input line number).
  Status produce(std::string_view topic, std::optional<std::string_view> key,
                 std::string_view payload, std::span<const Header> headers = {},
                 std::uint64_t tag = 0);

  // Serves delivery reports; blocks up to `timeout` if none is ready. Returns how many were served.
  int poll(std::chrono::milliseconds timeout = 0ms);
  // Makes a poll() blocked on another thread return now, or else the next poll() return at once:
  // for a thread that waits both for delivery reports and for work handed over by other threads.
  void wake();

  // Fetches the partitions and leaders of `topics` now, blocking up to `timeout` per topic. Without
  // it the first message to a topic waited ~1 s (librdkafka looks an unknown topic up on its
  // periodic scan), which a producer's first batch pays on every start. A failure only means the
  // first message waits for the lookup as before.
  Status prefetch_metadata(std::span<const std::string> topics, std::chrono::milliseconds timeout);

  // Waits until every enqueued message is acknowledged or failed (delivery callbacks run).
  // kTimedOut if messages are still in flight after `timeout`.
  Status flush(std::chrono::milliseconds timeout);

  // Drops every message not yet acknowledged; each gets a failed delivery report (kState), served
  // before this returns. For a bounded shutdown while the broker is unreachable: the caller keeps
  // whatever it needs to send them again (an outbox, uncommitted input offsets).
  void purge();

  // Messages enqueued but not yet acknowledged or failed.
  std::size_t in_flight() const;
  ProducerCounters counters() const;
  // False after librdkafka reported that no broker is reachable; true again once one is.
  bool broker_reachable() const;
  // Why connecting failed (authentication, TLS, wrong listener, ...) as librdkafka reported it
  // while no broker was reachable; empty once a broker is up.
  std::string connection_problem() const;

  struct Impl;

 private:
  explicit Producer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::ingest

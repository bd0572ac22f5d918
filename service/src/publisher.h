#pragma once

// The publisher of `painpoint serve`: drains the store's outbox to painpoint.summaries (key = pain
// point id, value = PainPointSummary protobuf bytes) with the idempotent producer.
//
// Guarantees:
// - At least once: an outbox entry is deleted only after the broker acknowledged a record of the
//   same pain point with a version >= its own. A crash in between resends on restart, and since a
//   record carries its version, a consumer that keeps the highest version per key is unaffected.
// - Versions only grow per key in offset order: at most one record per pain point is in flight at
//   a time, and each is the highest version read from the outbox for that id (the aggregator's
//   versions grow per id, so the outbox never holds a lower version after a higher one). Entries
//   this process did not commit (an earlier run's, or with several instances a partition's
//   previous owner's) are first checked against the stored summary: when that is newer, they are
//   done without a record, since its record is on the topic already or its entry comes later. A
//   resend after a crash may repeat the last version (never go below it). With several
//   instances, only the partitions `publishes` names are published, checked again right before
//   each record (on_stall).
// - Coalescing: at most one record per pain point per `interval`; entries that arrive meanwhile are
//   folded into the next record (latest state wins) and deleted with it.
// - Bounded memory: the outbox is read in chunks of `read_chunk`, and reading pauses while
//   `max_tracked_entries` entries are held (read but not yet deleted).
//
// Thread safety: start()/stop() from one controlling thread; the status accessors from any thread.
// The publisher owns its thread and its Kafka producer; it borrows the Store and the
// MetricsRegistry, which must outlive it. Store::delete_outbox() runs on the publisher's thread
// concurrently with the aggregator stage's commits (the Store allows exactly that).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "painpoint/ingest/status.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class MetricsRegistry;

struct PublisherConfig {
  std::string brokers;
  // The operator's librdkafka properties for the producer (config file `kafka.*`).
  std::map<std::string, std::string> producer_properties;
  std::string topic = "painpoint.summaries";
  // At most one record per pain point per interval.
  std::chrono::milliseconds interval{250};
  // How often an idle publisher looks for new outbox entries when no wake() comes.
  std::chrono::milliseconds poll_interval{50};
  std::size_t read_chunk = 1'000;
  std::size_t max_tracked_entries = 100'000;
  // A record the broker has not acknowledged within this time counts as failed and is retried.
  std::chrono::milliseconds delivery_timeout{30'000};
  // Retry backoff after failed deliveries: doubles from min to max, reset by a success.
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{10'000};
  // stop() keeps publishing (still coalescing) for at most this long so a clean stop leaves the
  // outbox empty, then waits at most stop_flush_timeout for the last acknowledgements; what is
  // left is published on the next start. While the broker is unreachable stop() does not wait.
  std::chrono::milliseconds stop_timeout{3'000};
  std::chrono::milliseconds stop_flush_timeout{1'000};
  // TEST ONLY (PAINPOINT_TEST_PUBLISH_DELAY_MS): nothing is published until this long after
  // start, so a test can kill the process between commit and publish.
  std::chrono::milliseconds test_initial_delay{0};
  // Called on the publisher's thread after each successful deletion of published entries (the
  // changelog carries them with the next batch of their partition). Must not block.
  std::function<void(std::span<const store::OutboxPosition>)> on_deleted;
  // Whether to publish the outbox of input partition p (thread-safe; empty: every partition).
  // With several instances a partition given up stays on disk, and its entries are the new
  // owner's to publish (restored from the changelog), not this instance's.
  std::function<bool(std::int32_t partition)> publishes;
  // Called when this publisher's loop did not run for `stall_limit` (the process was stopped or
  // starved), with the time it ran again, before anything more is produced: the owner of
  // `publishes` may hold partitions back until it knows they are still this instance's.
  std::function<void(std::chrono::steady_clock::time_point resumed)> on_stall;
  std::chrono::milliseconds stall_limit{2'000};
};

class Publisher {
 public:
  Publisher(PublisherConfig config, store::Store& store, MetricsRegistry& metrics);
  ~Publisher();  // stop()
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Creates the producer and starts the thread. Does not wait for the broker: an unreachable
  // broker shows in publisher_ok(), and the outbox keeps everything until it is back.
  ingest::Status start();
  // Publishes what is in the outbox (respecting the interval) for up to stop_timeout, waits for
  // the delivery reports, deletes the acknowledged entries and joins the thread. Blocks at most
  // about stop_timeout + stop_flush_timeout; returns at once while the broker is unreachable
  // (the outbox keeps everything for the next start). Idempotent.
  void stop();

  // Tells the publisher that a commit just added outbox entries: it reads them now rather than
  // at its next poll_interval. Thread-safe; returns at once.
  void wake();

  // False while deliveries fail, the broker is unreachable or the store refused a read/delete.
  [[nodiscard]] bool publisher_ok() const;
  [[nodiscard]] std::string status_detail() const;
  // Outbox entries committed and not yet deleted. Exact once the publisher has read to the end of
  // the outbox once; before that it may count entries deleted before a restart.
  [[nodiscard]] std::uint64_t pending() const;
  // True when the outbox was seen empty after everything committed so far.
  [[nodiscard]] bool outbox_empty() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::service

#include "publisher.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics.h"
#include "painpoint/ingest/producer.h"

namespace painpoint::service {

namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a record may wait for its acknowledgement before readiness reports a stall; well
// below the delivery timeout so /readyz notices an outage before the first failure comes back.
constexpr milliseconds kStallThreshold{10'000};
// The producer learns broker state from its statistics; until the first report, unknown is fine.
constexpr milliseconds kReachabilityGrace{3'000};
// Shortest wait for the next pain point to come due. Thousands of tracked pain points come due
// at scattered moments; waking for each one (as soon as 1 ms later) made a round, with its scans
// over every tracked pain point, run about once per millisecond and cost a fifth of serve's CPU at
// 10,000 events/s. Sends are late by at most this much, against a coalescing interval of 250 ms.
constexpr milliseconds kMinDueWait{10};
}  // namespace

struct Publisher::Impl {
  // Per pain point id: everything read from the outbox and not yet deleted.
  struct Tracked {
    std::string latest;  // the highest version read, serialized as committed
    std::int64_t latest_version = -1;
    std::int32_t partition = store::kNoPartition;  // its product's input partition
    std::vector<store::OutboxPosition> unsent;     // entries folded in since the last produce
    std::vector<store::OutboxPosition> in_flight;  // entries the record in flight covers
    std::optional<std::uint64_t> in_flight_tag;
    Clock::time_point oldest_unsent{};
    Clock::time_point oldest_in_flight{};
    Clock::time_point in_flight_since{};
    std::optional<Clock::time_point> last_sent;  // for coalescing
    std::int64_t in_flight_version = -1;
    std::int64_t sent_version = -1;  // highest version acknowledged by the broker
    // An unsent entry may be older than a record an earlier run (or a partition's previous
    // owner) published: the stored summary is read before the next record (send_due).
    bool verify = false;
  };

  struct Report {
    std::uint64_t tag = 0;
    bool ok = false;
    std::string error;
  };

  PublisherConfig config;
  store::Store& store;
  std::optional<ingest::Producer> producer;
  std::thread thread;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> running{false};
  std::atomic<bool> empty{false};
  std::atomic<std::uint64_t> pending_entries{0};
  std::atomic<bool> healthy{true};
  Clock::time_point started_at{};

  mutable std::mutex detail_mutex;
  std::string detail = "not running";
  // wake() reaches the producer only while it exists (start() to finish()).
  std::mutex wake_mutex;
  bool wakeable = false;  // guarded by wake_mutex
  // Set by wake(): a produce() polls the queue too and may consume the yield meant for the
  // loop's wait, so the loop checks this before it waits.
  std::atomic<bool> wake_pending{false};

  // Publisher-thread state (the delivery callback runs on this thread too, inside poll/flush).
  std::unordered_map<std::string, Tracked> tracked;
  std::unordered_map<std::uint64_t, std::string> tag_to_id;
  std::vector<Report> reports;
  std::vector<store::OutboxPosition> to_delete;
  // Per input partition, the highest outbox sequence read (sequences count per partition).
  std::map<std::int32_t, std::uint64_t> cursors;
  // Single instance (no `publishes`): per partition, its next outbox sequence when this publisher
  // first read it. Entries from there on were committed by this process after anything an earlier
  // run published, and come in version order per id, so they need no check against the store.
  std::map<std::int32_t, std::uint64_t> own_from;
  // Where the next read starts, so that a partition with many entries does not hold the others
  // back when a read fills its chunk.
  std::int32_t next_partition = 0;
  std::size_t tracked_entries = 0;
  // When this thread last looked at the clock in its loop or between two produces (stalls).
  Clock::time_point last_turn{};
  std::uint64_t next_tag = 1;
  bool read_to_end = false;
  milliseconds backoff{0};
  Clock::time_point retry_at{};
  std::string last_error;
  bool store_error = false;

  Counter& published_total;
  Counter& failures_total;
  Counter& deleted_total;
  Gauge& pending_gauge;
  Histogram& age_seconds;

  Impl(PublisherConfig cfg, store::Store& s, MetricsRegistry& metrics)
      : config(std::move(cfg)),
        store(s),
        published_total(metrics.counter("painpoint_summaries_published_total",
                                        "Summary records acknowledged on painpoint.summaries")),
        failures_total(metrics.counter(
            "painpoint_publish_failures_total",
            "Summary records that failed (produce refused or delivery failed); retried")),
        deleted_total(metrics.counter(
            "painpoint_outbox_deleted_total",
            "Outbox entries deleted after publishing (published or superseded by a newer one)")),
        pending_gauge(metrics.gauge("painpoint_outbox_pending",
                                    "Outbox entries committed but not yet published")),
        age_seconds(metrics.histogram(
            "painpoint_outbox_age_seconds",
            "Per published record: from when the publisher read its oldest outbox entry to the "
            "broker's acknowledgement (includes the coalescing wait)",
            exponential_buckets(0.005, 2.5, 12))) {}

  void set_detail(std::string text) {
    std::lock_guard lock(detail_mutex);
    detail = std::move(text);
  }

  // Reads the next chunk of the outbox into `tracked`, unless the memory bound is reached: each
  // partition's entries after its cursor, the partitions in turn from next_partition.
  void read_outbox() {
    if (tracked_entries >= config.max_tracked_entries) return;
    const std::size_t want =
        std::min(config.read_chunk, config.max_tracked_entries - tracked_entries);
    // Taken before the reads: every entry below them is visible to the reads that follow.
    const std::map<std::int32_t, std::uint64_t> next_sequences = store.outbox_next_sequences();
    std::vector<std::int32_t> order;
    for (auto it = next_sequences.lower_bound(next_partition); it != next_sequences.end(); ++it) {
      order.push_back(it->first);
    }
    for (auto it = next_sequences.begin();
         it != next_sequences.end() && it->first < next_partition; ++it) {
      order.push_back(it->first);
    }
    // The partitions with entries past their cursor, read with one iterator.
    std::vector<store::OutboxPosition> positions;
    for (std::int32_t partition : order) {
      if (config.publishes && !config.publishes(partition)) continue;
      own_from.try_emplace(partition, next_sequences.at(partition));
      const std::uint64_t cursor = cursors[partition];
      if (next_sequences.at(partition) > cursor + 1) positions.push_back({partition, cursor});
    }
    std::vector<store::OutboxEntry> entries;
    if (store::Status s = store.read_outbox_after(positions, want, &entries); !s.ok()) {
      store_failure("read outbox: " + s.to_string());
      read_to_end = false;
      return;
    }
    read_to_end = entries.size() < want;
    // Every partition read to its end: nothing below its next sequence is left unread (entries
    // deleted before a restart must not count as pending, or --exit-when-idle would wait
    // forever). With a full chunk, the partition of its last entry may have more: the next
    // read starts after it, and only the partitions before it were read to their end.
    const std::int32_t last = entries.empty() ? 0 : entries.back().partition;
    for (const store::OutboxPosition& position : positions) {
      if (!read_to_end && position.partition == last) break;
      std::uint64_t& cursor = cursors[position.partition];
      cursor = std::max(cursor, next_sequences.at(position.partition) - 1);
    }
    if (!read_to_end) next_partition = last + 1;
    for (const store::OutboxEntry& entry : entries) {
      std::uint64_t& cursor = cursors[entry.partition];
      cursor = std::max(cursor, entry.sequence);
    }
    track(entries);
  }

  void track(std::vector<store::OutboxEntry>& entries) {
    const auto now = Clock::now();
    for (store::OutboxEntry& entry : entries) {
      ++tracked_entries;
      Tracked& t = tracked[entry.id];
      if (t.unsent.empty()) t.oldest_unsent = now;
      t.partition = entry.partition;
      t.unsent.push_back({entry.partition, entry.sequence});
      t.verify = t.verify || config.publishes || entry.sequence < own_from.at(entry.partition);
      // Versions grow per id in commit order; the guard keeps a stray older one from going out.
      if (entry.version >= t.latest_version) {
        t.latest = std::move(entry.summary);
        t.latest_version = entry.version;
      }
    }
  }

  void store_failure(std::string what) {
    if (!store_error) spdlog::error("publisher: {} (retrying)", what);
    store_error = true;
    last_error = std::move(what);
  }

  void fail_delivery(const std::string& what) {
    failures_total.inc();
    if (last_error.empty()) {
      spdlog::warn("publisher: {}; outbox entries kept, retrying with backoff", what);
    }
    last_error = what;
    backoff = std::clamp(backoff * 2, config.backoff_min, config.backoff_max);
    retry_at = Clock::now() + backoff;
  }

  // True when this thread did not run for stall_limit before `now` (on_stall has been told).
  bool stalled(Clock::time_point now) {
    const Clock::duration gap = now - last_turn;
    const bool stall = last_turn != Clock::time_point{} && gap >= config.stall_limit;
    last_turn = now;
    if (stall) {
      spdlog::warn("publisher: did not run for {:.1f} s (the process was stopped or starved)",
                   std::chrono::duration<double>(gap).count());
      if (config.on_stall) config.on_stall(now);
    }
    return stall;
  }

  // Entries of a partition not published here (given up, or held back after a stall) are
  // forgotten, not sent: they are read again from the outbox if the partition is published here
  // again, and otherwise its new owner publishes them after its restore.
  void forget_unpublished(Tracked& t) {
    tracked_entries -= t.unsent.size();
    t.unsent.clear();
    cursors[t.partition] = 0;
  }

  bool due(const Tracked& t, Clock::time_point now) const {
    if (t.unsent.empty() || t.in_flight_tag) return false;
    return !t.last_sent || now - *t.last_sent >= config.interval;
  }

  // After a restart an older entry can be read (in an earlier chunk) before a newer one that was
  // published before the crash, and a key's versions must never go back. So an entry this
  // process did not commit is checked against the stored summary: when that is newer, its record
  // is on the topic already or its entry comes later in the outbox, and the entries read so far
  // are done without a record. (Sending the stored summary instead would put a version on the
  // topic ahead of entries not yet read.) The summary is in the partition its outbox entries came
  // from (a product stays in one), so one Get reads it. False when the store failed.
  bool superseded_in_store(const std::string& id, const Tracked& t, bool* superseded) {
    std::optional<v1::PainPointSummary> current;
    if (store::Status s = store.get_summary(t.partition, id, &current); !s.ok()) {
      store_failure("read summary " + id + ": " + s.to_string());
      return false;
    }
    *superseded = current && current->version() > t.latest_version;
    return true;
  }

  // Produces one record for every pain point that is due. Returns the earliest time another one
  // becomes due (Clock::time_point::max() when none waits).
  Clock::time_point send_due(Clock::time_point now) {
    Clock::time_point next = Clock::time_point::max();
    if (now < retry_at) return retry_at;
    for (auto& [id, t] : tracked) {
      if (t.unsent.empty() || t.in_flight_tag) continue;
      if (!due(t, now)) {
        next = std::min(next, *t.last_sent + config.interval);
        continue;
      }
      // Only for what is about to be sent: most tracked pain points are not due in a round.
      if (const auto at = Clock::now(); stalled(at)) return at;
      if (config.publishes && !config.publishes(t.partition)) {
        forget_unpublished(t);
        continue;
      }
      bool superseded = false;
      if (t.verify) {
        if (!superseded_in_store(id, t, &superseded)) continue;
        t.verify = false;
      }
      if (superseded || t.latest_version <= t.sent_version) {
        // On the topic already (or, superseded, coming later): the entries are done without
        // another record.
        to_delete.insert(to_delete.end(), t.unsent.begin(), t.unsent.end());
        t.unsent.clear();
        continue;
      }
      const std::uint64_t tag = next_tag++;
      if (auto s = producer->produce(config.topic, id, t.latest, {}, tag); !s.ok()) {
        fail_delivery("produce: " + s.to_string());
        return retry_at;
      }
      tag_to_id.emplace(tag, id);
      t.in_flight_version = t.latest_version;
      t.in_flight_tag = tag;
      t.in_flight = std::move(t.unsent);
      t.unsent.clear();
      t.oldest_in_flight = t.oldest_unsent;
      t.in_flight_since = now;
      // The record's timestamp is taken at produce, which can be well after `now` when this
      // round reads and sends many summaries: the interval counts from the produce.
      t.last_sent = Clock::now();
    }
    return next;
  }

  void handle_reports() {
    const auto now = Clock::now();
    for (const Report& report : reports) {
      auto it = tag_to_id.find(report.tag);
      if (it == tag_to_id.end()) continue;
      auto tracked_it = tracked.find(it->second);
      tag_to_id.erase(it);
      if (tracked_it == tracked.end()) continue;
      Tracked& t = tracked_it->second;
      t.in_flight_tag.reset();
      if (report.ok) {
        to_delete.insert(to_delete.end(), t.in_flight.begin(), t.in_flight.end());
        t.sent_version = std::max(t.sent_version, t.in_flight_version);
        published_total.inc();
        age_seconds.observe(std::chrono::duration<double>(now - t.oldest_in_flight).count());
        backoff = milliseconds{0};
        if (!last_error.empty() && !store_error) {
          spdlog::info("publisher: deliveries succeed again");
          last_error.clear();
        }
      } else {
        // Keep the entries; `latest` is still the highest version, so the retry sends it.
        if (t.unsent.empty()) t.oldest_unsent = t.oldest_in_flight;
        t.unsent.insert(t.unsent.end(), t.in_flight.begin(), t.in_flight.end());
        // Retry as soon as the backoff allows, not one interval later.
        t.last_sent.reset();
        fail_delivery(report.error);
      }
      t.in_flight.clear();
    }
    reports.clear();
  }

  void delete_acknowledged() {
    if (to_delete.empty()) return;
    if (store::Status s = store.delete_outbox(to_delete); !s.ok()) {
      store_failure("delete outbox entries: " + s.to_string());
      return;  // kept in to_delete: retried on the next round
    }
    if (config.on_deleted) config.on_deleted(to_delete);
    if (store_error) {
      spdlog::info("publisher: store writes succeed again");
      store_error = false;
      last_error.clear();
    }
    deleted_total.inc(to_delete.size());
    tracked_entries -= to_delete.size();
    to_delete.clear();
  }

  // Forgets pain points that have nothing pending and whose interval has passed.
  void prune(Clock::time_point now) {
    for (auto it = tracked.begin(); it != tracked.end();) {
      const Tracked& t = it->second;
      const bool idle = t.unsent.empty() && !t.in_flight_tag &&
                        (!t.last_sent || now - *t.last_sent >= config.interval);
      it = idle ? tracked.erase(it) : std::next(it);
    }
  }

  std::uint64_t compute_pending() const {
    std::uint64_t unread = 0;
    for (const auto& [partition, next] : store.outbox_next_sequences()) {
      if (config.publishes && !config.publishes(partition)) continue;
      const auto read = cursors.find(partition);
      const std::uint64_t cursor = read == cursors.end() ? 0 : read->second;
      unread += next > cursor + 1 ? next - 1 - cursor : 0;
    }
    return tracked_entries + unread;
  }

  void update_status(Clock::time_point now) {
    const std::uint64_t pending = compute_pending();
    pending_entries.store(pending);
    pending_gauge.set(static_cast<double>(pending));
    empty.store(pending == 0);

    Clock::time_point oldest_in_flight = Clock::time_point::max();
    for (const auto& [id, t] : tracked) {
      if (t.in_flight_tag) oldest_in_flight = std::min(oldest_in_flight, t.in_flight_since);
    }
    std::string text;
    if (store_error) {
      text = "store: " + last_error;
    } else if (!last_error.empty()) {
      text = "delivery failing (" + last_error + "); " + std::to_string(pending) +
             " outbox entries kept, retrying";
    } else if (!producer->broker_reachable() && now - started_at > kReachabilityGrace) {
      text = ingest::unreachable_detail(producer->connection_problem()) + "; " +
             std::to_string(pending) + " outbox entries kept";
    } else if (oldest_in_flight != Clock::time_point::max() &&
               now - oldest_in_flight > kStallThreshold) {
      text = "no acknowledgement from the broker for " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::seconds>(now - oldest_in_flight).count()) +
             " s";
    }
    healthy.store(text.empty());
    set_detail(text.empty() ? "ok" : std::move(text));
  }

  bool nothing_left() const { return tracked_entries == 0 && read_to_end && to_delete.empty(); }

  void run() {
    started_at = Clock::now();
    const Clock::time_point publish_from = started_at + config.test_initial_delay;
    std::optional<Clock::time_point> stop_deadline;
    while (true) {
      auto now = Clock::now();
      (void)stalled(now);
      if (stop_requested.load() && !stop_deadline) stop_deadline = now + config.stop_timeout;
      read_outbox();
      Clock::time_point next_due = Clock::time_point::max();
      if (now >= publish_from || stop_deadline) next_due = send_due(now);
      // Waits for delivery reports, but not past the moment the next record is due.
      milliseconds wait = config.poll_interval;
      if (!read_to_end && tracked_entries < config.max_tracked_entries) wait = milliseconds{0};
      if (next_due != Clock::time_point::max()) {
        wait =
            std::clamp(std::chrono::duration_cast<milliseconds>(next_due - now) + milliseconds{1},
                       std::min(kMinDueWait, wait), wait);
      }
      if (wake_pending.exchange(false)) wait = milliseconds{0};
      producer->poll(wait);
      handle_reports();
      delete_acknowledged();
      now = Clock::now();
      prune(now);
      update_status(now);
      if (stop_deadline && (nothing_left() || now >= *stop_deadline)) break;
      // Nothing can be delivered now; waiting would only delay the shutdown.
      if (stop_deadline && !producer->broker_reachable() && now - started_at > kReachabilityGrace) {
        break;
      }
    }
    finish();
  }

  void finish() {
    // Settle what is in flight so its entries can be deleted; anything else stays for next time.
    const auto flush_timeout =
        producer->broker_reachable() ? config.stop_flush_timeout : milliseconds{0};
    if (auto s = producer->flush(flush_timeout); !s.ok()) {
      spdlog::warn("publisher: {}; the outbox keeps those entries", s.to_string());
      producer->purge();  // failed reports: the entries stay in the outbox
    }
    handle_reports();
    delete_acknowledged();
    update_status(Clock::now());
    const std::uint64_t left = pending_entries.load();
    if (left > 0) {
      spdlog::warn(
          "publisher stopped with {} outbox entries unpublished; they go out on the next "
          "start",
          left);
    } else {
      spdlog::info("publisher stopped; outbox empty");
    }
    {
      std::lock_guard lock(wake_mutex);
      wakeable = false;
    }
    producer.reset();  // its destructor may still report purged messages: `reports` is alive
    reports.clear();
    running.store(false);
    set_detail("not running");
  }
};

Publisher::Publisher(PublisherConfig config, store::Store& store, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, metrics)) {}

Publisher::~Publisher() { stop(); }

ingest::Status Publisher::start() {
  Impl& impl = *impl_;
  ingest::ProducerConfig producer_config;
  producer_config.brokers = impl.config.brokers;
  producer_config.client_id = "painpoint-publisher";
  producer_config.linger = milliseconds{5};
  producer_config.delivery_timeout = impl.config.delivery_timeout;
  producer_config.extra = impl.config.producer_properties;
  // Frequent statistics feed broker_reachable() for /readyz.
  producer_config.extra["statistics.interval.ms"] = "1000";
  auto producer =
      ingest::Producer::create(producer_config, [&impl](const ingest::DeliveryReport& r) {
        impl.reports.push_back(
            {r.tag, r.status.ok(), r.status.ok() ? std::string{} : r.status.to_string()});
      });
  if (!producer.ok()) return producer.status();
  impl.producer.emplace(std::move(producer).value());
  if (auto s = impl.producer->prefetch_metadata(std::span(&impl.config.topic, 1),
                                                std::chrono::seconds(2));
      !s.ok()) {
    spdlog::warn("publisher: {} not looked up yet ({}); the first summaries wait for it",
                 impl.config.topic, s.to_string());
  }
  if (impl.config.test_initial_delay.count() > 0) {
    spdlog::warn("publisher: TEST ONLY delay of {} ms before the first publish",
                 impl.config.test_initial_delay.count());
  }
  {
    std::lock_guard lock(impl.wake_mutex);
    impl.wakeable = true;
  }
  impl.running.store(true);
  impl.set_detail("starting");
  impl.thread = std::thread([&impl] {
    pthread_setname_np(pthread_self(), "pp-publish");
    impl.run();
  });
  return ingest::Status::Ok();
}

void Publisher::stop() {
  if (!impl_) return;
  impl_->stop_requested.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Publisher::wake() {
  impl_->wake_pending.store(true);
  std::lock_guard lock(impl_->wake_mutex);
  if (impl_->wakeable) impl_->producer->wake();
}

bool Publisher::publisher_ok() const { return impl_->running.load() && impl_->healthy.load(); }

std::string Publisher::status_detail() const {
  std::lock_guard lock(impl_->detail_mutex);
  return impl_->detail;
}

std::uint64_t Publisher::pending() const { return impl_->pending_entries.load(); }

bool Publisher::outbox_empty() const { return impl_->empty.load(); }

}  // namespace painpoint::service

#include "alerts/alert_publisher.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "metrics.h"
#include "painpoint/ingest/producer.h"

namespace painpoint::service {

namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
}  // namespace

struct AlertPublisher::Impl {
  AlertPublisherConfig config;
  store::Store& store;
  std::optional<ingest::Producer> producer;
  std::thread thread;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> running{false};
  std::atomic<bool> healthy{true};
  std::atomic<bool> empty{false};

  // Publisher-thread state (delivery callbacks run on this thread, inside poll/flush).
  std::uint64_t cursor = 0;  // highest sequence acknowledged and deleted in this run
  std::vector<std::uint64_t> acknowledged;
  std::size_t failed = 0;
  std::string last_error;
  milliseconds backoff{0};
  // last_error for other threads (status_detail()).
  mutable std::mutex detail_mutex;
  std::string shared_error;

  Counter& published_total;
  Counter& failures_total;

  Impl(AlertPublisherConfig cfg, store::Store& s, MetricsRegistry& metrics)
      : config(std::move(cfg)),
        store(s),
        published_total(metrics.counter("painpoint_alerts_published_total",
                                        "Alert records acknowledged on painpoint.alerts")),
        failures_total(metrics.counter("painpoint_alert_publish_failures_total",
                                       "Alert records that failed to publish; retried")) {
    metrics.gauge_callback("painpoint_alert_publisher_ok",
                           "1 while the alert publisher runs and its deliveries succeed",
                           [this] { return running.load() && healthy.load() ? 1.0 : 0.0; });
  }

  // Publisher thread: records the error for this thread and for status_detail().
  void set_error(std::string error) {
    last_error = std::move(error);
    std::lock_guard lock(detail_mutex);
    shared_error = last_error;
  }

  // Produces one chunk and waits for its reports. Returns false when nothing was read.
  bool publish_chunk() {
    std::vector<store::StoredAlert> chunk;
    if (store::Status s = store.read_alert_outbox_after(cursor, config.read_chunk, &chunk);
        !s.ok()) {
      note_failure("read alert outbox: " + s.to_string());
      return false;
    }
    if (chunk.empty()) {
      // Everything at or below the cursor was acknowledged and deleted; nothing is above it.
      empty.store(true);
      return false;
    }
    empty.store(false);
    acknowledged.clear();
    failed = 0;
    std::string payload;
    std::size_t produced = 0;
    for (const store::StoredAlert& entry : chunk) {
      payload.clear();
      entry.alert.SerializeToString(&payload);
      if (auto s =
              producer->produce(config.topic, entry.alert.alert_id(), payload, {}, entry.sequence);
          !s.ok()) {
        note_failure("produce: " + s.to_string());
        break;
      }
      ++produced;
    }
    const auto deadline = Clock::now() + config.delivery_timeout + milliseconds{1'000};
    while (acknowledged.size() + failed < produced && Clock::now() < deadline) {
      producer->poll(milliseconds{50});
      if (stop_requested.load()) {
        (void)producer->flush(config.stop_flush_timeout);
        break;
      }
    }
    settle(chunk, produced);
    return true;
  }

  // Deletes the acknowledged entries, and moves the cursor past the chunk only when all of it
  // went out (otherwise the next round re-reads what is left, after a backoff).
  void settle(const std::vector<store::StoredAlert>& chunk, std::size_t produced) {
    if (!acknowledged.empty()) {
      if (store::Status s = store.delete_alert_outbox(acknowledged); !s.ok()) {
        note_failure("delete alert outbox entries: " + s.to_string());
        return;
      }
      published_total.inc(acknowledged.size());
    }
    if (acknowledged.size() == chunk.size() && produced == chunk.size()) {
      cursor = chunk.back().sequence;
      backoff = milliseconds{0};
      if (!last_error.empty()) spdlog::info("alert publisher: deliveries succeed again");
      set_error({});
      healthy.store(true);
      return;
    }
    // Acknowledged entries are deleted, so re-reading from the same cursor resends only the rest.
    failures_total.inc(chunk.size() - acknowledged.size());
    backoff = std::clamp(backoff * 2, config.backoff_min, config.backoff_max);
  }

  void note_failure(std::string what) {
    if (last_error.empty()) spdlog::warn("alert publisher: {}; alerts kept, retrying", what);
    set_error(std::move(what));
    healthy.store(false);
    backoff = std::clamp(backoff * 2, config.backoff_min, config.backoff_max);
  }

  void run() {
    while (!stop_requested.load()) {
      const bool worked = publish_chunk();
      if (worked && backoff.count() == 0) continue;
      const milliseconds wait = backoff.count() > 0 ? backoff : config.poll_interval;
      const auto until = Clock::now() + wait;
      while (!stop_requested.load() && Clock::now() < until) producer->poll(milliseconds{20});
    }
    if (auto s = producer->flush(config.stop_flush_timeout); !s.ok()) producer->purge();
    producer.reset();
    running.store(false);
  }
};

AlertPublisher::AlertPublisher(AlertPublisherConfig config, store::Store& store,
                               MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, metrics)) {}

AlertPublisher::~AlertPublisher() { stop(); }

ingest::Status AlertPublisher::start() {
  Impl& impl = *impl_;
  ingest::ProducerConfig producer_config;
  producer_config.brokers = impl.config.brokers;
  producer_config.client_id = "painpoint-alerts";
  producer_config.linger = milliseconds{5};
  producer_config.delivery_timeout = impl.config.delivery_timeout;
  producer_config.extra = impl.config.producer_properties;
  auto producer =
      ingest::Producer::create(producer_config, [&impl](const ingest::DeliveryReport& r) {
        if (r.status.ok()) {
          impl.acknowledged.push_back(r.tag);
        } else {
          ++impl.failed;
          if (impl.last_error.empty()) {
            spdlog::warn("alert publisher: delivery failed: {}; retrying", r.status.to_string());
          }
          impl.set_error(r.status.to_string());
          impl.healthy.store(false);
        }
      });
  if (!producer.ok()) return producer.status();
  impl.producer.emplace(std::move(producer).value());
  impl.running.store(true);
  impl.thread = std::thread([&impl] {
    pthread_setname_np(pthread_self(), "pp-alerts");
    impl.run();
  });
  return ingest::Status::Ok();
}

void AlertPublisher::stop() {
  if (!impl_) return;
  impl_->stop_requested.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool AlertPublisher::ok() const { return impl_->running.load() && impl_->healthy.load(); }

bool AlertPublisher::outbox_empty() const { return impl_->empty.load(); }

std::string AlertPublisher::status_detail() const {
  if (!impl_->running.load()) return "not running";
  if (impl_->healthy.load()) return "ok";
  std::lock_guard lock(impl_->detail_mutex);
  return "failing (" + impl_->shared_error + "); alerts kept in the outbox, retrying";
}

}  // namespace painpoint::service

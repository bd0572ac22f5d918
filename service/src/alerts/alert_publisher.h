#pragma once

// Drains the store's alert outbox to painpoint.alerts (key = alert id, value = AlertEvent
// protobuf bytes) with the idempotent producer: the promises of the summary publisher
// (publisher.h) without coalescing, since each alert is its own record.
//
// - At least once: an outbox entry is deleted only after the broker acknowledged its record; a
//   crash in between sends it again on restart, under the same key (the alert id), so a consumer
//   that keeps one record per key sees each alert once.
// - Bounded memory: at most `read_chunk` alerts are held at a time.
//
// Thread safety: start()/stop() from one controlling thread; the accessors from any thread. Owns
// its thread and producer; borrows the Store and MetricsRegistry, which must outlive it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "painpoint/ingest/status.h"
#include "painpoint/ingest/topics.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class MetricsRegistry;

struct AlertPublisherConfig {
  std::string brokers;
  // The operator's librdkafka properties for the producer (config file `kafka.*`).
  std::map<std::string, std::string> producer_properties;
  std::string topic{ingest::kTopicAlerts};
  // How often an idle publisher looks for new alerts.
  std::chrono::milliseconds poll_interval{100};
  std::size_t read_chunk = 500;
  std::chrono::milliseconds delivery_timeout{30'000};
  // Retry backoff after a failed chunk: doubles from min to max, reset by a success.
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{10'000};
  // stop() waits at most this long for the acknowledgements of the chunk in flight.
  std::chrono::milliseconds stop_flush_timeout{1'000};
};

class AlertPublisher {
 public:
  AlertPublisher(AlertPublisherConfig config, store::Store& store, MetricsRegistry& metrics);
  ~AlertPublisher();  // stop()
  AlertPublisher(const AlertPublisher&) = delete;
  AlertPublisher& operator=(const AlertPublisher&) = delete;

  ingest::Status start();
  // Settles the chunk in flight (at most stop_flush_timeout) and joins the thread. Idempotent.
  void stop();

  // False while deliveries fail or the store refused a read or delete.
  [[nodiscard]] bool ok() const;
  // True when the alert outbox was seen empty after everything committed so far.
  [[nodiscard]] bool outbox_empty() const;
  // "ok", "not running", or why deliveries fail (for /readyz).
  [[nodiscard]] std::string status_detail() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::service

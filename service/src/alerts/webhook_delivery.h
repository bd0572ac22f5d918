#pragma once

// Delivers fired alerts to the configured webhooks (docs/alerts.md, "Webhooks"): per webhook one
// thread that reads the alerts after the webhook's delivery position from the store, oldest
// first, POSTs each one (Slack: {"text": ...}; generic: the AlertEvent as JSON, signed), and
// records the new position in the store after every success. A failure is retried with
// exponential backoff, the same alert again, so a receiver that is down delays alerts and never
// loses them; a crash between a delivery and its record sends that alert again (at least once;
// generic receivers get the alert id in X-Painpoint-Alert-Id to drop repeats).
//
// Memory is bounded by `read_chunk` alerts per webhook: the queue is the store.
// Thread safety: start()/stop() from one thread. Borrows the Store and MetricsRegistry.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "alerts/alerts_config.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class MetricsRegistry;

struct WebhookDeliveryConfig {
  std::vector<ReadyWebhook> webhooks;
  std::filesystem::path ca_file;  // empty: the system's CAs
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{60'000};
  // How often an idle webhook looks for new alerts.
  std::chrono::milliseconds poll_interval{500};
  std::size_t read_chunk = 100;
};

// The request bodies (pure; unit-tested).
std::string slack_text(const v1::AlertEvent& alert);
std::string slack_body(const v1::AlertEvent& alert);
std::string generic_body(const v1::AlertEvent& alert);
// "sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>", the scheme of the generic connector.
std::string generic_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body);

class WebhookDelivery {
 public:
  WebhookDelivery(WebhookDeliveryConfig config, store::Store& store, MetricsRegistry& metrics);
  ~WebhookDelivery();  // stop()
  WebhookDelivery(const WebhookDelivery&) = delete;
  WebhookDelivery& operator=(const WebhookDelivery&) = delete;

  // Sets up TLS and starts one thread per webhook. A webhook without a recorded position starts
  // after the alerts fired so far (a new receiver is not flooded with history). "" or the error.
  std::string start();
  // Interrupts waits (a request in flight finishes or times out) and joins. Idempotent.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::service

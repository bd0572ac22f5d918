#include "alerts/webhook_delivery.h"

#include <google/protobuf/util/json_util.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "connectors/signature.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"
#include "http_server.h"
#include "metrics.h"

namespace painpoint::service {

namespace {
using Clock = std::chrono::system_clock;

std::string money(std::int64_t cents) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buffer;
}

std::string what_happened(const v1::AlertEvent& alert) {
  char buffer[96];
  switch (alert.kind()) {
    case v1::ALERT_KIND_NEW_PAIN_POINT:
      return "New pain point";
    case v1::ALERT_KIND_SPIKE:
      std::snprintf(buffer, sizeof buffer, "Spike: %lld events in the last 7 days, %lld before",
                    static_cast<long long>(alert.last_7_days_count()),
                    static_cast<long long>(alert.previous_7_days_count()));
      return buffer;
    case v1::ALERT_KIND_SEVERITY:
      std::snprintf(buffer, sizeof buffer, "Severity %.2f", alert.severity());
      return buffer;
    default:
      return "Alert";
  }
}

}  // namespace

std::string slack_text(const v1::AlertEvent& alert) {
  return "[" + alert.rule() + "] " + what_happened(alert) + " in " + alert.product_id() + ": \"" +
         alert.label() + "\" (" + std::to_string(alert.account_count()) + " accounts, " +
         std::to_string(alert.event_count()) + " events, ARR at risk " +
         money(alert.arr_at_risk_cents()) + ", pain point " + alert.pain_point_id() + ")";
}

std::string slack_body(const v1::AlertEvent& alert) {
  return "{\"text\":" + json_quote(slack_text(alert)) + "}";
}

std::string generic_body(const v1::AlertEvent& alert) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string body;
  if (!google::protobuf::util::MessageToJsonString(alert, &body, options).ok()) body = "{}";
  return body;
}

std::string generic_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body) {
  std::string message(timestamp);
  message += '.';
  message += body;
  return "sha256=" + base::hex_encode(hmac_sha256(secret, message));
}

struct WebhookDelivery::Impl {
  WebhookDeliveryConfig config;
  store::Store& store;
  std::vector<std::thread> threads;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop_requested = false;               // guarded by mutex
  std::atomic<bool> cancel_requests{false};  // set with stop_requested: abandons requests
  Counter& delivered_total;
  Counter& failures_total;

  Impl(WebhookDeliveryConfig cfg, store::Store& s, MetricsRegistry& metrics)
      : config(std::move(cfg)),
        store(s),
        delivered_total(metrics.counter("painpoint_alert_webhook_deliveries_total",
                                        "Alerts a webhook receiver accepted (2xx)")),
        failures_total(metrics.counter("painpoint_alert_webhook_failures_total",
                                       "Failed webhook deliveries (retried with backoff)")) {}

  // Sleeps up to `duration`; false when stop was requested.
  bool pause(std::chrono::milliseconds duration) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, duration, [this] { return stop_requested; });
    return !stop_requested;
  }

  bool stopping() {
    std::lock_guard lock(mutex);
    return stop_requested;
  }

  HttpsResult deliver(HttpsClient& client, const ReadyWebhook& hook, const v1::AlertEvent& alert) {
    if (hook.format == WebhookFormat::kSlack) {
      return client.post(hook.url, "application/json", slack_body(alert), {},
                         config.request_timeout, &cancel_requests);
    }
    std::string body = generic_body(alert);
    const std::string timestamp = std::to_string(base::seconds_of(Clock::now()));
    std::vector<std::pair<std::string, std::string>> headers = {
        {"X-Painpoint-Timestamp", timestamp},
        {"X-Painpoint-Signature", generic_signature(hook.secret, timestamp, body)},
        {"X-Painpoint-Alert-Id", alert.alert_id()}};
    return client.post(hook.url, "application/json", std::move(body), headers,
                       config.request_timeout, &cancel_requests);
  }

  // Delivers one alert, retrying with backoff until it is accepted; false when stopped first.
  bool deliver_until_accepted(HttpsClient& client, const ReadyWebhook& hook,
                              const store::StoredAlert& stored) {
    std::chrono::milliseconds backoff{0};
    while (!stopping()) {
      const HttpsResult result = deliver(client, hook, stored.alert);
      if (result.ok()) {
        delivered_total.inc();
        if (backoff.count() > 0) spdlog::info("webhook {}: delivering again", hook.name);
        return true;
      }
      failures_total.inc();
      backoff = std::clamp(backoff * 2, config.backoff_min, config.backoff_max);
      spdlog::warn("webhook {}: alert {} not delivered ({}); retrying in {} ms", hook.name,
                   stored.alert.alert_id(), result.describe(), backoff.count());
      if (!pause(backoff)) return false;
    }
    return false;
  }

  void run(const ReadyWebhook& hook, std::uint64_t position, HttpsClient client) {
    while (!stopping()) {
      std::vector<store::StoredAlert> chunk;
      if (store::Status s = store.read_alerts_after(position, config.read_chunk, &chunk);
          !s.ok()) {
        spdlog::error("webhook {}: read alerts: {}", hook.name, s.to_string());
        if (!pause(config.backoff_max)) return;
        continue;
      }
      for (const store::StoredAlert& stored : chunk) {
        if (!deliver_until_accepted(client, hook, stored)) return;
        position = stored.sequence;
        while (true) {
          store::Status s = store.record_webhook_position(hook.name, position);
          if (s.ok()) break;
          spdlog::error("webhook {}: record position: {}", hook.name, s.to_string());
          if (!pause(config.backoff_max)) return;
        }
      }
      if (chunk.size() < config.read_chunk && !pause(config.poll_interval)) return;
    }
  }
};

WebhookDelivery::WebhookDelivery(WebhookDeliveryConfig config, store::Store& store,
                                 MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, metrics)) {}

WebhookDelivery::~WebhookDelivery() { stop(); }

std::string WebhookDelivery::start() {
  Impl& impl = *impl_;
  for (const ReadyWebhook& hook : impl.config.webhooks) {
    auto client = HttpsClient::create(impl.config.ca_file.string());
    if (auto* error = std::get_if<std::string>(&client))
      return "webhook " + hook.name + ": " + *error;
    std::optional<std::uint64_t> position;
    if (store::Status s = impl.store.webhook_position(hook.name, &position); !s.ok()) {
      return "webhook " + hook.name + ": " + s.to_string();
    }
    if (!position) {
      position = impl.store.alert_next_sequence() - 1;
      if (store::Status s = impl.store.record_webhook_position(hook.name, *position); !s.ok()) {
        return "webhook " + hook.name + ": " + s.to_string();
      }
    }
    // Not the path: a Slack webhook's path is its credential.
    spdlog::info("webhook {}: delivering alerts after #{} to {}:{}", hook.name, *position,
                 hook.url.host, hook.url.port);
    impl.threads.emplace_back(
        [&impl, &hook, start = *position, c = std::get<HttpsClient>(std::move(client))]() mutable {
          pthread_setname_np(pthread_self(), "pp-webhook");
          impl.run(hook, start, std::move(c));
        });
  }
  return {};
}

void WebhookDelivery::stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stop_requested = true;
  }
  impl_->cancel_requests.store(true);
  impl_->wake.notify_all();
  for (auto& thread : impl_->threads) {
    if (thread.joinable()) thread.join();
  }
  impl_->threads.clear();
}

}  // namespace painpoint::service

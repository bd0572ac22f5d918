#pragma once

// The `alerts.*` keys of the configuration file (docs/alerts.md):
//   alerts.rules.<name> = new_pain_point accounts=N [within_hours=H]
//   alerts.rules.<name> = spike factor=X [min_events=M] [min_baseline=B] [min_arr_cents=Y]
//   alerts.rules.<name> = severity at_least=Z
//   alerts.webhooks.<name>.url = https://...      (or .url_file = PATH, or
//                                                   PAINPOINT_WEBHOOK_<NAME>_URL)
//   alerts.webhooks.<name>.format = slack | generic
//   alerts.webhooks.<name>.secret_file = PATH   (generic; or PAINPOINT_WEBHOOK_<NAME>_SECRET)
//   alerts.webhook_ca_file = PATH                (CAs to verify receivers with; default: system)
//   alerts.webhook_backoff_max_ms = N

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "alerts/https_client.h"
#include "painpoint/aggregator/alerts.h"

namespace painpoint::service {

enum class WebhookFormat {
  kSlack,    // a Slack-compatible incoming webhook: {"text": "..."}
  kGeneric,  // the AlertEvent as proto3 JSON, signed with HMAC-SHA256
};

struct AlertWebhookConfig {
  std::string name;  // [a-z0-9_-]
  std::string url;   // empty: from url_file or the environment
  std::filesystem::path url_file;
  std::optional<WebhookFormat> format;
  std::filesystem::path secret_file;
};

struct AlertsConfig {
  // In the order of the file; evaluated in this order.
  std::vector<aggregator::AlertRule> rules;
  std::vector<AlertWebhookConfig> webhooks;
  std::filesystem::path webhook_ca_file;
  // Retries of a failed delivery wait from 500 ms, doubling up to this.
  std::chrono::milliseconds webhook_backoff_max{60'000};
};

// Applies one `alerts.*` line; nullopt or what is wrong with it (a rule defined twice is wrong).
std::optional<std::string> apply_alerts_key(AlertsConfig& config, std::string_view key,
                                            std::string_view value);
// The rules and webhooks in the file format, with a comment that shows the syntax.
std::string describe_alerts(const AlertsConfig& config);

// A webhook ready to deliver: its URL parsed and its secret read.
struct ReadyWebhook {
  std::string name;
  HttpsUrl url;
  WebhookFormat format = WebhookFormat::kGeneric;
  std::string secret;  // generic only
};

// Checks every webhook (an https URL: from .url, .url_file or else the environment variable
// PAINPOINT_WEBHOOK_<NAME>_URL; a format; a secret for generic ones: from its secret_file or else
// PAINPOINT_WEBHOOK_<NAME>_SECRET; <NAME> upper-cased with - as _).
std::variant<std::vector<ReadyWebhook>, std::string> prepare_webhooks(const AlertsConfig& config);

}  // namespace painpoint::service

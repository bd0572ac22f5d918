#include "alerts/alerts_config.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "connectors/connectors.h"

namespace painpoint::service {

namespace {
constexpr std::string_view kRulePrefix = "alerts.rules.";
constexpr std::string_view kWebhookPrefix = "alerts.webhooks.";

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char ch : name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> apply_rule(AlertsConfig& config, std::string_view key,
                                      std::string_view value) {
  const std::string_view name = key.substr(kRulePrefix.size());
  for (const aggregator::AlertRule& existing : config.rules) {
    if (existing.name == name) return "alert rule '" + std::string(name) + "' defined twice";
  }
  auto parsed = aggregator::parse_alert_rule(name, value);
  if (auto* error = std::get_if<std::string>(&parsed)) return std::string(key) + ": " + *error;
  config.rules.push_back(std::get<aggregator::AlertRule>(std::move(parsed)));
  return std::nullopt;
}

std::optional<std::string> apply_webhook(AlertsConfig& config, std::string_view key,
                                         std::string_view value) {
  const std::string_view rest = key.substr(kWebhookPrefix.size());
  const auto dot = rest.find('.');
  const std::string_view name = rest.substr(0, dot);
  if (dot == std::string_view::npos || !valid_name(name)) {
    return "expected alerts.webhooks.<name>.url|url_file|format|secret_file, <name> of a-z, 0-9, "
           "_ and -";
  }
  AlertWebhookConfig* hook = nullptr;
  for (auto& existing : config.webhooks) {
    if (existing.name == name) hook = &existing;
  }
  if (hook == nullptr) {
    hook = &config.webhooks.emplace_back();
    hook->name = std::string(name);
  }
  const std::string_view field = rest.substr(dot + 1);
  if (field == "url") {
    if (!parse_https_url(value)) return std::string(key) + ": expected https://host[:port]/path";
    hook->url = std::string(value);
  } else if (field == "url_file") {
    hook->url_file = std::string(value);
  } else if (field == "format") {
    if (value == "slack") {
      hook->format = WebhookFormat::kSlack;
    } else if (value == "generic") {
      hook->format = WebhookFormat::kGeneric;
    } else {
      return std::string(key) + ": expected slack or generic";
    }
  } else if (field == "secret_file") {
    hook->secret_file = std::string(value);
  } else {
    return "unknown key '" + std::string(key) + "'";
  }
  return std::nullopt;
}

// PAINPOINT_WEBHOOK_<NAME>_<WHAT>, the name upper-cased with - as _.
std::string env_name(std::string_view webhook, std::string_view what) {
  std::string name = "PAINPOINT_WEBHOOK_";
  for (char c : webhook) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name + "_" + std::string(what);
}

// The URL from `.url`, else `.url_file`, else the environment: a Slack webhook's URL is its
// credential, so it may live where the secrets do. Empty: none given; else the URL or an error.
std::variant<HttpsUrl, std::string> webhook_url(const AlertWebhookConfig& hook,
                                                const std::string& what) {
  if (!hook.url.empty() && !hook.url_file.empty()) {
    return what + ": .url and .url_file both given (one of them)";
  }
  std::string url = hook.url;
  std::string origin = what + ".url";
  if (!hook.url_file.empty()) {
    auto read = read_secret_file(hook.url_file);
    if (!read) return "cannot read " + what + ".url_file " + hook.url_file.string();
    url = std::move(*read);
    origin = what + ".url_file " + hook.url_file.string();
  } else if (url.empty()) {
    const std::string env = env_name(hook.name, "URL");
    if (const char* value = std::getenv(env.c_str())) url = value;
    origin = env;
  }
  if (url.empty()) {
    return what + ".url is missing (.url, .url_file or " + env_name(hook.name, "URL") + ")";
  }
  auto parsed = parse_https_url(url);
  if (!parsed) return origin + ": expected https://host[:port]/path";
  return *parsed;
}

}  // namespace

std::optional<std::string> apply_alerts_key(AlertsConfig& config, std::string_view key,
                                            std::string_view value) {
  if (key.starts_with(kRulePrefix)) return apply_rule(config, key, value);
  if (key.starts_with(kWebhookPrefix)) return apply_webhook(config, key, value);
  if (key == "alerts.webhook_ca_file") {
    config.webhook_ca_file = std::string(value);
    return std::nullopt;
  }
  if (key == "alerts.webhook_backoff_max_ms") {
    long ms = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec != std::errc() || ptr != value.data() + value.size() || ms < 500) {
      return std::string(key) + ": expected whole milliseconds >= 500";
    }
    config.webhook_backoff_max = std::chrono::milliseconds(ms);
    return std::nullopt;
  }
  return "unknown key '" + std::string(key) +
         "' (alerts.rules.<name>, alerts.webhooks.<name>.*, alerts.webhook_ca_file, "
         "alerts.webhook_backoff_max_ms)";
}

std::string describe_alerts(const AlertsConfig& config) {
  std::string out =
      "# alert rules (docs/alerts.md), one line each:\n"
      "#   alerts.rules.<name> = new_pain_point accounts=N [within_hours=24]\n"
      "#   alerts.rules.<name> = spike factor=X [min_events=10] [min_baseline=5] "
      "[min_arr_cents=0]\n"
      "#   alerts.rules.<name> = severity at_least=Z\n";
  for (const aggregator::AlertRule& rule : config.rules) {
    out +=
        std::string(kRulePrefix) + rule.name + " = " + aggregator::describe_alert_rule(rule) + "\n";
  }
  out +=
      "# alert webhooks: alerts.webhooks.<name>.url = https://... (or .url_file = PATH, or\n"
      "#   PAINPOINT_WEBHOOK_<NAME>_URL), .format = slack | generic,\n"
      "#   .secret_file = PATH (generic; or PAINPOINT_WEBHOOK_<NAME>_SECRET)\n";
  for (const AlertWebhookConfig& hook : config.webhooks) {
    const std::string prefix = std::string(kWebhookPrefix) + hook.name + ".";
    if (!hook.url.empty()) out += prefix + "url = " + hook.url + "\n";
    if (!hook.url_file.empty()) out += prefix + "url_file = " + hook.url_file.string() + "\n";
    if (hook.format) {
      out += prefix + "format = " + (*hook.format == WebhookFormat::kSlack ? "slack" : "generic") +
             "\n";
    }
    if (!hook.secret_file.empty())
      out += prefix + "secret_file = " + hook.secret_file.string() + "\n";
  }
  out +=
      "# CA file to verify webhook receivers with (empty: the system's CAs)\n"
      "alerts.webhook_ca_file = " +
      config.webhook_ca_file.string() +
      "\n# longest wait between retries of a failed webhook delivery, ms\n"
      "alerts.webhook_backoff_max_ms = " +
      std::to_string(config.webhook_backoff_max.count()) + "\n";
  return out;
}

std::variant<std::vector<ReadyWebhook>, std::string> prepare_webhooks(const AlertsConfig& config) {
  std::vector<ReadyWebhook> ready;
  for (const AlertWebhookConfig& hook : config.webhooks) {
    const std::string what = "alerts.webhooks." + hook.name;
    ReadyWebhook r;
    r.name = hook.name;
    auto url = webhook_url(hook, what);
    if (auto* error = std::get_if<std::string>(&url)) return std::move(*error);
    r.url = std::get<HttpsUrl>(std::move(url));
    if (!hook.format) return what + ".format is missing (slack or generic)";
    r.format = *hook.format;
    if (r.format == WebhookFormat::kGeneric) {
      if (!hook.secret_file.empty()) {
        auto secret = read_secret_file(hook.secret_file);
        if (!secret) return "cannot read " + what + ".secret_file " + hook.secret_file.string();
        r.secret = std::move(*secret);
      } else if (const char* env = std::getenv(env_name(hook.name, "SECRET").c_str())) {
        r.secret = env;
      }
      if (r.secret.empty()) {
        return what + ": a generic webhook needs a secret (" + what + ".secret_file or " +
               env_name(hook.name, "SECRET") + ")";
      }
    }
    ready.push_back(std::move(r));
  }
  return ready;
}

}  // namespace painpoint::service

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "connectors.h"

namespace painpoint::service {

namespace {

constexpr std::string_view kGenericFields[] = {"id",  "text", "product", "account",
                                               "arr", "time", "url"};

bool is_generic_field(std::string_view name) {
  for (std::string_view field : kGenericFields) {
    if (field == name) return true;
  }
  return false;
}

std::string_view trim_line_end(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return text;
}

std::string env_name(ConnectorSystem system) {
  std::string name = "PAINPOINT_";
  for (char c : system_name(system)) name.push_back(static_cast<char>(std::toupper(c)));
  return name + "_SECRET";
}

std::optional<std::string> load_accounts(const std::filesystem::path& path,
                                         std::map<std::string, std::int64_t, std::less<>>* out) {
  std::ifstream in(path);
  if (!in) return "cannot open connectors.accounts_file " + path.string();
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string_view text = trim_line_end(line);
    if (text.empty() || text.front() == '#') continue;
    const auto comma = text.rfind(',');
    std::int64_t cents = 0;
    const std::string_view amount = comma == std::string_view::npos ? "" : text.substr(comma + 1);
    auto [ptr, ec] = std::from_chars(amount.data(), amount.data() + amount.size(), cents);
    if (comma == 0 || comma == std::string_view::npos || ec != std::errc() ||
        ptr != amount.data() + amount.size() || cents < 0) {
      return path.string() + " line " + std::to_string(number) +
             ": expected `account_id,arr_cents`";
    }
    (*out)[std::string(text.substr(0, comma))] = cents;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> read_secret_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return std::string(trim_line_end(content.str()));
}

std::string_view system_name(ConnectorSystem system) {
  switch (system) {
    case ConnectorSystem::kZendesk:
      return "zendesk";
    case ConnectorSystem::kIntercom:
      return "intercom";
    case ConnectorSystem::kJira:
      return "jira";
    case ConnectorSystem::kGeneric:
      return "generic";
  }
  return "?";
}

std::optional<ConnectorSystem> parse_system(std::string_view name) {
  for (ConnectorSystem system : kConnectorSystems) {
    if (system_name(system) == name) return system;
  }
  return std::nullopt;
}

std::optional<std::string> apply_connector_key(ConnectorsConfig& config, std::string_view key,
                                               std::string_view value) {
  constexpr std::string_view kPrefix = "connectors.";
  if (!key.starts_with(kPrefix)) return "not a connectors key";
  key.remove_prefix(kPrefix.size());
  if (key == "accounts_file") {
    config.accounts_file = std::string(value);
    return std::nullopt;
  }
  if (key == "max_timestamp_skew_s") {
    long seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || ptr != value.data() + value.size() || seconds < 1) {
      return "expected a whole number of seconds >= 1";
    }
    config.max_timestamp_skew = std::chrono::seconds(seconds);
    return std::nullopt;
  }
  const auto dot = key.find('.');
  const auto system = parse_system(key.substr(0, dot));
  if (!system || dot == std::string_view::npos) {
    return "unknown connector (zendesk, intercom, jira or generic)";
  }
  ConnectorConfig& c = config.systems[*system];
  const std::string_view name = key.substr(dot + 1);
  if (name == "secret_file") {
    c.secret_file = std::string(value);
  } else if (name == "default_product") {
    c.default_product = std::string(value);
  } else if (name == "url_base") {
    c.url_base = std::string(trim_line_end(value));
    while (!c.url_base.empty() && c.url_base.back() == '/') c.url_base.pop_back();
  } else if (name.starts_with("product.") && name.find('.', 8) != std::string_view::npos) {
    c.product_by[std::string(name.substr(8))] = std::string(value);
  } else if (*system == ConnectorSystem::kGeneric && name.starts_with("field.") &&
             is_generic_field(name.substr(6))) {
    if (value.empty() || value.front() != '/') return "a JSON pointer starts with '/'";
    c.pointers[std::string(name.substr(6))] = std::string(value);
  } else {
    return "unknown key";
  }
  return std::nullopt;
}

std::string describe_connectors(const ConnectorsConfig& config) {
  std::string out =
      "# accepted distance of a signed timestamp from the clock, s\n"
      "connectors.max_timestamp_skew_s = " +
      std::to_string(config.max_timestamp_skew.count()) + "\n";
  if (!config.accounts_file.empty()) {
    out += "connectors.accounts_file = " + config.accounts_file.string() + "\n";
  }
  for (const auto& [system, c] : config.systems) {
    const std::string prefix = "connectors." + std::string(system_name(system)) + ".";
    if (!c.secret_file.empty()) out += prefix + "secret_file = " + c.secret_file.string() + "\n";
    if (!c.default_product.empty()) out += prefix + "default_product = " + c.default_product + "\n";
    if (!c.url_base.empty()) out += prefix + "url_base = " + c.url_base + "\n";
    for (const auto& [selector, product] : c.product_by) {
      out += prefix + "product." + selector + " = " + product + "\n";
    }
    for (const auto& [field, pointer] : c.pointers) {
      out += prefix + "field." + field + " = " + pointer + "\n";
    }
  }
  return out;
}

ConnectorsLoad load_connectors(const ConnectorsConfig& config) {
  Connectors connectors;
  connectors.max_timestamp_skew = config.max_timestamp_skew;
  if (!config.accounts_file.empty()) {
    if (auto error = load_accounts(config.accounts_file, &connectors.arr_by_account)) {
      return {std::nullopt, *error};
    }
  }
  for (ConnectorSystem system : kConnectorSystems) {
    const auto configured = config.systems.find(system);
    ConnectorConfig c = configured == config.systems.end() ? ConnectorConfig{} : configured->second;
    std::string secret;
    if (!c.secret_file.empty()) {
      auto read = read_secret_file(c.secret_file);
      if (!read) {
        return {std::nullopt, "cannot read connectors." + std::string(system_name(system)) +
                                  ".secret_file " + c.secret_file.string()};
      }
      secret = std::move(*read);
    } else if (const char* env = std::getenv(env_name(system).c_str())) {
      secret = env;
    }
    if (secret.empty()) continue;  // disabled: the route answers 404
    if (system == ConnectorSystem::kGeneric &&
        (!c.pointers.contains("id") || !c.pointers.contains("text"))) {
      return {std::nullopt,
              "the generic connector needs connectors.generic.field.id and field.text"};
    }
    connectors.enabled[system] = {std::move(c), std::move(secret)};
  }
  return {std::move(connectors), {}};
}

}  // namespace painpoint::service

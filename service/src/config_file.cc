#include "config_file.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string_view>
#include <type_traits>

#include "text_trim.h"

namespace painpoint::service {

namespace {

template <typename T>
bool parse_number(std::string_view text, T* out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

struct Entry {
  std::string key;
  std::string help;
  std::function<bool(ServiceConfig&, std::string_view)> set;
  std::function<std::string(const ServiceConfig&)> get;
};

template <typename T>
std::string to_text(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

template <typename Access>
using FieldType = std::remove_cvref_t<std::invoke_result_t<Access, ServiceConfig&>>;

// One entry for a plain field reached through `field(config)`; values outside [min, max] are
// refused.
template <typename Access>
Entry field_entry(std::string key, std::string help, Access field,
                  FieldType<Access> min = std::numeric_limits<FieldType<Access>>::lowest(),
                  FieldType<Access> max = std::numeric_limits<FieldType<Access>>::max()) {
  Entry entry;
  entry.key = std::move(key);
  entry.help = std::move(help);
  entry.set = [field, min, max](ServiceConfig& c, std::string_view text) {
    FieldType<Access> value{};
    if (!parse_number(text, &value) || value < min || value > max) return false;
    field(c) = value;
    return true;
  };
  entry.get = [field](const ServiceConfig& c) { return to_text(field(c)); };
  return entry;
}

// One entry for a std::chrono::milliseconds field, written as a whole number of ms >= min_ms.
template <typename Access>
Entry millis_entry(std::string key, std::string help, long min_ms, Access field) {
  Entry entry;
  entry.key = std::move(key);
  entry.help = std::move(help);
  entry.set = [field, min_ms](ServiceConfig& c, std::string_view text) {
    long ms = 0;
    if (!parse_number(text, &ms) || ms < min_ms) return false;
    field(c) = std::chrono::milliseconds(ms);
    return true;
  };
  entry.get = [field](const ServiceConfig& c) { return std::to_string(field(c).count()); };
  return entry;
}

// The aggregator's thresholds; see aggregator/README.md for what each one does.
void append_cluster_entries(std::vector<Entry>& table);

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = [] {
    std::vector<Entry> t;
    t.push_back(field_entry(
        "validation.max_text_bytes", "longest accepted text, bytes",
        [](auto& c) -> auto& { return c.validation.max_text_bytes; }));
    t.push_back(field_entry(
        "validation.max_id_bytes", "longest event/product id, bytes",
        [](auto& c) -> auto& { return c.validation.max_id_bytes; }));
    t.push_back(field_entry(
        "validation.max_attributes", "most attributes per event",
        [](auto& c) -> auto& { return c.validation.max_attributes; }));
    t.push_back(field_entry(
        "validation.max_attribute_bytes", "longest attribute key or value, bytes",
        [](auto& c) -> auto& { return c.validation.max_attribute_bytes; }));
    Entry skew;
    skew.key = "validation.max_future_skew_hours";
    skew.help = "how far occurred_at may lie in the future, hours";
    skew.set = [](ServiceConfig& c, std::string_view text) {
      long hours = 0;
      if (!parse_number(text, &hours) || hours < 0) return false;
      c.validation.max_future_skew = std::chrono::hours(hours);
      return true;
    };
    skew.get = [](const ServiceConfig& c) {
      return std::to_string(c.validation.max_future_skew.count());
    };
    t.push_back(std::move(skew));
    t.push_back(millis_entry(
        "publisher.summary_interval_ms",
        "at most one summary per pain point per interval on painpoint.summaries, ms", 0,
        [](auto& c) -> auto& { return c.summary_interval; }));
    t.push_back(field_entry(
        "aggregator.checkpoint_events",
        "write out the aggregator state every N stored events (a crash replays fewer)",
        [](auto& c) -> auto& { return c.checkpoint_events; }, std::uint64_t{1}));
    t.push_back(millis_entry(
        "aggregator.checkpoint_interval_ms",
        "write out the aggregator state at least this often while events arrive, ms", 1,
        [](auto& c) -> auto& { return c.checkpoint_interval; }));
    t.push_back(field_entry(
        "aggregator.checkpoint_batches",
        "spread a checkpoint over N batches, a share of the products in each (1: all at once)",
        [](auto& c) -> auto& { return c.checkpoint_batches; }, std::uint64_t{1}));
    t.push_back(field_entry(
        "aggregator.threads",
        "cluster each batch on this many threads, products spread over them (0: one per two "
        "cores, at most 4; up to 64)",
        [](auto& c) -> auto& { return c.aggregator_threads; }, std::uint64_t{0},
        std::uint64_t{64}));
    Entry changelog;
    changelog.key = "changelog.enabled";
    changelog.help =
        "write every state change to painpoint.aggregator-changelog before the local commit and "
        "restore partitions from it (true/false; needs --brokers)";
    changelog.set = [](ServiceConfig& c, std::string_view text) {
      if (text != "true" && text != "false") return false;
      c.changelog_enabled = text == "true";
      return true;
    };
    changelog.get = [](const ServiceConfig& c) {
      return std::string(c.changelog_enabled ? "true" : "false");
    };
    t.push_back(std::move(changelog));
    append_cluster_entries(t);
    return t;
  }();
  return table;
}

void append_cluster_entries(std::vector<Entry>& table) {
  for (const auto& [name, help] : aggregator::config_keys()) {
    Entry entry;
    entry.key = "cluster." + name;
    entry.help = help;
    entry.set = [key = name](ServiceConfig& c, std::string_view text) {
      return !aggregator::apply_config_override(c.cluster, key, text).has_value();
    };
    entry.get = [key = name](const ServiceConfig& c) {
      return aggregator::config_value(c.cluster, key).value_or("?");
    };
    table.push_back(std::move(entry));
  }
}

}  // namespace

std::string read_key_value_lines(
    std::istream& in,
    const std::function<std::string(std::string_view key, std::string_view value)>& apply) {
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string_view text = line;
    if (auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    text = trim(text);
    if (text.empty()) continue;
    const auto eq = text.find('=');
    std::string error = eq == std::string_view::npos
                            ? "expected `key = value`"
                            : apply(trim(text.substr(0, eq)), trim(text.substr(eq + 1)));
    if (!error.empty()) return "line " + std::to_string(number) + ": " + error;
  }
  return {};
}

std::string apply_service_key(ServiceConfig& config, std::string_view key, std::string_view value) {
  if (key.starts_with("connectors.")) {
    auto problem = apply_connector_key(config.connectors, key, value);
    return problem ? std::string(key) + ": " + *problem : std::string();
  }
  if (key.starts_with("alerts.")) return apply_alerts_key(config.alerts, key, value).value_or("");
  if (is_kafka_key(key)) return apply_kafka_key(config.kafka, key, value).value_or("");
  const Entry* match = nullptr;
  for (const Entry& e : entries()) {
    if (e.key == key) match = &e;
  }
  if (match == nullptr) return "unknown key '" + std::string(key) + "'";
  if (!match->set(config, value)) return "bad value '" + std::string(value) + "' for " + match->key;
  return {};
}

ConfigLoadResult parse_service_config(std::istream& in) {
  ServiceConfig config;
  std::string error =
      read_key_value_lines(in, [&config](std::string_view key, std::string_view value) {
        return apply_service_key(config, key, value);
      });
  if (!error.empty()) return {std::nullopt, std::move(error)};
  return {std::move(config), {}};
}

ConfigLoadResult load_service_config(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return {std::nullopt, "cannot open " + path.string()};
  return parse_service_config(in);
}

ConfigLoadResult load_service_config(const std::optional<std::filesystem::path>& path,
                                     std::span<const std::string> overrides) {
  ConfigLoadResult loaded{ServiceConfig{}, {}};
  if (path) {
    loaded = load_service_config(*path);
    if (!loaded.config) {
      loaded.error = path->string() + ": " + loaded.error;
      return loaded;
    }
  }
  for (const std::string& item : overrides) {
    const std::string_view text = item;
    const auto eq = text.find('=');
    const std::string error = eq == std::string_view::npos
                                  ? "expected KEY=VALUE"
                                  : apply_service_key(*loaded.config, trim(text.substr(0, eq)),
                                                      trim(text.substr(eq + 1)));
    if (!error.empty()) return {std::nullopt, "--set " + item + ": " + error};
  }
  return loaded;
}

std::string describe_service_config(const ServiceConfig& config) {
  std::string out;
  for (const Entry& e : entries()) {
    out += "# " + e.help + "\n" + e.key + " = " + e.get(config) + "\n";
  }
  return out + describe_kafka_keys(config.kafka) + describe_connectors(config.connectors) +
         describe_alerts(config.alerts);
}

}  // namespace painpoint::service

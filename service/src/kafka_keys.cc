#include "kafka_keys.h"

#include <array>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace painpoint::service {

namespace {

constexpr std::string_view kPrefix = "kafka.";
constexpr std::string_view kFileSuffix = "_file";
constexpr std::string_view kEnvSuffix = "_env";
constexpr std::string_view kRedacted = "<redacted>";
// kafka.group_instance_id[_env|_file]: the consumers' group.instance.id (static membership), e.g.
// `kafka.group_instance_id_env = POD_NAME`; the same as kafka.consumer.group.instance.id.
constexpr std::string_view kGroupInstanceIdKey = "group_instance_id";
constexpr std::array kRoles{
    std::pair{std::string_view("consumer."), ingest::ClientRole::kConsumer},
    std::pair{std::string_view("producer."), ingest::ClientRole::kProducer},
    std::pair{std::string_view("admin."), ingest::ClientRole::kAdmin},
};

bool cut_suffix(std::string_view* text, std::string_view suffix) {
  if (!text->ends_with(suffix)) return false;
  text->remove_suffix(suffix.size());
  return true;
}

// The secret file's content; a trailing newline (as editors and `echo` leave) is not part of it.
std::optional<std::string> read_value_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  std::string value = content.str();
  if (value.ends_with('\n')) value.pop_back();
  if (value.ends_with('\r')) value.pop_back();
  return value;
}

std::optional<std::string> refusal(ingest::ClientRole role, std::string_view property,
                                   bool every_role) {
  std::optional<std::string_view> reason;
  if (every_role) {
    for (const auto& [prefix, each] : kRoles) {
      if (!reason) reason = ingest::reserved_property_reason(each, property);
    }
  } else {
    reason = ingest::reserved_property_reason(role, property);
  }
  if (!reason) return std::nullopt;
  return "is set by Painpoint itself (" + std::string(*reason) + ")";
}

}  // namespace

bool is_kafka_key(std::string_view key) { return key.starts_with(kPrefix); }

std::optional<std::string> apply_kafka_key(KafkaKeys& keys, std::string_view key,
                                           std::string_view value) {
  const std::string named(key);
  std::string_view property = key.substr(kPrefix.size());
  auto role = ingest::ClientRole::kConsumer;
  bool every_role = true;
  for (const auto& [prefix, each] : kRoles) {
    if (property.starts_with(prefix)) {
      property.remove_prefix(prefix.size());
      role = each;
      every_role = false;
    }
  }
  const bool from_file = cut_suffix(&property, kFileSuffix);
  const bool from_env = !from_file && cut_suffix(&property, kEnvSuffix);
  if (property.empty()) return named + ": no librdkafka property named";
  if (every_role && property == kGroupInstanceIdKey) {
    property = "group.instance.id";
    role = ingest::ClientRole::kConsumer;
    every_role = false;
  }
  if (auto refused = refusal(role, property, every_role)) return named + " " + *refused;

  std::string resolved(value);
  if (from_file) {
    auto content = read_value_file(resolved);
    if (!content) return named + ": cannot read " + resolved;
    resolved = std::move(*content);
  } else if (from_env) {
    const char* env = std::getenv(resolved.c_str());
    if (env == nullptr) return named + ": environment variable " + resolved + " is not set";
    resolved = env;
  }
  const std::string name(property);
  if (auto s = ingest::check_client_property(name, resolved); !s.ok()) {
    return named + ": " + s.message;
  }

  const bool every = every_role;
  (every ? keys.settings.all : keys.settings.of_role(role))[name] = resolved;
  const bool hide = !from_file && !from_env && ingest::is_secret_property(name);
  std::string shown = hide ? std::string(kRedacted) : std::string(value);
  std::erase_if(keys.shown, [&](const auto& line) { return line.first == named; });
  keys.shown.emplace_back(named, std::move(shown));
  return std::nullopt;
}

std::string describe_kafka_keys(const KafkaKeys& keys) {
  std::string out =
      "# kafka.<librdkafka property> = value for every Kafka client; kafka.consumer.*, "
      "kafka.producer.*, kafka.admin.* for one role; <property>_file = PATH and "
      "<property>_env = NAME read a value (a secret) from a file or the environment; "
      "kafka.group_instance_id[_env] = the consumers' group.instance.id (static membership)\n";
  for (const auto& [key, shown] : keys.shown) out += key + " = " + shown + "\n";
  return out;
}

}  // namespace painpoint::service

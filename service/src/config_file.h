#pragma once

// The configuration file of `painpoint serve` and `painpoint cluster` (--config FILE).
//
// Format: one `key = value` per line; `#` starts a comment; blank lines are ignored. Keys are
// `section.name` (e.g. `validation.max_text_bytes = 16384`). Unknown keys and unparsable values
// are errors that name the line, so a typo never silently falls back to a default. `kafka.*`
// keys pass librdkafka properties to every Kafka client (kafka_keys.h); librdkafka checks them.
// Every key and its default is listed by `painpoint config --defaults`.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "alerts/alerts_config.h"
#include "connectors/connectors.h"
#include "kafka_keys.h"
#include "painpoint/aggregator/config.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::service {

struct ServiceConfig {
  aggregator::ClusterConfig cluster;
  ingest::ValidationConfig validation;
  // At most one summary per pain point per interval on painpoint.summaries (latest state wins).
  // An event that arrives just after its pain point's record waits this long, so it bounds the
  // produce-to-summary latency from below (docs/benchmarks.md).
  std::chrono::milliseconds summary_interval{250};
  // The aggregator state is written out every checkpoint_events stored events or
  // checkpoint_interval, whichever comes first (and at stop); a restart after a crash replays
  // the events stored since. Larger: fewer writes, longer recovery.
  std::uint64_t checkpoint_events = 250'000;
  std::chrono::milliseconds checkpoint_interval{60'000};
  // A checkpoint is spread over this many batches, a share of the products in each, so that no
  // batch stalls for the whole state (1: all at once). One product's state is never split.
  std::uint64_t checkpoint_batches = 16;
  // Products are spread over this many aggregators, which cluster a batch side by side on as
  // many threads (0: one per two cores, at most 4). Results are the same for any number.
  std::uint64_t aggregator_threads = 0;
  // Every state write of a partition also goes to painpoint.aggregator-changelog before the
  // local commit, and a partition is restored from it before it is processed (changelog/README.md).
  // Needs --brokers: the embedded broker keeps at most 5 MiB per partition.
  bool changelog_enabled = false;
  // connectors.* keys: the webhooks of support systems (docs/connectors.md).
  ConnectorsConfig connectors;
  // alerts.* keys: alert rules (docs/alerts.md).
  AlertsConfig alerts;
  // kafka.* keys: librdkafka properties for every Kafka client (see kafka_keys.h).
  KafkaKeys kafka;
};

struct ConfigLoadResult {
  std::optional<ServiceConfig> config;
  std::string error;  // set when config is empty: "line 3: unknown key 'cluster.treshold'"
};

// Reads the format above (also used by `painpoint import --map`): each `key = value`, both
// trimmed, goes to `apply`, which returns "" or what is wrong with it. Returns "" or the first
// error as "line N: <what>".
std::string read_key_value_lines(
    std::istream& in,
    const std::function<std::string(std::string_view key, std::string_view value)>& apply);

ConfigLoadResult parse_service_config(std::istream& in);
ConfigLoadResult load_service_config(const std::filesystem::path& path);

// One `key = value` of the format above applied to `config`: "" or what is wrong with it.
std::string apply_service_key(ServiceConfig& config, std::string_view key, std::string_view value);

// The file at `path` (none: the defaults), then each "key=value" of `overrides` (the command
// line's --set, same keys as the file) over it. The error names the file or the --set.
ConfigLoadResult load_service_config(const std::optional<std::filesystem::path>& path,
                                     std::span<const std::string> overrides);

// Every key with its current value in `config`, one per line, in the file format.
std::string describe_service_config(const ServiceConfig& config);

}  // namespace painpoint::service

#include "painpoint/ingest/topics.h"

#include <charconv>
#include <map>

namespace painpoint::ingest {

std::vector<std::string> input_topics() {
  return {std::string(kTopicSupport), std::string(kTopicSales), std::string(kTopicCustomer)};
}

std::vector<TopicSpec> painpoint_topics(int partitions, int replication_factor) {
  std::vector<TopicSpec> specs;
  for (auto name : {kTopicSupport, kTopicSales, kTopicCustomer, kTopicByProduct, kTopicDeadletter,
                    kTopicSummaries, kTopicChangelog, kTopicAlerts}) {
    TopicSpec spec;
    spec.name = std::string(name);
    spec.partitions = partitions;
    spec.replication_factor = replication_factor;
    spec.exact_partitions = name == kTopicByProduct || name == kTopicChangelog;
    // Subscribers only need the latest summary per pain point id.
    if (name == kTopicSummaries) spec.configs["cleanup.policy"] = "compact";
    // A restore needs the latest value of every key, and recent batches whole.
    if (name == kTopicChangelog) {
      spec.configs["cleanup.policy"] = "compact";
      spec.configs["min.compaction.lag.ms"] = std::to_string(kChangelogMinCompactionLagMs);
    }
    if (name == kTopicDeadletter) {
      spec.configs["retention.ms"] = std::to_string(kDeadletterRetentionMs);
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

namespace {

// A retention or compaction lag at least as long as wanted (or unlimited) keeps what Painpoint
// needs.
bool duration_suffices(const std::string& have, const std::string& want) {
  long long have_ms = 0, want_ms = 0;
  const auto parsed = [](const std::string& text, long long* out) {
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && ptr == text.data() + text.size();
  };
  if (!parsed(have, &have_ms) || !parsed(want, &want_ms)) return have == want;
  return have_ms < 0 || have_ms >= want_ms;
}

}  // namespace

std::vector<std::string> topic_mismatches(const TopicSpec& want, int partitions,
                                          const TopicConfigs& have) {
  std::vector<std::string> out;
  if (want.exact_partitions && partitions != want.partitions) {
    out.push_back(std::to_string(partitions) + " partitions, expected " +
                  std::to_string(want.partitions) +
                  (want.name == kTopicByProduct
                       ? " (each partition owns the state of its products; a different count "
                         "moves products to partitions that do not hold their history)"
                       : " (partition p holds the state of partition p of " +
                             std::string(kTopicByProduct) + ")"));
  }
  for (const auto& [key, value] : want.configs) {
    const auto it = have.find(key);
    const std::string actual = it == have.end() ? "(unset)" : it->second;
    const bool fits = key == "retention.ms" || key == "min.compaction.lag.ms"
                          ? duration_suffices(actual, value)
                          : actual == value;
    if (!fits) out.push_back(key + " is " + actual + ", expected " + value);
  }
  return out;
}

Result<std::vector<TopicCheck>> ensure_topics(Admin& admin, std::span<const TopicSpec> specs,
                                              std::chrono::milliseconds timeout) {
  auto metadata = admin.metadata(timeout);
  if (!metadata.ok()) return metadata.status();
  std::map<std::string, int> existing;
  for (const auto& topic : metadata->topics) {
    if (topic.error.ok()) existing[topic.name] = topic.partitions;
  }
  std::vector<TopicSpec> missing;
  std::vector<std::string> present;
  for (const auto& spec : specs) {
    if (existing.contains(spec.name)) {
      present.push_back(spec.name);
    } else {
      missing.push_back(spec);
    }
  }
  if (auto s = admin.create_topics(missing, timeout); !s.ok()) return s;
  auto configs = admin.describe_topic_configs(present, timeout);
  if (!configs.ok()) return configs.status();

  std::vector<TopicCheck> checks;
  for (const auto& spec : specs) {
    TopicCheck check;
    check.topic = spec.name;
    if (!existing.contains(spec.name)) {
      check.outcome = TopicCheck::Outcome::kCreated;
    } else {
      check.mismatches = topic_mismatches(spec, existing[spec.name], (*configs)[spec.name]);
      if (!check.mismatches.empty()) check.outcome = TopicCheck::Outcome::kMismatch;
    }
    checks.push_back(std::move(check));
  }
  return checks;
}

}  // namespace painpoint::ingest

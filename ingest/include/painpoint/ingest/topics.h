#pragma once

// Names of the Kafka topics Painpoint uses, and how it creates them.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/ingest/admin.h"

namespace painpoint::ingest {

inline constexpr std::string_view kTopicSupport = "feedback.support";
inline constexpr std::string_view kTopicSales = "feedback.sales";
inline constexpr std::string_view kTopicCustomer = "feedback.customer";
inline constexpr std::string_view kTopicByProduct = "painpoint.feedback-by-product";
inline constexpr std::string_view kTopicDeadletter = "painpoint.deadletter";
inline constexpr std::string_view kTopicSummaries = "painpoint.summaries";
// The aggregator's state changes, partition p for partition p of kTopicByProduct (changelog/).
inline constexpr std::string_view kTopicChangelog = "painpoint.aggregator-changelog";
// AlertEvent records keyed by alert id (docs/alerts.md); the broker's retention applies.
inline constexpr std::string_view kTopicAlerts = "painpoint.alerts";

// The three input topics, in a fixed order.
std::vector<std::string> input_topics();

// Dead letters are read by people, often days after the fact: they are kept for 30 days.
inline constexpr std::int64_t kDeadletterRetentionMs = 30LL * 24 * 3600 * 1000;

// The log cleaner leaves a changelog record alone for this long, so that the records a restore
// must tell apart (an unfinished batch, a superseded owner's late writes) are still there
// uncompacted beside the markers that decide about them (changelog/README.md).
inline constexpr std::int64_t kChangelogMinCompactionLagMs = 3600LL * 1000;

// Every topic Painpoint needs, with `partitions` partitions each (replication_factor -1: the
// broker's default). painpoint.summaries and painpoint.aggregator-changelog are compacted (latest
// value per key), painpoint.deadletter keeps kDeadletterRetentionMs; the others use the broker's
// retention.
std::vector<TopicSpec> painpoint_topics(int partitions, int replication_factor = 1);

// What an existing topic lacks compared with `want`: its partition count where that must match
// (TopicSpec::exact_partitions: the repartition topic, whose partitions each own their products'
// state, and the changelog, partition for partition) and each config of the spec (retention.ms and
// min.compaction.lag.ms may be longer, retention.ms also -1). Empty when it fits.
std::vector<std::string> topic_mismatches(const TopicSpec& want, int partitions,
                                          const TopicConfigs& have);

// What `painpoint topics ensure` did with one topic.
struct TopicCheck {
  enum class Outcome { kCreated, kOk, kMismatch };
  std::string topic;
  Outcome outcome = Outcome::kOk;
  std::vector<std::string> mismatches;
};

// Creates the topics of `specs` that do not exist and checks the others (topic_mismatches).
// An error when the cluster could not be asked or refused to create a topic.
Result<std::vector<TopicCheck>> ensure_topics(Admin& admin, std::span<const TopicSpec> specs,
                                              std::chrono::milliseconds timeout);

// Dead-letter header names: the original message is kept byte for byte, these explain it.
inline constexpr std::string_view kHeaderReason = "painpoint.reason";  // reason_code()
inline constexpr std::string_view kHeaderDetail = "painpoint.detail";  // human-readable
inline constexpr std::string_view kHeaderTopic = "painpoint.source.topic";
inline constexpr std::string_view kHeaderPartition = "painpoint.source.partition";  // decimal
inline constexpr std::string_view kHeaderOffset = "painpoint.source.offset";        // decimal

}  // namespace painpoint::ingest

#pragma once

// Names of the Kafka topics Painpoint uses, and how it creates them.

#include <string_view>
#include <vector>

#include "painpoint/ingest/kafka.h"

namespace painpoint::ingest {

inline constexpr std::string_view kTopicSupport = "feedback.support";
inline constexpr std::string_view kTopicSales = "feedback.sales";
inline constexpr std::string_view kTopicCustomer = "feedback.customer";
inline constexpr std::string_view kTopicByProduct = "painpoint.feedback-by-product";
inline constexpr std::string_view kTopicDeadletter = "painpoint.deadletter";
inline constexpr std::string_view kTopicSummaries = "painpoint.summaries";

// The three input topics, in a fixed order.
std::vector<std::string> input_topics();

// Every topic Painpoint needs, with `partitions` partitions each. painpoint.summaries is
// compacted (latest summary per pain point id); the others use time/size retention.
std::vector<TopicSpec> painpoint_topics(int partitions, int replication_factor = 1);

// Dead-letter header names: the original message is kept byte for byte, these explain it.
inline constexpr std::string_view kHeaderReason = "painpoint.reason";  // reason_code()
inline constexpr std::string_view kHeaderDetail = "painpoint.detail";  // human-readable
inline constexpr std::string_view kHeaderTopic = "painpoint.source.topic";
inline constexpr std::string_view kHeaderPartition = "painpoint.source.partition";  // decimal
inline constexpr std::string_view kHeaderOffset = "painpoint.source.offset";        // decimal

}  // namespace painpoint::ingest

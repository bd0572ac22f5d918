#include "painpoint/ingest/topics.h"

#include <gtest/gtest.h>

namespace painpoint::ingest {
namespace {

TopicSpec spec_of(std::string_view name, int partitions) {
  for (auto& spec : painpoint_topics(partitions, -1)) {
    if (spec.name == name) return spec;
  }
  ADD_FAILURE() << "no spec for " << name;
  return {};
}

TEST(TopicsTest, SpecsCompactSummariesAndKeepDeadLettersLong) {
  const TopicSpec summaries = spec_of(kTopicSummaries, 8);
  EXPECT_EQ(summaries.configs.at("cleanup.policy"), "compact");
  EXPECT_EQ(summaries.replication_factor, -1);
  EXPECT_EQ(spec_of(kTopicDeadletter, 8).configs.at("retention.ms"), "2592000000");
  EXPECT_EQ(spec_of(kTopicByProduct, 8).partitions, 8);
}

TEST(TopicsTest, RepartitionTopicMustHaveExactlyTheWantedPartitions) {
  const TopicSpec by_product = spec_of(kTopicByProduct, 16);
  EXPECT_TRUE(topic_mismatches(by_product, 16, {}).empty());
  const auto mismatches = topic_mismatches(by_product, 12, {});
  ASSERT_EQ(mismatches.size(), 1U);
  EXPECT_EQ(mismatches[0].rfind("12 partitions, expected 16", 0), 0U) << mismatches[0];
  // Input topics are partitioned as their producers like.
  EXPECT_TRUE(topic_mismatches(spec_of(kTopicSupport, 16), 3, {}).empty());
}

TEST(TopicsTest, ConfigsMustMatchAndRetentionMayBeLonger) {
  const TopicSpec summaries = spec_of(kTopicSummaries, 4);
  EXPECT_TRUE(topic_mismatches(summaries, 4, {{"cleanup.policy", "compact"}}).empty());
  EXPECT_EQ(topic_mismatches(summaries, 4, {{"cleanup.policy", "delete"}}),
            std::vector<std::string>{"cleanup.policy is delete, expected compact"});
  EXPECT_EQ(topic_mismatches(summaries, 4, {{"cleanup.policy", "compact,delete"}}).size(), 1U);
  EXPECT_EQ(topic_mismatches(summaries, 4, {}),
            std::vector<std::string>{"cleanup.policy is (unset), expected compact"});

  const TopicSpec deadletter = spec_of(kTopicDeadletter, 4);
  EXPECT_TRUE(topic_mismatches(deadletter, 4, {{"retention.ms", "-1"}}).empty());
  EXPECT_TRUE(topic_mismatches(deadletter, 4, {{"retention.ms", "5000000000"}}).empty());
  EXPECT_EQ(topic_mismatches(deadletter, 4, {{"retention.ms", "604800000"}}),
            std::vector<std::string>{"retention.ms is 604800000, expected 2592000000"});
}

TEST(TopicsTest, ChangelogIsCompactedPartitionForPartition) {
  const TopicSpec changelog = spec_of(kTopicChangelog, 12);
  EXPECT_EQ(changelog.configs.at("cleanup.policy"), "compact");
  EXPECT_EQ(changelog.configs.at("min.compaction.lag.ms"), "3600000");
  const TopicConfigs fits = {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "7200000"}};
  EXPECT_TRUE(topic_mismatches(changelog, 12, fits).empty());
  const auto mismatches = topic_mismatches(
      changelog, 16, {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "0"}});
  ASSERT_EQ(mismatches.size(), 2U);
  EXPECT_EQ(mismatches[0].rfind("16 partitions, expected 12", 0), 0U) << mismatches[0];
  EXPECT_EQ(mismatches[1], "min.compaction.lag.ms is 0, expected 3600000");
}

}  // namespace
}  // namespace painpoint::ingest

#include "config_file.h"

#include <gtest/gtest.h>

#include <sstream>

namespace painpoint::service {
namespace {

ConfigLoadResult parse(const std::string& text) {
  std::istringstream in(text);
  return parse_service_config(in);
}

TEST(ConfigFileTest, EmptyFileGivesTheDefaults) {
  auto result = parse("# nothing but a comment\n\n   \n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const ServiceConfig defaults;
  EXPECT_EQ(result.config->validation.max_text_bytes, defaults.validation.max_text_bytes);
  EXPECT_EQ(result.config->cluster.join_threshold, defaults.cluster.join_threshold);
}

TEST(ConfigFileTest, SetsValidationAndClusterKeys) {
  auto result = parse(
      "validation.max_text_bytes = 2048  # smaller texts\n"
      "validation.max_future_skew_hours=2\n"
      "cluster.join_threshold = 0.5\n"
      "cluster.min_support = 7\n"
      "publisher.summary_interval_ms = 250\n"
      "aggregator.checkpoint_events = 5000\n"
      "aggregator.checkpoint_interval_ms = 1500\n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->checkpoint_events, 5000U);
  EXPECT_EQ(result.config->checkpoint_interval, std::chrono::milliseconds(1500));
  EXPECT_EQ(result.config->validation.max_text_bytes, 2048U);
  EXPECT_EQ(result.config->validation.max_future_skew, std::chrono::hours(2));
  EXPECT_DOUBLE_EQ(result.config->cluster.join_threshold, 0.5);
  EXPECT_EQ(result.config->cluster.min_support, 7U);
  EXPECT_EQ(result.config->summary_interval, std::chrono::milliseconds(250));
}

TEST(ConfigFileTest, ErrorsNameTheLineAndNeverFallBackToDefaults) {
  EXPECT_EQ(parse("\ncluster.treshold = 0.4\n").error, "line 2: unknown key 'cluster.treshold'");
  EXPECT_EQ(parse("validation.max_text_bytes = lots\n").error,
            "line 1: bad value 'lots' for validation.max_text_bytes");
  EXPECT_EQ(parse("validation.max_text_bytes = 12kb\n").error,
            "line 1: bad value '12kb' for validation.max_text_bytes");
  EXPECT_EQ(parse("just words\n").error, "line 1: expected `key = value`");
  EXPECT_FALSE(parse("cluster.min_support = 0\n").config.has_value());
  EXPECT_FALSE(parse("validation.max_future_skew_hours = -1\n").config.has_value());
  EXPECT_FALSE(parse("aggregator.checkpoint_events = 0\n").config.has_value());
}

TEST(ConfigFileTest, DescribedConfigParsesBackToItself) {
  ServiceConfig custom;
  custom.validation.max_text_bytes = 999;
  custom.cluster.join_threshold = 0.25;
  const std::string text = describe_service_config(custom);
  EXPECT_NE(text.find("cluster.join_threshold = 0.25\n"), std::string::npos) << text;
  auto result = parse(text);
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->validation.max_text_bytes, 999U);
  EXPECT_DOUBLE_EQ(result.config->cluster.join_threshold, 0.25);
  EXPECT_EQ(describe_service_config(*result.config), text);
}

}  // namespace
}  // namespace painpoint::service

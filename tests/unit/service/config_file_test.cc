#include "config_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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
      "publisher.summary_interval_ms = 400\n"
      "aggregator.checkpoint_events = 5000\n"
      "aggregator.checkpoint_interval_ms = 1500\n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->checkpoint_events, 5000U);
  EXPECT_EQ(result.config->checkpoint_interval, std::chrono::milliseconds(1500));
  EXPECT_EQ(result.config->validation.max_text_bytes, 2048U);
  EXPECT_EQ(result.config->validation.max_future_skew, std::chrono::hours(2));
  EXPECT_DOUBLE_EQ(result.config->cluster.join_threshold, 0.5);
  EXPECT_EQ(result.config->cluster.min_support, 7U);
  EXPECT_EQ(result.config->summary_interval, std::chrono::milliseconds(400));
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

TEST(ConfigFileTest, TheDefaultClusteringIsSemantic) {
  EXPECT_EQ(ServiceConfig{}.cluster.encoder, aggregator::EncoderMode::kSemantic);
}

TEST(ConfigFileTest, CommandLineSettingsApplyOverTheFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("painpoint-config-set-" + std::to_string(::getpid()) + ".conf");
  {
    std::ofstream out(path);
    out << "cluster.encoder = semantic\ncluster.min_support = 7\n";
  }
  const std::vector<std::string> sets = {"cluster.encoder=static", " cluster.min_support = 9 ",
                                         "aggregator.checkpoint_batches=4"};
  auto result = load_service_config(path, sets);
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->cluster.encoder, aggregator::EncoderMode::kStatic);
  EXPECT_EQ(result.config->cluster.min_support, 9U);
  EXPECT_EQ(result.config->checkpoint_batches, 4U);

  // Without a file the settings apply over the defaults.
  result = load_service_config(std::nullopt, std::vector<std::string>{"cluster.encoder=sparse"});
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->cluster.encoder, aggregator::EncoderMode::kSparse);

  // Errors name the setting, or the file when the file is wrong.
  EXPECT_EQ(load_service_config(path, std::vector<std::string>{"cluster.encoder"}).error,
            "--set cluster.encoder: expected KEY=VALUE");
  EXPECT_EQ(load_service_config(path, std::vector<std::string>{"cluster.encoder=fast"}).error,
            "--set cluster.encoder=fast: bad value 'fast' for cluster.encoder");
  EXPECT_EQ(load_service_config(path, std::vector<std::string>{"encoder=static"}).error,
            "--set encoder=static: unknown key 'encoder'");
  {
    std::ofstream out(path);
    out << "cluster.nope = 1\n";
  }
  EXPECT_EQ(load_service_config(path, sets).error,
            path.string() + ": line 1: unknown key 'cluster.nope'");
  std::filesystem::remove(path);
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

using ingest::ClientRole;

TEST(ConfigFileKafkaTest, RolePropertiesOverrideTheOnesForEveryClient) {
  auto result = parse(
      "kafka.security.protocol = SASL_SSL\n"
      "kafka.sasl.mechanism = SCRAM-SHA-512\n"
      "kafka.socket.timeout.ms = 30000\n"
      "kafka.consumer.socket.timeout.ms = 45000\n"
      "kafka.producer.linger.ms = 50\n"
      "kafka.admin.client.id = ops-admin\n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const auto& settings = result.config->kafka.settings;
  const auto consumer = settings.for_role(ClientRole::kConsumer);
  const auto producer = settings.for_role(ClientRole::kProducer);
  const auto admin = settings.for_role(ClientRole::kAdmin);
  EXPECT_EQ(consumer.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(admin.at("sasl.mechanism"), "SCRAM-SHA-512");
  EXPECT_EQ(consumer.at("socket.timeout.ms"), "45000");
  EXPECT_EQ(producer.at("socket.timeout.ms"), "30000");
  EXPECT_EQ(producer.at("linger.ms"), "50");
  EXPECT_FALSE(consumer.contains("linger.ms"));
  EXPECT_EQ(admin.at("client.id"), "ops-admin");
  EXPECT_FALSE(producer.contains("client.id"));
}

TEST(ConfigFileKafkaTest, PropertiesThePipelineOwnsAreRefusedByName) {
  const auto refused = [](const std::string& line) { return parse(line + "\n").error; };
  EXPECT_EQ(refused("kafka.enable.auto.commit = true"),
            "line 1: kafka.enable.auto.commit is set by Painpoint itself (offsets are committed "
            "only after their events are stored or forwarded)");
  EXPECT_NE(refused("kafka.consumer.isolation.level = read_uncommitted")
                .find("kafka.consumer.isolation.level is set by Painpoint itself"),
            std::string::npos);
  EXPECT_NE(refused("kafka.producer.enable.idempotence = false").find("is set by Painpoint"),
            std::string::npos);
  EXPECT_NE(refused("kafka.acks = 1").find("kafka.acks is set by Painpoint"), std::string::npos);
  EXPECT_NE(refused("kafka.consumer.group.id = mine").find("is set by Painpoint"),
            std::string::npos);
  EXPECT_NE(refused("kafka.bootstrap.servers = b:9092").find("--brokers"), std::string::npos);
  EXPECT_NE(refused("kafka.statistics.interval.ms = 0").find("readiness"), std::string::npos);
  EXPECT_NE(refused("kafka.admin.allow.auto.create.topics = true").find("is set by Painpoint"),
            std::string::npos);
  // Reserved for one role only: the other roles may set it.
  EXPECT_TRUE(parse("kafka.admin.acks = 1\n").config.has_value());
}

TEST(ConfigFileKafkaTest, LibrdkafkaRefusalsNameTheKey) {
  const std::string unknown = parse("\nkafka.ssl.ca.locaton = /etc/ca.pem\n").error;
  EXPECT_EQ(unknown.rfind("line 2: kafka.ssl.ca.locaton: ", 0), 0U) << unknown;
  EXPECT_NE(unknown.find("No such configuration property"), std::string::npos) << unknown;
  const std::string bad = parse("kafka.consumer.security.protocol = tls\n").error;
  EXPECT_EQ(bad.rfind("line 1: kafka.consumer.security.protocol: ", 0), 0U) << bad;
  EXPECT_EQ(parse("kafka.consumer. = 1\n").error,
            "line 1: kafka.consumer.: no librdkafka property named");
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(ConfigFileKafkaTest, GroupInstanceIdSetsTheConsumersStaticMembership) {
  const ScopedEnv env("PAINPOINT_TEST_POD_NAME", "painpoint-2");
  auto from_env = parse("kafka.group_instance_id_env = PAINPOINT_TEST_POD_NAME\n");
  ASSERT_TRUE(from_env.config.has_value()) << from_env.error;
  const auto& settings = from_env.config->kafka.settings;
  EXPECT_EQ(settings.for_role(ClientRole::kConsumer).at("group.instance.id"), "painpoint-2");
  EXPECT_FALSE(settings.for_role(ClientRole::kProducer).contains("group.instance.id"));
  EXPECT_NE(describe_service_config(*from_env.config)
                .find("kafka.group_instance_id_env = PAINPOINT_TEST_POD_NAME\n"),
            std::string::npos);

  auto literal = parse("kafka.group_instance_id = pod-0\n");
  ASSERT_TRUE(literal.config.has_value()) << literal.error;
  EXPECT_EQ(literal.config->kafka.settings.consumer.at("group.instance.id"), "pod-0");
  EXPECT_EQ(parse("kafka.group_instance_id_env = PAINPOINT_TEST_UNSET_POD\n").error,
            "line 1: kafka.group_instance_id_env: environment variable PAINPOINT_TEST_UNSET_POD "
            "is not set");
}

TEST(ConfigFileKafkaTest, SecretsComeFromFilesAndEnvironmentAndArePrintedRedacted) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("painpoint-kafka-keys-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto password_file = dir / "sasl-password";
  std::ofstream(password_file) << "s3cret#file\n";
  const ScopedEnv env("PAINPOINT_TEST_KEY_PASSWORD", "s3cret-env");

  auto result = parse(
      "kafka.sasl.username = painpoint\n"
      "kafka.sasl.password_file = " +
      password_file.string() +
      "\n"
      "kafka.ssl.key.password_env = PAINPOINT_TEST_KEY_PASSWORD\n"
      "kafka.producer.ssl.keystore.password = s3cret-inline\n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  const auto producer = result.config->kafka.settings.for_role(ClientRole::kProducer);
  EXPECT_EQ(producer.at("sasl.password"), "s3cret#file");  // `#` survives, the newline does not
  EXPECT_EQ(producer.at("ssl.key.password"), "s3cret-env");
  EXPECT_EQ(producer.at("ssl.keystore.password"), "s3cret-inline");

  const std::string shown = describe_service_config(*result.config);
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  EXPECT_NE(shown.find("kafka.sasl.username = painpoint\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("kafka.sasl.password_file = " + password_file.string() + "\n"),
            std::string::npos);
  EXPECT_NE(shown.find("kafka.ssl.key.password_env = PAINPOINT_TEST_KEY_PASSWORD\n"),
            std::string::npos);
  EXPECT_NE(shown.find("kafka.producer.ssl.keystore.password = <redacted>\n"), std::string::npos);

  EXPECT_EQ(parse("kafka.sasl.password_env = PAINPOINT_TEST_UNSET_VARIABLE\n").error,
            "line 1: kafka.sasl.password_env: environment variable PAINPOINT_TEST_UNSET_VARIABLE "
            "is not set");
  const auto missing = (dir / "missing").string();
  EXPECT_EQ(parse("kafka.sasl.password_file = " + missing + "\n").error,
            "line 1: kafka.sasl.password_file: cannot read " + missing);
  std::filesystem::remove_all(dir);
}

TEST(ConfigFileKafkaTest, ALaterLineForTheSameKeyWins) {
  auto result = parse("kafka.client.rack = a\nkafka.client.rack = b\n");
  ASSERT_TRUE(result.config.has_value()) << result.error;
  EXPECT_EQ(result.config->kafka.settings.all.at("client.rack"), "b");
  const std::string shown = describe_service_config(*result.config);
  EXPECT_EQ(shown.find("kafka.client.rack = a"), std::string::npos);
  EXPECT_NE(shown.find("kafka.client.rack = b\n"), std::string::npos);
}

}  // namespace
}  // namespace painpoint::service

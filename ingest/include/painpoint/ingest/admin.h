#pragma once

// Kafka cluster administration: topics, their configs, metadata, consumer groups; kafka_types.h
// has the common rules.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "painpoint/ingest/kafka_types.h"
#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

struct TopicSpec {
  std::string name;
  int partitions = 16;
  int replication_factor = 1;
  std::map<std::string, std::string> configs;  // e.g. {"cleanup.policy", "compact"}
  // An existing topic with another partition count does not fit (topic_mismatches): its
  // partitions each own state.
  bool exact_partitions = false;
};

struct TopicMetadata {
  std::string name;
  int partitions = 0;
  Status error;  // per-topic error reported by the broker
};

struct BrokerMetadata {
  std::int32_t id = -1;
  std::string host;
  int port = 0;
};

struct ClusterMetadata {
  std::vector<BrokerMetadata> brokers;
  std::vector<TopicMetadata> topics;
};

// A topic's configuration as the broker describes it (every entry, defaults included).
using TopicConfigs = std::map<std::string, std::string>;

// One member of a consumer group as the group coordinator describes it (DescribeGroups).
struct GroupMember {
  std::string member_id;
  std::string client_id;
  std::string group_instance_id;  // empty without static membership
  std::string host;               // the member's address as the coordinator saw it
  std::vector<TopicPartition> assignment;
};

struct GroupDescription {
  std::string group_id;
  std::string state;  // "Stable", "PreparingRebalance", "Empty", ...
  std::string assignor;
  std::vector<GroupMember> members;
};

struct AdminConfig {
  std::string brokers;
  std::string client_id = "painpoint-admin";
  std::map<std::string, std::string> extra;
};

// Cluster administration. Thread-safe; every call blocks up to its timeout.
class Admin {
 public:
  [[nodiscard]] static Result<Admin> create(const AdminConfig& config);
  Admin(Admin&&) noexcept;
  Admin& operator=(Admin&&) noexcept;
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;
  ~Admin();

  // Creates the topics that do not exist yet; existing ones are left as they are (not an error).
  Status create_topics(std::span<const TopicSpec> topics, std::chrono::milliseconds timeout);
  // Whether the cluster names a controller among its brokers: without one (librdkafka's mock
  // cluster, the embedded broker) CreateTopics and DescribeConfigs wait until they time out.
  Result<bool> has_controller(std::chrono::milliseconds timeout);
  // The configuration of each of `topics` (DescribeConfigs); an error if any is missing.
  Result<std::map<std::string, TopicConfigs>> describe_topic_configs(
      std::span<const std::string> topics, std::chrono::milliseconds timeout);
  // All topics when `topic` is empty.
  Result<ClusterMetadata> metadata(std::chrono::milliseconds timeout,
                                   const std::string& topic = {});
  Result<std::string> cluster_id(std::chrono::milliseconds timeout) const;
  // The members of consumer group `group_id` and the partitions each is assigned. The embedded
  // broker (librdkafka's mock cluster) cannot describe groups: kUnsupported.
  Result<GroupDescription> describe_group(const std::string& group_id,
                                          std::chrono::milliseconds timeout);

  struct Impl;

 private:
  explicit Admin(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::ingest

// Routing between instances: Java-compatible key partitioning, the address carried in client ids,
// partition owners from a group description, and DescribeGroups on a broker. The group test runs
// on the embedded broker (which cannot describe groups) by default and on Apache Kafka when
// PAINPOINT_ROUTING_TEST_BROKERS names one (tests/kafka/routing_real_test.py).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"
#include "painpoint/ingest/partitioner.h"
#include "painpoint/store/store.h"
#include "product_partitions.h"
#include "routing/partition_owners.h"

namespace painpoint::service {
namespace {

using namespace std::chrono_literals;
using ingest::GroupDescription;
using ingest::GroupMember;

// Kafka's own test vectors for Utils.murmur2 (clients' UtilsTest); the partition is the hash's
// positive part modulo the partition count, as in the Java clients' default partitioner.
TEST(PartitionForKey, MatchesTheJavaClients) {
  const std::map<std::string, std::int32_t> murmur2 = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& [key, hash] : murmur2) {
    for (std::int32_t partitions : {1, 7, 8, 128}) {
      const auto expected = static_cast<std::int32_t>(
          (static_cast<std::uint32_t>(hash) & 0x7fffffffU) % static_cast<std::uint32_t>(partitions));
      EXPECT_EQ(ingest::partition_for_key(key, partitions), expected) << key << " / " << partitions;
    }
  }
}

TEST(PartitionForKey, EmptyKeyIsHashedNotRandom) {
  const std::int32_t first = ingest::partition_for_key({}, 128);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ingest::partition_for_key("", 128), first);
}

// A commit's products: an event's partition is the one it was consumed from (also for later
// batches without its events), any other product's the murmur2 partition over the recorded
// count; a product with neither leaves the batch naming no partition.
TEST(ProductPartitions, EventsGiveTheirInputPartitionOthersAreHashed) {
  auto stored_event = [](const std::string& product, std::int32_t partition) {
    v1::StoredEvent e;
    e.mutable_event()->set_product_id(product);
    e.set_input_partition(partition);
    return e;
  };
  store::CommitBatch batch;
  batch.events = {stored_event("app", 7)};
  batch.aggregator_state = {{"agg/search/m", "m", "search"}};
  batch.memberships = {{"e-1", "app", "pp-1"}, {"e-2", "web", "pp-2"}};
  batch.summaries.emplace_back();
  batch.summaries.back().set_product_id("billing");
  batch.outbox.emplace_back();
  batch.outbox.back().set_product_id("mobile");

  ProductPartitions unrecorded(std::nullopt);
  unrecorded.learn(stored_event("web", 2));
  unrecorded.assign(&batch);
  EXPECT_TRUE(batch.product_partitions.empty()) << "billing, mobile, search: no rule applies";
  store::CommitBatch learned_only;
  learned_only.memberships = {{"e-3", "app", "pp-1"}, {"e-4", "web", "pp-2"}};
  unrecorded.assign(&learned_only);
  const std::map<std::string, std::int32_t, std::less<>> learned = {{"app", 7}, {"web", 2}};
  EXPECT_EQ(learned_only.product_partitions, learned) << "app was learned from the first batch";

  ProductPartitions recorded(16);
  recorded.assign(&batch);
  const std::map<std::string, std::int32_t, std::less<>> expected = {
      {"app", 7},
      {"billing", ingest::partition_for_key("billing", 16)},
      {"mobile", ingest::partition_for_key("mobile", 16)},
      {"search", ingest::partition_for_key("search", 16)},
      {"web", ingest::partition_for_key("web", 16)}};
  EXPECT_EQ(batch.product_partitions, expected);
}

// The stage and replay rebuild take the count serve recorded in the store; without one, a product
// not seen in an event has no partition until the count is recorded (on a cluster, serve records
// it after the stage started).
TEST(ProductPartitions, FromStoreHashesOverTheRecordedCount) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "product-partitions-from-store";
  std::filesystem::remove_all(dir);
  std::unique_ptr<store::Store> store;
  ASSERT_TRUE(store::Store::open(dir, {}, &store).ok());
  ProductPartitions partitions(std::nullopt);
  ASSERT_TRUE(ProductPartitions::from_store(*store, &partitions).ok());
  auto partitions_of_billing = [&partitions] {
    store::CommitBatch batch;
    batch.summaries.emplace_back();
    batch.summaries.back().set_product_id("billing");
    partitions.assign(&batch);
    return batch.product_partitions;
  };
  EXPECT_TRUE(partitions_of_billing().empty());
  ASSERT_TRUE(store->record_input_partitions(12).ok());
  const std::map<std::string, std::int32_t, std::less<>> hashed = {
      {"billing", ingest::partition_for_key("billing", 12)}};
  EXPECT_EQ(partitions_of_billing(), hashed);
  store.reset();
  std::filesystem::remove_all(dir);
}

TEST(ClientIdAddress, RoundTripsAndRejectsOthers) {
  EXPECT_EQ(client_id_with_address("10.0.0.7:8080"), "painpoint@10.0.0.7:8080");
  EXPECT_EQ(address_from_client_id("painpoint@10.0.0.7:8080"), "10.0.0.7:8080");
  EXPECT_EQ(address_from_client_id("painpoint@[::1]:9000"), "[::1]:9000");
  for (const char* other : {"painpoint", "painpoint@", "painpoint@host", "painpoint@host:",
                            "painpoint@:80", "rdkafka", "other@host:80"}) {
    EXPECT_EQ(address_from_client_id(other), std::nullopt) << other;
  }
}

TEST(ClientIdAddress, AdvertisedAddressDefaultsToTheBoundOne) {
  EXPECT_EQ(advertised_address("127.0.0.1", 8080, ""), "127.0.0.1:8080");
  EXPECT_EQ(advertised_address("0.0.0.0", 8080, "painpoint-1.painpoint:8080"),
            "painpoint-1.painpoint:8080");
  EXPECT_EQ(advertised_address("::1", 9000, ""), "[::1]:9000");
  // Binding every interface: the host name, which other machines can resolve.
  for (const char* any : {"0.0.0.0", "::", ""}) {
    const std::string address = advertised_address(any, 8080, "");
    EXPECT_TRUE(address.ends_with(":8080")) << address;
    EXPECT_FALSE(address.starts_with("0.0.0.0") || address.starts_with("::")) << address;
    EXPECT_EQ(address_from_client_id(client_id_with_address(address)), address);
  }
}

GroupDescription two_members() {
  GroupDescription group{"painpoint-aggregator", "Stable", "cooperative-sticky", {}};
  group.members.push_back(GroupMember{"m-1", "painpoint@10.0.0.1:8080", "pod-0", "/10.0.0.1",
                                      {{"in", 0}, {"in", 2}, {"other", 1}}});
  group.members.push_back(
      GroupMember{"m-2", "painpoint@10.0.0.2:8080", "", "/10.0.0.2", {{"in", 1}}});
  group.members.push_back(GroupMember{"m-3", "rdkafka", "", "/10.0.0.3", {{"other", 0}}});
  return group;
}

TEST(PartitionOwners, MapsPartitionsOfOneTopicToMembers) {
  auto owners = PartitionOwners::from_group(two_members(), "in", 4);
  ASSERT_TRUE(owners.ok()) << owners.status().to_string();
  EXPECT_EQ(owners->partition_count(), 4);
  EXPECT_EQ(owners->group_state(), "Stable");
  ASSERT_NE(owners->owner_of_partition(0), nullptr);
  EXPECT_EQ(owners->owner_of_partition(0)->http_address, "10.0.0.1:8080");
  EXPECT_EQ(owners->owner_of_partition(0)->instance_id, "pod-0");
  EXPECT_EQ(owners->owner_of_partition(1)->member_id, "m-2");
  EXPECT_EQ(owners->owner_of_partition(2)->http_address, "10.0.0.1:8080");
  EXPECT_EQ(owners->owner_of_partition(3), nullptr);  // unassigned: a rebalance is under way
  EXPECT_EQ(owners->owner_of_partition(4), nullptr);
  EXPECT_EQ(owners->owner_of_partition(-1), nullptr);
  EXPECT_EQ(owners->addresses(), (std::vector<std::string>{"10.0.0.1:8080", "10.0.0.2:8080"}));
  for (const char* product : {"billing", "mobile-app", "web-dashboard", "product-007"}) {
    const std::int32_t partition = ingest::partition_for_key(product, 4);
    EXPECT_EQ(owners->partition_of_product(product), partition);
    EXPECT_EQ(owners->owner_of_product(product), owners->owner_of_partition(partition));
  }
}

TEST(PartitionOwners, RefusesTwoOwnersOfOnePartition) {
  GroupDescription group = two_members();
  group.members[1].assignment.push_back({"in", 2});
  auto owners = PartitionOwners::from_group(group, "in", 4);
  ASSERT_FALSE(owners.ok());
  EXPECT_EQ(owners.status().code, ingest::KafkaErrc::kInvalidArgument);
  EXPECT_NE(owners.status().message.find("partition 2"), std::string::npos);
  EXPECT_FALSE(PartitionOwners::from_group(two_members(), "in", 0).ok());
}

// Two consumers join one group on a real broker; DescribeGroups must name, for every partition,
// the consumer that was assigned it, with the address from its client id.
class GroupRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* brokers = std::getenv("PAINPOINT_ROUTING_TEST_BROKERS")) {
      brokers_ = brokers;
    } else {
      ingest::EmbeddedBrokerConfig config;
      config.create_painpoint_topics = false;
      auto broker = ingest::EmbeddedBroker::start(config);
      ASSERT_TRUE(broker.ok()) << broker.status().to_string();
      broker_ = std::move(broker).value();
      brokers_ = broker_->bootstrap();
    }
    ingest::AdminConfig admin_config;
    admin_config.brokers = brokers_;
    auto admin = ingest::Admin::create(admin_config);
    ASSERT_TRUE(admin.ok()) << admin.status().to_string();
    admin_ = std::make_unique<ingest::Admin>(std::move(admin).value());
  }

  void make_topic(const std::string& name, int partitions) {
    if (broker_) {
      ASSERT_TRUE(broker_->create_topic(name, partitions).ok());
      return;
    }
    ingest::TopicSpec spec;
    spec.name = name;
    spec.partitions = partitions;
    ASSERT_TRUE(admin_->create_topics({&spec, 1}, 30s).ok());
  }

  ingest::Consumer join(const std::string& group, const std::string& topic,
                        const std::string& address) {
    ingest::ConsumerConfig config;
    config.brokers = brokers_;
    config.group_id = group;
    config.client_id = client_id_with_address(address);
    config.session_timeout = 10'000ms;
    auto consumer = ingest::Consumer::create(config);
    EXPECT_TRUE(consumer.ok()) << consumer.status().to_string();
    const std::vector<std::string> topics{topic};
    EXPECT_TRUE(consumer->subscribe(topics).ok());
    return std::move(consumer).value();
  }

  static std::set<std::int32_t> assigned(const ingest::Consumer& consumer) {
    std::set<std::int32_t> out;
    auto partitions = consumer.assignment();
    if (partitions.ok()) {
      for (const auto& tp : *partitions) out.insert(tp.partition);
    }
    return out;
  }

  std::unique_ptr<ingest::EmbeddedBroker> broker_;
  std::unique_ptr<ingest::Admin> admin_;
  std::string brokers_;
};

TEST_F(GroupRoutingTest, DescribeGroupNamesEachPartitionsOwner) {
  const std::string topic = "routing-test.owners";
  const std::string group = "routing-test-group";
  make_topic(topic, 4);
  if (broker_) {
    // The embedded broker's mock cluster has no DescribeGroups: scale-out needs a real Kafka.
    // Asked before any consumer joins, so that finding out costs no group rebalance; on 127.0.0.1
    // an answer takes milliseconds, so a short wait without one also means "cannot".
    OwnerDirectory probe(*admin_, {group, topic, 4, 0ms, 2'000ms});
    auto owners = probe.current();
    ASSERT_FALSE(owners.ok());
    EXPECT_TRUE(owners.status().code == ingest::KafkaErrc::kUnsupported ||
                owners.status().code == ingest::KafkaErrc::kTimedOut)
        << owners.status().to_string();
    GTEST_SKIP() << "the embedded broker cannot describe groups: " << owners.status().to_string();
  }
  ingest::Consumer first = join(group, topic, "127.0.0.1:1111");
  ingest::Consumer second = join(group, topic, "127.0.0.1:2222");
  // Both poll until the group is stable with every partition assigned.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         !(assigned(first).size() + assigned(second).size() == 4 && !assigned(first).empty() &&
           !assigned(second).empty())) {
    first.poll_batch(10, 100ms);
    second.poll_batch(10, 100ms);
  }
  OwnerDirectory directory(*admin_, {group, topic, 4, 0ms, 10'000ms});
  auto owners = directory.current();
  ASSERT_EQ(assigned(first).size() + assigned(second).size(), 4u);
  // The description can trail the consumers' view by a moment while the group settles.
  for (int attempt = 0; attempt < 50; ++attempt) {
    owners = directory.current();
    ASSERT_TRUE(owners.ok()) << owners.status().to_string();
    if ((*owners)->group_state() == "Stable" && (*owners)->addresses().size() == 2) break;
    std::this_thread::sleep_for(200ms);
    first.poll_batch(10, 0ms);
    second.poll_batch(10, 0ms);
  }
  for (std::int32_t p = 0; p < 4; ++p) {
    const PartitionOwner* owner = (*owners)->owner_of_partition(p);
    ASSERT_NE(owner, nullptr) << "partition " << p;
    const std::string expected = assigned(first).contains(p) ? "127.0.0.1:1111" : "127.0.0.1:2222";
    EXPECT_EQ(owner->http_address, expected) << "partition " << p;
  }

  // The second leaves: after the rebalance every partition is the first's.
  ASSERT_TRUE(second.close(10s).ok());
  const auto rebalanced = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < rebalanced && assigned(first).size() != 4) {
    first.poll_batch(10, 100ms);
  }
  ASSERT_EQ(assigned(first).size(), 4u);
  directory.invalidate();
  for (int attempt = 0; attempt < 50; ++attempt) {
    owners = directory.current();
    ASSERT_TRUE(owners.ok()) << owners.status().to_string();
    if ((*owners)->addresses() == std::vector<std::string>{"127.0.0.1:1111"}) break;
    std::this_thread::sleep_for(200ms);
    first.poll_batch(10, 0ms);
    directory.invalidate();
  }
  EXPECT_EQ((*owners)->addresses(), std::vector<std::string>{"127.0.0.1:1111"});
  for (std::int32_t p = 0; p < 4; ++p) {
    ASSERT_NE((*owners)->owner_of_partition(p), nullptr);
    EXPECT_EQ((*owners)->owner_of_partition(p)->http_address, "127.0.0.1:1111");
  }
}

}  // namespace
}  // namespace painpoint::service

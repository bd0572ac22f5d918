// The group consumer in a group of two: cooperative (incremental) rebalances reported to a
// RebalanceListener, pause/resume/seek of single partitions, and static membership. On the
// embedded broker by default; on the broker named by PAINPOINT_INGEST_TEST_BROKERS (Apache Kafka:
// tests/kafka/consumer_group_real_test.py) when set. Deadlines only guard against hangs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"

namespace painpoint::ingest {

// Names partitions in failure messages (gtest finds it by argument-dependent lookup).
void PrintTo(const TopicPartition& tp, std::ostream* os) {
  *os << tp.topic << "[" << tp.partition << "]";
}

namespace {

using namespace std::chrono_literals;
constexpr auto kDeadline = 25s;
constexpr int kPartitions = 4;

using PartitionSet = std::set<TopicPartition>;

// Every rebalance callback one member received, in order.
class RecordingListener : public RebalanceListener {
 public:
  struct Event {
    bool assigned = false;  // false: revoked
    PartitionSet partitions;
    bool lost = false;
    RebalanceProtocol protocol = RebalanceProtocol::kEager;
  };

  std::vector<StartOffset> on_assigned(std::span<const TopicPartition> partitions,
                                       RebalanceProtocol protocol) override {
    events.push_back({true, {partitions.begin(), partitions.end()}, false, protocol});
    owned.insert(partitions.begin(), partitions.end());
    return std::vector<StartOffset>(partitions.size(), StartOffset::earliest());
  }
  void on_revoked(std::span<const TopicPartition> partitions, bool lost,
                  RebalanceProtocol protocol) override {
    events.push_back({false, {partitions.begin(), partitions.end()}, lost, protocol});
    for (const auto& tp : partitions) owned.erase(tp);
  }

  std::size_t revocations() const {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(), [](const Event& e) { return !e.assigned; }));
  }

  std::vector<Event> events;
  PartitionSet owned;
};

// One group member: its consumer, its listener and what it received per partition.
struct Member {
  std::unique_ptr<RecordingListener> listener = std::make_unique<RecordingListener>();
  std::optional<Consumer> consumer;
  std::map<std::int32_t, std::vector<std::int64_t>> offsets;  // partition → offsets received

  void poll(std::chrono::milliseconds timeout = 100ms) {
    auto batch = consumer->poll_batch(500, timeout);
    for (const auto& m : batch) offsets[m.partition()].push_back(m.offset());
  }
};

class ConsumerGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* brokers = std::getenv("PAINPOINT_INGEST_TEST_BROKERS")) {
      brokers_ = brokers;
      real_kafka_ = true;
    } else {
      EmbeddedBrokerConfig config;
      config.create_painpoint_topics = false;
      auto broker = EmbeddedBroker::start(config);
      ASSERT_TRUE(broker.ok()) << broker.status().to_string();
      broker_ = std::move(broker).value();
      brokers_ = broker_->bootstrap();
    }
    topic_ = std::string("group-test.") +
             ::testing::UnitTest::GetInstance()->current_test_info()->name();
    group_ = topic_ + ".group";
    ASSERT_NO_FATAL_FAILURE(create_topic());
    ProducerConfig config;
    config.brokers = brokers_;
    config.linger = 5ms;
    auto producer = Producer::create(config, [this](const DeliveryReport& r) {
      if (r.status.ok()) key_of_partition_.emplace(r.partition, "key-" + std::to_string(r.tag));
    });
    ASSERT_TRUE(producer.ok()) << producer.status().to_string();
    producer_.emplace(std::move(producer).value());
    // Keys are partitioned by murmur2: learn one key per partition from the delivery reports.
    for (std::uint64_t i = 0; i < 64; ++i) {
      ASSERT_TRUE(producer_->produce(topic_, "key-" + std::to_string(i), "warm-up", {}, i).ok());
    }
    ASSERT_TRUE(producer_->flush(kDeadline).ok());
    ASSERT_EQ(key_of_partition_.size(), static_cast<std::size_t>(kPartitions));
  }

  void create_topic() {
    if (broker_) {
      ASSERT_TRUE(broker_->create_topic(topic_, kPartitions).ok());
      return;
    }
    AdminConfig config;
    config.brokers = brokers_;
    auto admin = Admin::create(config);
    ASSERT_TRUE(admin.ok()) << admin.status().to_string();
    const std::vector<TopicSpec> specs{{topic_, kPartitions, 1, {}, false}};
    ASSERT_TRUE(admin->create_topics(specs, kDeadline).ok());
  }

  void produce(std::int32_t partition, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(producer_->produce(topic_, key_of_partition_.at(partition), "m").ok());
    }
    ASSERT_TRUE(producer_->flush(kDeadline).ok());
  }

  void join(Member& member, const std::string& instance_id = {}) {
    ConsumerConfig config;
    config.brokers = brokers_;
    config.group_id = group_;
    config.group_instance_id = instance_id;
    config.session_timeout = 10s;
    // Members learn of a rebalance from a heartbeat answer: librdkafka's 3 s default made each
    // cooperative rebalance (two rounds) take about 6 s.
    config.extra["heartbeat.interval.ms"] = "300";
    auto consumer = Consumer::create(config);
    ASSERT_TRUE(consumer.ok()) << consumer.status().to_string();
    member.consumer.emplace(std::move(consumer).value());
    const std::vector<std::string> topics{topic_};
    ASSERT_TRUE(member.consumer->subscribe(topics, *member.listener).ok());
  }

  // Polls every member until `done` holds (then true) or the deadline passed.
  template <class Done>
  static bool poll_until(std::initializer_list<Member*> members, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      for (Member* m : members) m->poll();
      if (done()) return true;
    }
    return false;
  }

  // Polls every member for `duration`.
  static void poll_for(std::initializer_list<Member*> members, std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      for (Member* m : members) m->poll();
    }
  }

  // Both members own partitions, and together all of them, each once.
  static bool split_between(const Member& a, const Member& b) {
    PartitionSet all = a.listener->owned;
    all.insert(b.listener->owned.begin(), b.listener->owned.end());
    return !a.listener->owned.empty() && !b.listener->owned.empty() &&
           all.size() == static_cast<std::size_t>(kPartitions) &&
           a.listener->owned.size() + b.listener->owned.size() == all.size();
  }

  TopicPartition partition(std::int32_t p) const { return {topic_, p}; }

  std::string brokers_;
  bool real_kafka_ = false;
  std::unique_ptr<EmbeddedBroker> broker_;
  std::string topic_;
  std::string group_;
  std::optional<Producer> producer_;
  std::map<std::int32_t, std::string> key_of_partition_;
};

TEST_F(ConsumerGroupTest, SecondMemberTakesPartitionsIncrementally) {
  // librdkafka 2.12's mock cluster runs the first round (the first member revokes what it has
  // to give up) but the second member got no partitions within the deadline.
  if (!real_kafka_) GTEST_SKIP() << "the embedded broker does not finish a cooperative rebalance";
  Member a;
  Member b;
  ASSERT_NO_FATAL_FAILURE(join(a));
  ASSERT_TRUE(poll_until({&a}, [&] {
    return a.listener->owned.size() == static_cast<std::size_t>(kPartitions) &&
           a.offsets.size() == static_cast<std::size_t>(kPartitions);
  }));
  ASSERT_EQ(a.listener->events.size(), 1u);
  EXPECT_EQ(a.listener->events[0].protocol, RebalanceProtocol::kCooperative);

  ASSERT_NO_FATAL_FAILURE(join(b));
  ASSERT_TRUE(poll_until({&a, &b}, [&] { return split_between(a, b); }));

  // The first member was told exactly which partitions it lost, and nothing about the others.
  PartitionSet revoked;
  for (const auto& e : a.listener->events) {
    if (e.assigned) continue;
    EXPECT_FALSE(e.lost);
    EXPECT_EQ(e.protocol, RebalanceProtocol::kCooperative);
    revoked.insert(e.partitions.begin(), e.partitions.end());
  }
  EXPECT_EQ(revoked, b.listener->owned);
  for (const auto& e : a.listener->events) {
    if (!e.assigned) {
      EXPECT_LT(e.partitions.size(), static_cast<std::size_t>(kPartitions));
    }
  }

  // Each member goes on consuming its own partitions, the first from where it was.
  std::map<std::int32_t, std::size_t> a_before;
  for (const auto& [p, offsets] : a.offsets) a_before[p] = offsets.size();
  for (std::int32_t p = 0; p < kPartitions; ++p) ASSERT_NO_FATAL_FAILURE(produce(p, 3));
  ASSERT_TRUE(poll_until({&a, &b}, [&] {
    for (const auto& tp : a.listener->owned) {
      if (a.offsets[tp.partition].size() < a_before[tp.partition] + 3) return false;
    }
    for (const auto& tp : b.listener->owned) {
      if (b.offsets[tp.partition].empty()) return false;
    }
    return true;
  }));
  for (const auto& tp : a.listener->owned) {
    // No full revoke: the kept partitions were not restarted from the beginning.
    EXPECT_EQ(a.offsets[tp.partition].size(), a_before[tp.partition] + 3) << tp.partition;
  }
  for (const auto& [p, offsets] : b.offsets) {
    EXPECT_TRUE(b.listener->owned.contains(partition(p))) << p;
  }
  EXPECT_TRUE(b.consumer->close().ok());
  EXPECT_TRUE(a.consumer->close().ok());
}

TEST_F(ConsumerGroupTest, PauseStopsOnePartitionResumeAndSeekRestartIt) {
  Member a;
  ASSERT_NO_FATAL_FAILURE(join(a));
  ASSERT_TRUE(poll_until({&a}, [&] { return a.offsets.size() == std::size_t{kPartitions}; }));
  const auto warm_up = a.offsets;

  ASSERT_TRUE(a.consumer->pause(std::vector{partition(0)}).ok());
  ASSERT_NO_FATAL_FAILURE(produce(0, 5));
  ASSERT_NO_FATAL_FAILURE(produce(1, 5));
  ASSERT_TRUE(poll_until({&a}, [&] { return a.offsets[1].size() == warm_up.at(1).size() + 5; }));
  // Ten fetch waits (fetch_wait_max): a fetch of partition 0 would have come back by then.
  poll_for({&a}, 1s);
  EXPECT_EQ(a.offsets[0].size(), warm_up.at(0).size());

  ASSERT_TRUE(a.consumer->resume(std::vector{partition(0)}).ok());
  ASSERT_TRUE(poll_until({&a}, [&] { return a.offsets[0].size() == warm_up.at(0).size() + 5; }));

  // Back to the start of partition 0: everything on it comes again, from offset 0.
  a.offsets[0].clear();
  ASSERT_TRUE(a.consumer->seek(partition(0), 0, kDeadline).ok());
  ASSERT_TRUE(poll_until({&a}, [&] { return a.offsets[0].size() == warm_up.at(0).size() + 5; }));
  EXPECT_EQ(a.offsets[0].front(), 0);
  EXPECT_EQ(a.listener->revocations(), 0u);
  EXPECT_TRUE(a.consumer->close().ok());
}

TEST_F(ConsumerGroupTest, StaticMemberRejoinsWithItsPartitions) {
  if (!real_kafka_) GTEST_SKIP() << "static membership is checked on Apache Kafka";
  Member a;
  Member b;
  ASSERT_NO_FATAL_FAILURE(join(a, "member-a"));
  ASSERT_TRUE(
      poll_until({&a}, [&] { return a.listener->owned.size() == std::size_t{kPartitions}; }));
  ASSERT_NO_FATAL_FAILURE(join(b, "member-b"));
  ASSERT_TRUE(poll_until({&a, &b}, [&] { return split_between(a, b); }));
  // The first member may not have taken the rebalance's last (empty) assignment yet.
  poll_for({&a, &b}, 1s);
  const PartitionSet a_owned = a.listener->owned;
  const PartitionSet b_owned = b.listener->owned;
  const std::size_t a_revocations = a.listener->revocations();

  // A static member leaves no group on close: the coordinator keeps its partitions for it until
  // the session times out (10 s here). A member that had left would have its partitions handed
  // to the other one within a few heartbeats (300 ms each), and taken back when it rejoins.
  EXPECT_TRUE(b.consumer->close().ok());
  b.consumer.reset();
  const std::size_t a_events = a.listener->events.size();
  poll_for({&a}, 1500ms);
  EXPECT_EQ(a.listener->events.size(), a_events);
  EXPECT_EQ(a.listener->owned, a_owned);
  Member b_again;
  ASSERT_NO_FATAL_FAILURE(join(b_again, "member-b"));
  ASSERT_TRUE(poll_until({&a, &b_again}, [&] { return b_again.listener->owned == b_owned; }));
  // The other member keeps polling a little longer: a rebalance would revoke something now.
  poll_for({&a, &b_again}, 1s);
  EXPECT_EQ(a.listener->revocations(), a_revocations);
  EXPECT_EQ(a.listener->owned, a_owned);
  EXPECT_EQ(b_again.listener->owned, b_owned);
  EXPECT_TRUE(b_again.consumer->close().ok());
  EXPECT_TRUE(a.consumer->close().ok());
}

}  // namespace
}  // namespace painpoint::ingest

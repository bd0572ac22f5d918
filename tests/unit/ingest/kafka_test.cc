// Kafka clients, the embedded broker, produce_jsonl and IngestWorker against an in-process
// EmbeddedBroker on 127.0.0.1. Deadlines are generous and only guard against hangs.

#include "painpoint/ingest/kafka.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/produce.h"
#include "painpoint/ingest/topics.h"
#include "painpoint/ingest/worker.h"

namespace painpoint::ingest {
namespace {

using namespace std::chrono_literals;
constexpr auto kDeadline = 25s;

struct Received {
  std::string topic;
  std::int32_t partition = -1;
  std::int64_t offset = -1;
  std::optional<std::string> key;
  std::string payload;
  std::map<std::string, std::string> headers;
};

// A loopback port that is free right now (bound, read back, released). Call it inside
// ASSERT_NO_FATAL_FAILURE.
void free_loopback_port(std::uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  auto* addr = static_cast<sockaddr*>(static_cast<void*>(&sin));
  const bool bound = ::bind(fd, addr, sizeof sin) == 0 && ::getsockname(fd, addr, &len) == 0;
  ::close(fd);
  ASSERT_TRUE(bound);
  *port = ntohs(sin.sin_port);
}

class KafkaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EmbeddedBrokerConfig config;
    config.partitions = 4;
    auto started = EmbeddedBroker::start(config);
    ASSERT_TRUE(started.ok()) << started.status().to_string();
    broker_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
  }

  static Consumer make_consumer(const std::string& group) {
    ConsumerConfig config;
    config.brokers = broker_->bootstrap();
    config.group_id = group;
    auto consumer = Consumer::create(config);
    EXPECT_TRUE(consumer.ok()) << consumer.status().to_string();
    return std::move(consumer).value();
  }

  static Producer make_producer(Producer::DeliveryCallback cb = nullptr) {
    ProducerConfig config;
    config.brokers = broker_->bootstrap();
    config.linger = 5ms;
    auto producer = Producer::create(config, std::move(cb));
    EXPECT_TRUE(producer.ok()) << producer.status().to_string();
    return std::move(producer).value();
  }

  // Polls until `count` messages arrived or the deadline passed; collects resets too.
  static std::vector<Received> consume(Consumer& consumer, std::size_t count,
                                       std::vector<OffsetReset>* resets = nullptr) {
    std::vector<Received> out;
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
      auto batch = consumer.poll_batch(100, 200ms);
      if (resets != nullptr) {
        resets->insert(resets->end(), batch.offset_resets().begin(), batch.offset_resets().end());
      }
      for (const auto& m : batch) {
        Received r{std::string(m.topic()),
                   m.partition(),
                   m.offset(),
                   std::nullopt,
                   std::string(m.payload()),
                   {}};
        if (auto k = m.key()) r.key = std::string(*k);
        for (const auto& [hk, hv] : m.headers()) r.headers[std::string(hk)] = std::string(hv);
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  static EmbeddedBroker* broker_;
};

EmbeddedBroker* KafkaTest::broker_ = nullptr;

EmbeddedBrokerConfig broker_config(std::uint16_t port, bool topics) {
  EmbeddedBrokerConfig config;
  config.port = port;
  config.partitions = 1;
  config.create_painpoint_topics = topics;
  return config;
}

TEST_F(KafkaTest, BrokerHasPainpointTopicsAndClusterId) {
  EXPECT_EQ(broker_->bootstrap(), "127.0.0.1:" + std::to_string(broker_->port()));
  AdminConfig admin_config;
  admin_config.brokers = broker_->bootstrap();
  auto admin = Admin::create(admin_config);
  ASSERT_TRUE(admin.ok()) << admin.status().to_string();
  auto md = admin->metadata(10s);
  ASSERT_TRUE(md.ok()) << md.status().to_string();
  ASSERT_EQ(md->brokers.size(), 1u);
  EXPECT_EQ(md->brokers[0].port, broker_->port());
  std::map<std::string, int> partitions;
  for (const auto& t : md->topics) partitions[t.name] = t.partitions;
  for (const auto& spec : painpoint_topics(4)) EXPECT_EQ(partitions[spec.name], 4) << spec.name;
  auto id = admin->cluster_id(10s);
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  EXPECT_FALSE(id->empty());
}

TEST_F(KafkaTest, BrokerListensOnRequestedPort) {
  // Find a port that is free right now, then ask for it.
  std::uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(free_loopback_port(&port));
  auto broker = EmbeddedBroker::start(broker_config(port, true));
  ASSERT_TRUE(broker.ok()) << broker.status().to_string();
  EXPECT_EQ((*broker)->bootstrap(), "127.0.0.1:" + std::to_string(port));
  // A second broker on the same port fails cleanly instead of aborting.
  auto clash = EmbeddedBroker::start(broker_config(port, true));
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code, KafkaErrc::kTransport);
}

TEST_F(KafkaTest, ClusterIdWithoutABrokerIsAnErrorAfterTheTimeout) {
  // A port that was free a moment ago: nothing answers there.
  std::uint16_t port = 0;
  ASSERT_NO_FATAL_FAILURE(free_loopback_port(&port));
  ConsumerConfig config;
  config.brokers = "127.0.0.1:" + std::to_string(port);
  config.group_id = "nobody-home";
  auto consumer = Consumer::create(config);
  ASSERT_TRUE(consumer.ok()) << consumer.status().to_string();
  auto id = consumer->cluster_id(300ms);
  EXPECT_FALSE(id.ok());
}

// What a TLS listener does to a plaintext client: accept, then close without answering. Serves
// until destroyed.
class ClosingListener {
 public:
  ClosingListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    auto* addr = static_cast<sockaddr*>(static_cast<void*>(&sin));
    if (fd_ >= 0 && ::bind(fd_, addr, sizeof sin) == 0 && ::listen(fd_, 16) == 0 &&
        ::getsockname(fd_, addr, &len) == 0) {
      port_ = ntohs(sin.sin_port);
      thread_ = std::thread([fd = fd_] {
        for (int client; (client = ::accept(fd, nullptr, nullptr)) >= 0;) ::close(client);
      });
    }
  }
  ~ClosingListener() {
    ::shutdown(fd_, SHUT_RDWR);  // ends the blocked accept()
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  ClosingListener(const ClosingListener&) = delete;
  ClosingListener& operator=(const ClosingListener&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(KafkaTest, ConnectionClosedBeforeApiVersionNamesSecurityProtocol) {
  // librdkafka 2.12 only logs this case; the client state turns it into the connection problem.
  ClosingListener listener;
  ASSERT_NE(listener.port(), 0);
  ConsumerConfig config;
  config.brokers = "127.0.0.1:" + std::to_string(listener.port());
  config.group_id = "closed-before-apiversion";
  auto consumer = Consumer::create(config);
  ASSERT_TRUE(consumer.ok()) << consumer.status().to_string();
  auto id = consumer->cluster_id(2s);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message.find("APIVERSION_QUERY"), std::string::npos)
      << id.status().to_string();
  EXPECT_NE(id.status().message.find("check that kafka.security.protocol matches the listener"),
            std::string::npos)
      << id.status().to_string();
}

TEST_F(KafkaTest, PrefetchMetadataOfExistingAndUnreachableTopics) {
  ASSERT_TRUE(broker_->create_topic("warm", 3).ok());
  auto producer = make_producer();
  const std::array<std::string, 1> topics{"warm"};
  EXPECT_TRUE(producer.prefetch_metadata(topics, 10s).ok());

  std::uint16_t port = 0;  // free a moment ago: nothing answers there
  ASSERT_NO_FATAL_FAILURE(free_loopback_port(&port));
  ProducerConfig nowhere;
  nowhere.brokers = "127.0.0.1:" + std::to_string(port);
  auto lonely = Producer::create(nowhere);
  ASSERT_TRUE(lonely.ok()) << lonely.status().to_string();
  EXPECT_FALSE(lonely->prefetch_metadata(topics, 300ms).ok());
}

// A poll() that would wait far longer than the deadline returns once another thread wakes it,
// and a wake that comes before the poll makes the next poll return instead of waiting.
TEST_F(KafkaTest, WakeEndsAPollOnAnotherThread) {
  ProducerConfig config;
  config.brokers = broker_->bootstrap();
  // No statistics events: nothing but wake() may end the poll.
  config.extra["statistics.interval.ms"] = "0";
  auto created = Producer::create(config);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  Producer producer = std::move(created).value();
  std::atomic<bool> returned{false};
  std::thread poller([&] {
    producer.poll(std::chrono::duration_cast<std::chrono::milliseconds>(10 * kDeadline));
    returned.store(true);
  });
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!returned.load() && std::chrono::steady_clock::now() < deadline) {
    producer.wake();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(returned.load()) << "poll() still blocked after wake()";
  if (!returned.load()) producer.wake();
  poller.join();

  producer.wake();
  std::atomic<bool> second{false};
  std::thread early([&] {
    producer.poll(std::chrono::duration_cast<std::chrono::milliseconds>(10 * kDeadline));
    second.store(true);
  });
  const auto second_deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!second.load() && std::chrono::steady_clock::now() < second_deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(second.load()) << "a wake() before poll() was lost";
  if (!second.load()) producer.wake();
  early.join();
}

TEST_F(KafkaTest, ProducerConsumerRoundTrip) {
  ASSERT_TRUE(broker_->create_topic("rt", 3).ok());
  std::atomic<int> delivered{0};
  auto producer = make_producer([&](const DeliveryReport& r) {
    EXPECT_TRUE(r.status.ok()) << r.status.to_string();
    EXPECT_EQ(r.topic, "rt");
    EXPECT_GE(r.offset, 0);
    ++delivered;
  });
  const std::vector<Header> headers{{"h1", "v1"}, {"empty", ""}};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(producer
                    .produce("rt", "key-" + std::to_string(i % 5), "value-" + std::to_string(i),
                             headers, static_cast<std::uint64_t>(i))
                    .ok());
  }
  ASSERT_TRUE(producer.produce("rt", std::nullopt, "no-key").ok());
  ASSERT_TRUE(producer.flush(kDeadline).ok());
  EXPECT_EQ(delivered.load(), 51);
  EXPECT_EQ(producer.counters().delivered, 51u);
  EXPECT_EQ(producer.counters().failed, 0u);
  EXPECT_EQ(producer.in_flight(), 0u);

  auto consumer = make_consumer("rt-group");
  std::vector<TopicPartition> assigned;
  const std::vector<std::string> topics{"rt"};
  ASSERT_TRUE(consumer
                  .subscribe(topics,
                             [&](std::span<const TopicPartition> tps) {
                               assigned.assign(tps.begin(), tps.end());
                               return std::vector<StartOffset>(tps.size(), StartOffset::earliest());
                             })
                  .ok());
  auto got = consume(consumer, 51);
  ASSERT_EQ(got.size(), 51u);
  EXPECT_EQ(assigned.size(), 3u);
  std::map<std::string, std::set<std::int32_t>> partitions_per_key;
  int with_key = 0;
  for (const auto& r : got) {
    if (!r.key) {
      EXPECT_EQ(r.payload, "no-key");
      continue;
    }
    ++with_key;
    partitions_per_key[*r.key].insert(r.partition);
    EXPECT_EQ(r.headers.at("h1"), "v1");
    EXPECT_EQ(r.headers.at("empty"), "");
  }
  EXPECT_EQ(with_key, 50);
  for (const auto& [key, parts] : partitions_per_key) EXPECT_EQ(parts.size(), 1u) << key;

  std::int64_t total = 0;
  for (int p = 0; p < 3; ++p) {
    auto w = consumer.query_watermarks("rt", p, 10s);
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    total += w->high - w->low;
  }
  EXPECT_EQ(total, 51);

  auto id = consumer.cluster_id(10s);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(id->empty());
  EXPECT_TRUE(consumer.broker_reachable());

  std::vector<TopicPartitionOffset> commit;
  for (int p = 0; p < 3; ++p) commit.push_back({"rt", p, 1});
  EXPECT_TRUE(consumer.commit(commit, false).ok());
  auto assignment = consumer.assignment();
  ASSERT_TRUE(assignment.ok());
  EXPECT_EQ(assignment->size(), 3u);
  EXPECT_TRUE(consumer.close().ok());
}

TEST_F(KafkaTest, AssignHandlerChoosesConcreteOffsets) {
  ASSERT_TRUE(broker_->create_topic("seek", 1).ok());
  auto producer = make_producer();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer.produce("seek", "k", std::to_string(i)).ok());
  ASSERT_TRUE(producer.flush(kDeadline).ok());

  auto consumer = make_consumer("seek-group");
  const std::vector<std::string> topics{"seek"};
  ASSERT_TRUE(consumer
                  .subscribe(topics,
                             [](std::span<const TopicPartition> tps) {
                               return std::vector<StartOffset>(tps.size(), StartOffset::at(7));
                             })
                  .ok());
  auto got = consume(consumer, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.front().offset, 7);
  EXPECT_EQ(got.front().payload, "7");
  EXPECT_EQ(got.back().offset, 9);

  auto times = consumer.offsets_for_times(std::vector<TopicPartitionOffset>{{"seek", 0, 0}}, 10s);
  ASSERT_TRUE(times.ok()) << times.status().to_string();
  ASSERT_EQ(times->size(), 1u);  // the mock broker answers -1 for real timestamps
}

TEST_F(KafkaTest, PollBatchStopsAtTheByteBound) {
  ASSERT_TRUE(broker_->create_topic("bytes", 1).ok());
  auto producer = make_producer();
  const std::string payload(1000, 'x');
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(producer.produce("bytes", "k", payload).ok());
  ASSERT_TRUE(producer.flush(kDeadline).ok());

  auto consumer = make_consumer("bytes-group");
  const std::vector<std::string> topics{"bytes"};
  ASSERT_TRUE(consumer.subscribe(topics).ok());
  std::vector<std::size_t> sizes;
  std::size_t total = 0;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (total < 40 && std::chrono::steady_clock::now() < deadline) {
    // 2,500 bytes: the third 1,000-byte message crosses the bound and is the last one taken.
    auto batch = consumer.poll_batch(100, 200ms, 2'500);
    if (batch.empty()) continue;
    sizes.push_back(batch.size());
    total += batch.size();
  }
  ASSERT_EQ(total, 40u);
  for (std::size_t n : sizes) EXPECT_LE(n, 3u);
  // Messages arrive in fetches of many: at least one batch was cut by the bound, not by a gap.
  EXPECT_NE(std::find(sizes.begin(), sizes.end(), 3u), sizes.end());
}

TEST_F(KafkaTest, OffsetOutOfRangeIsReportedAndConsumptionContinuesFromEarliest) {
  ASSERT_TRUE(broker_->create_topic("oor", 1).ok());
  auto producer = make_producer();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(producer.produce("oor", "k", std::to_string(i)).ok());
  ASSERT_TRUE(producer.flush(kDeadline).ok());

  // A stored offset the broker does not have (as after retention, or a different cluster).
  auto consumer = make_consumer("oor-group");
  const std::vector<std::string> topics{"oor"};
  ASSERT_TRUE(consumer
                  .subscribe(topics,
                             [](std::span<const TopicPartition> tps) {
                               return std::vector<StartOffset>(tps.size(), StartOffset::at(1000));
                             })
                  .ok());
  std::vector<OffsetReset> resets;
  auto got = consume(consumer, 5, &resets);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got.front().offset, 0);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].partition, (TopicPartition{"oor", 0}));
  EXPECT_EQ(resets[0].requested, 1000);
  EXPECT_EQ(resets[0].low_watermark, 0);
  EXPECT_EQ(resets[0].high_watermark, 5);
  EXPECT_EQ(resets[0].resumed_at, 0);
  EXPECT_EQ(resets[0].lost(), 0);
}

TEST_F(KafkaTest, OffsetBelowRetentionCountsLostMessages) {
  // The embedded broker keeps about 5 MiB per partition; push past it so the start moves.
  ASSERT_TRUE(broker_->create_topic("retention", 1).ok());
  ProducerConfig config;
  config.brokers = broker_->bootstrap();
  config.compression = "none";
  auto producer = Producer::create(config);
  ASSERT_TRUE(producer.ok());
  std::string blob(256 * 1024, 'x');
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    for (auto& c : blob) c = static_cast<char>(rng());
    ASSERT_TRUE(producer->produce("retention", std::nullopt, blob).ok());
    ASSERT_TRUE(producer->flush(kDeadline).ok());  // one message per batch
  }
  auto consumer = make_consumer("retention-group");
  auto w = consumer.query_watermarks("retention", 0, 10s);
  ASSERT_TRUE(w.ok());
  if (w->low == 0) GTEST_SKIP() << "broker kept all " << w->high << " messages";

  const std::vector<std::string> topics{"retention"};
  ASSERT_TRUE(consumer
                  .subscribe(topics,
                             [](std::span<const TopicPartition> tps) {
                               return std::vector<StartOffset>(tps.size(), StartOffset::at(0));
                             })
                  .ok());
  std::vector<OffsetReset> resets;
  auto got = consume(consumer, static_cast<std::size_t>(w->high - w->low), &resets);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].requested, 0);
  EXPECT_EQ(resets[0].lost(), w->low);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().offset, w->low);
}

TEST_F(KafkaTest, ProduceJsonlReportsPerLine) {
  std::istringstream in(R"({"eventId":"j-1","productId":"web","text":"Login page is slow"})"
                        "\n\n"
                        "not json\n"
                        R"({"eventId":"j-2","text":"no product"})"
                        "\n"
                        R"({"eventId":"j-3","productId":"web","text":"Mail me at a@b.com"})"
                        "\n");
  ProduceOptions options;
  options.brokers = broker_->bootstrap();
  options.topic = std::string(kTopicCustomer);
  options.delivery_timeout = kDeadline;
  const auto report = produce_jsonl(in, options);
  EXPECT_TRUE(report.status.ok()) << report.status.to_string();
  EXPECT_EQ(report.lines, 4u);
  EXPECT_EQ(report.sent, 2u);
  EXPECT_EQ(report.rejected, 2u);
  EXPECT_EQ(report.failed, 0u);
  ASSERT_EQ(report.errors.size(), 2u);
  EXPECT_EQ(report.errors[0].line, 3u);
  EXPECT_EQ(report.errors[0].code, "undecodable");
  EXPECT_EQ(report.errors[1].line, 4u);
  EXPECT_EQ(report.errors[1].code, "missing_product_id");
  EXPECT_FALSE(report.ok());
}

TEST_F(KafkaTest, IngestWorkerRoutesGoodAndGarbageMessages) {
  // A broker of its own: other tests write to the input topics too.
  EmbeddedBrokerConfig broker_config;
  broker_config.partitions = 2;
  auto own = EmbeddedBroker::start(broker_config);
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  EmbeddedBroker* const saved = broker_;
  broker_ = own->get();
  struct Restore {
    EmbeddedBroker* saved;
    ~Restore() { broker_ = saved; }
  } restore{saved};

  v1::FeedbackEvent good;
  good.set_event_id("w-1");
  good.set_product_id("mobile-app");
  good.set_text("  Crash on upload,   call me at +1 555 123 4567 ");
  const std::string garbage("\xff\xfe not protobuf", 15);

  std::map<std::string, DeliveryReport> sent;
  auto producer = make_producer([&](const DeliveryReport& r) {
    ASSERT_TRUE(r.status.ok());
    DeliveryReport copy = r;
    copy.topic = {};
    sent[r.tag == 1 ? "good" : r.tag == 2 ? "bad" : "invalid"] = copy;
  });
  ASSERT_TRUE(producer.produce(kTopicSupport, "src-key", good.SerializeAsString(), {}, 1).ok());
  ASSERT_TRUE(producer.produce(kTopicSales, "bad-key", garbage, {}, 2).ok());
  v1::FeedbackEvent invalid = good;
  invalid.set_event_id("w-2");
  invalid.set_product_id("no spaces allowed");
  const std::string invalid_bytes = invalid.SerializeAsString();
  ASSERT_TRUE(producer.produce(kTopicCustomer, std::nullopt, invalid_bytes, {}, 3).ok());
  ASSERT_TRUE(producer.flush(kDeadline).ok());

  IngestConfig config;
  config.brokers = broker_->bootstrap();
  config.poll_timeout = 100ms;
  IngestWorker worker(config);
  ASSERT_TRUE(worker.start().ok());

  auto out = make_consumer("ingest-test-reader");
  const std::vector<std::string> topics{std::string(kTopicByProduct),
                                        std::string(kTopicDeadletter)};
  ASSERT_TRUE(out.subscribe(topics,
                            [](std::span<const TopicPartition> tps) {
                              return std::vector<StartOffset>(tps.size(), StartOffset::earliest());
                            })
                  .ok());
  auto got = consume(out, 3);
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (worker.counters().batches_committed.load() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  worker.stop();
  EXPECT_FALSE(worker.running());
  ASSERT_EQ(got.size(), 3u);

  std::map<std::string, Received> by_kind;  // "good", "bad", "invalid"
  for (const auto& r : got) {
    if (r.topic == kTopicByProduct) {
      by_kind["good"] = r;
    } else if (r.key.has_value()) {
      by_kind["bad"] = r;
    } else {
      by_kind["invalid"] = r;
    }
  }
  ASSERT_EQ(by_kind.size(), 3u);
  const auto& repartitioned = by_kind["good"];
  const auto& dead = by_kind["bad"];
  ASSERT_EQ(dead.topic, kTopicDeadletter);

  const auto& rejected = by_kind["invalid"];
  EXPECT_EQ(rejected.topic, kTopicDeadletter);
  EXPECT_EQ(rejected.payload, invalid_bytes);
  EXPECT_EQ(rejected.headers.at(std::string(kHeaderReason)), "bad_product_id");
  EXPECT_EQ(rejected.headers.at(std::string(kHeaderTopic)), kTopicCustomer);
  EXPECT_EQ(rejected.headers.at(std::string(kHeaderOffset)),
            std::to_string(sent["invalid"].offset));

  EXPECT_EQ(repartitioned.key, "mobile-app");
  v1::FeedbackEvent routed;
  ASSERT_TRUE(routed.ParseFromString(repartitioned.payload));
  EXPECT_EQ(routed.event_id(), "w-1");
  EXPECT_EQ(routed.source(), v1::SOURCE_SUPPORT);
  EXPECT_EQ(routed.text(), "Crash on upload, call me at <phone>");
  EXPECT_TRUE(routed.has_occurred_at());

  EXPECT_EQ(dead.payload, garbage);
  EXPECT_EQ(dead.key, "bad-key");
  EXPECT_EQ(dead.headers.at(std::string(kHeaderReason)), "undecodable");
  EXPECT_FALSE(dead.headers.at(std::string(kHeaderDetail)).empty());
  EXPECT_EQ(dead.headers.at(std::string(kHeaderTopic)), kTopicSales);
  EXPECT_EQ(dead.headers.at(std::string(kHeaderPartition)), std::to_string(sent["bad"].partition));
  EXPECT_EQ(dead.headers.at(std::string(kHeaderOffset)), std::to_string(sent["bad"].offset));

  const auto& c = worker.counters();
  EXPECT_EQ(c.consumed.load(), 3u);
  EXPECT_EQ(c.valid.load(), 1u);
  EXPECT_EQ(c.invalid.load(), 2u);
  EXPECT_EQ(c.produced.load(), 3u);
  EXPECT_EQ(c.delivery_failures.load(), 0u);

  // The input offsets were committed for the group once the output was acknowledged.
  auto check = make_consumer("painpoint-ingest");
  const std::vector<TopicPartition> input{{std::string(kTopicSales), sent["bad"].partition}};
  auto committed = check.committed(input, 10s);
  ASSERT_TRUE(committed.ok()) << committed.status().to_string();
  ASSERT_EQ(committed->size(), 1u);
  EXPECT_EQ(committed->at(0).offset, sent["bad"].offset + 1);
}

}  // namespace
}  // namespace painpoint::ingest

// StageBacklog (how far serve's aggregator stage is behind ingest) and IngestWorker's input
// holds on the embedded broker, which keeps only 5 MiB per partition.
#include "painpoint/ingest/stage_backlog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"
#include "painpoint/ingest/producer.h"
#include "painpoint/ingest/topics.h"
#include "painpoint/ingest/worker.h"
#include "painpoint/v1/feedback.pb.h"

namespace painpoint::ingest {
namespace {

using namespace std::chrono_literals;

StageBacklog::Limits small_limits() {
  StageBacklog::Limits limits;
  limits.hold_bytes = 10'000;
  limits.resume_bytes = 5'000;
  limits.hold_messages = 100;
  limits.resume_messages = 50;
  return limits;
}

TEST(StageBacklog, HoldsAboveTheHoldMarksAndResumesAtTheResumeMarks) {
  StageBacklog backlog(4, small_limits());
  EXPECT_FALSE(backlog.should_hold());
  EXPECT_TRUE(backlog.may_resume());
  for (std::int64_t offset = 0; offset < 101; ++offset) backlog.produced(2, offset, 8);
  backlog.polled(2, 0);
  EXPECT_EQ(backlog.largest().messages, 101);
  EXPECT_TRUE(backlog.should_hold());  // 101 messages > 100
  backlog.polled(2, 30);
  EXPECT_FALSE(backlog.should_hold());
  EXPECT_FALSE(backlog.may_resume());  // 71 > 50: between the marks
  backlog.polled(2, 51);
  EXPECT_TRUE(backlog.may_resume());
}

TEST(StageBacklog, EstimatesBytesFromTheMeanAcknowledgedSize) {
  StageBacklog backlog(1, small_limits());
  // 40 messages of 468 bytes plus the record overhead: 20,000 bytes behind, 40 messages.
  for (std::int64_t offset = 0; offset < 40; ++offset) backlog.produced(0, offset, 468);
  backlog.polled(0, 0);
  EXPECT_EQ(backlog.largest().bytes, 40u * 500u);
  EXPECT_TRUE(backlog.should_hold());  // bytes, not messages
  backlog.polled(0, 31);               // 9 behind: 4,500 bytes
  EXPECT_TRUE(backlog.may_resume());
}

TEST(StageBacklog, MeasuresFromWhereTheStageReadsNow) {
  StageBacklog backlog(1, small_limits());
  for (std::int64_t offset = 0; offset < 120; ++offset) backlog.produced(0, offset, 8);
  backlog.polled(0, 120);
  EXPECT_EQ(backlog.largest().messages, 0);
  backlog.polled(0, 10);  // sought back to re-read: those messages must stay on the broker
  EXPECT_EQ(backlog.largest().messages, 110);
  EXPECT_TRUE(backlog.should_hold());
}

TEST(StageBacklog, CountsFromZeroBeforeTheStagesFirstPoll) {
  StageBacklog backlog(1, small_limits());
  backlog.produced(0, 500, 8);  // an old log: the stage has not said where it reads
  EXPECT_TRUE(backlog.should_hold());
  backlog.polled(0, 480);
  EXPECT_EQ(backlog.largest().messages, 21);
  EXPECT_FALSE(backlog.should_hold());
}

TEST(StageBacklog, IgnoresPartitionsOutsideItsRangeAndFailedDeliveries) {
  StageBacklog backlog(2, small_limits());
  for (std::int64_t offset = 0; offset < 500; ++offset) {
    backlog.produced(2, offset, 8);
    backlog.produced(-1, offset, 8);
    backlog.produced(0, -1, 8);
  }
  backlog.polled(5, 3);
  EXPECT_EQ(backlog.largest().messages, 0);
  EXPECT_FALSE(backlog.should_hold());
}

TEST(StageBacklog, RecognizesTheMockClustersId) {
  EXPECT_TRUE(is_mock_cluster("mockCluster1a2b3c"));
  EXPECT_FALSE(is_mock_cluster("MkU3OEVBNTcwNTJENDM2Qk"));
  EXPECT_FALSE(is_mock_cluster(""));
}

// Ingest on the embedded broker with a stage that stops polling: the output stops near the hold
// mark instead of running ahead, and everything arrives once the stage reads again.
TEST(IngestStageHolds, IngestWaitsForTheStageOnTheEmbeddedBroker) {
  EmbeddedBrokerConfig broker_config;
  broker_config.partitions = 1;
  auto broker = EmbeddedBroker::start(broker_config);
  ASSERT_TRUE(broker.ok()) << broker.status().to_string();
  const std::string bootstrap = (*broker)->bootstrap();

  constexpr int kEvents = 2'000;
  ProducerConfig producer_config;
  producer_config.brokers = bootstrap;
  auto producer = Producer::create(producer_config, nullptr);
  ASSERT_TRUE(producer.ok()) << producer.status().to_string();
  for (int i = 0; i < kEvents; ++i) {
    v1::FeedbackEvent event;
    event.set_event_id("hold-" + std::to_string(i));
    event.set_product_id("mobile-app");
    event.set_text("the app crashes when I upload a photo, attempt " + std::to_string(i));
    ASSERT_TRUE(producer->produce(kTopicSupport, "mobile-app", event.SerializeAsString()).ok());
  }
  ASSERT_TRUE(producer->flush(30s).ok());

  auto backlog = std::make_shared<StageBacklog>(1, small_limits());
  backlog->polled(0, 0);
  IngestConfig config;
  config.brokers = bootstrap;
  config.poll_timeout = 50ms;
  config.batch_size = 20;
  config.stage_backlog = backlog;
  IngestWorker worker(config);
  ASSERT_TRUE(worker.start().ok());

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (worker.counters().stage_holds.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_GT(worker.counters().stage_holds.load(), 0u);
  std::this_thread::sleep_for(500ms);
  // Held: at most the hold mark plus the batch that crossed it.
  const std::uint64_t while_held = worker.counters().produced.load();
  EXPECT_LE(while_held, 100u + config.batch_size);
  EXPECT_LT(backlog->largest().messages, 100 + static_cast<std::int64_t>(config.batch_size) + 1);

  // The stage reads again: ingest follows it to the end.
  std::int64_t next = 0;
  while (worker.counters().produced.load() < kEvents && std::chrono::steady_clock::now() < deadline) {
    next += std::min<std::int64_t>(10, backlog->largest().messages);
    backlog->polled(0, next);
    std::this_thread::sleep_for(2ms);
  }
  worker.stop();
  EXPECT_EQ(worker.counters().produced.load(), static_cast<std::uint64_t>(kEvents));
  EXPECT_GT(worker.counters().stage_holds.load(), 1u);
}

}  // namespace
}  // namespace painpoint::ingest

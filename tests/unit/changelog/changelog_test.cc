#include "painpoint/changelog/changelog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"

namespace painpoint::changelog {
namespace {

using Store = std::map<std::pair<std::string, std::string>, std::string>;

Record put(std::string family, std::string key, std::string value) {
  return {std::move(family), std::move(key), std::move(value)};
}
Record erase(std::string family, std::string key) {
  return {std::move(family), std::move(key), std::nullopt};
}

// What a store does with the records of a committed batch.
ApplyBatch apply_to(Store* store) {
  return [store](std::span<const Record> records) {
    for (const Record& r : records) {
      if (r.value) {
        (*store)[{r.family, r.key}] = *r.value;
      } else {
        store->erase({r.family, r.key});
      }
    }
    return Status::Ok();
  };
}

PartitionState state_at(std::int64_t next_input_offset) {
  return {next_input_offset, "cluster-a", {{"arrival", next_input_offset * 10}}};
}

// On the embedded broker by default; on the broker named by PAINPOINT_CHANGELOG_TEST_BROKERS
// (Apache Kafka: tests/kafka/changelog_real_test.py) when set. Every test gets topics of its own.
class ChangelogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.ack_timeout = 30'000ms;
    if (const char* brokers = std::getenv("PAINPOINT_CHANGELOG_TEST_BROKERS")) {
      config_.brokers = brokers;
      ingest::AdminConfig admin_config;
      admin_config.brokers = brokers;
      auto admin = ingest::Admin::create(admin_config);
      ASSERT_TRUE(admin.ok()) << admin.status().to_string();
      admin_ = std::make_unique<ingest::Admin>(std::move(admin).value());
    } else {
      ingest::EmbeddedBrokerConfig broker_config;
      broker_config.create_painpoint_topics = false;
      auto broker = ingest::EmbeddedBroker::start(broker_config);
      ASSERT_TRUE(broker.ok()) << broker.status().to_string();
      broker_ = std::move(broker).value();
      config_.brokers = broker_->bootstrap();
    }
    config_.topic = make_topic("changelog-test." + test_name(), 2);
  }

  static std::string test_name() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // A changelog topic with `partitions` partitions. On Apache Kafka through
  // ensure_changelog_topic, which is then asked again and must find it as it made it.
  std::string make_topic(const std::string& name, int partitions) {
    if (broker_) {
      EXPECT_TRUE(broker_->create_topic(name, partitions).ok());
      return name;
    }
    auto created = ensure_changelog_topic(*admin_, name, partitions, 30'000ms);
    EXPECT_TRUE(created.ok()) << created.status().to_string();
    EXPECT_EQ(created->outcome, ingest::TopicCheck::Outcome::kCreated);
    // Until the new topic shows in the metadata, ensure finds it missing and creates it again.
    auto checked = ensure_changelog_topic(*admin_, name, partitions, 30'000ms);
    for (int attempt = 0; attempt < 50 && checked.ok() &&
                          checked->outcome == ingest::TopicCheck::Outcome::kCreated;
         ++attempt) {
      std::this_thread::sleep_for(100ms);
      checked = ensure_changelog_topic(*admin_, name, partitions, 30'000ms);
    }
    EXPECT_TRUE(checked.ok()) << checked.status().to_string();
    EXPECT_EQ(checked->outcome, ingest::TopicCheck::Outcome::kOk);
    for (const auto& mismatch : checked->mismatches) ADD_FAILURE() << mismatch;
    return name;
  }

  RestoreResult restore(std::int32_t partition, Store* store, const Checkpoint& from = {}) {
    auto restorer = ChangelogRestorer::create(config_, partition, from);
    EXPECT_TRUE(restorer.ok()) << restorer.status().to_string();
    if (!restorer.ok()) return {};
    auto result = restorer->run(apply_to(store), 7);
    EXPECT_TRUE(result.ok()) << result.status().to_string();
    return result.ok() ? *result : RestoreResult{};
  }

  // Restores `partition` from the beginning into `store` and returns the new owner's writer.
  ChangelogWriter take_over(std::int32_t partition, Store* store, RestoreResult* result = nullptr) {
    auto restorer = ChangelogRestorer::create(config_, partition, {});
    EXPECT_TRUE(restorer.ok()) << restorer.status().to_string();
    auto restored = restorer->run(apply_to(store), 7);
    EXPECT_TRUE(restored.ok()) << restored.status().to_string();
    if (result != nullptr) *result = *restored;
    auto made = std::move(restorer).value().into_writer();
    EXPECT_TRUE(made.ok()) << made.status().to_string();
    return std::move(made).value();
  }

  ChangelogWriter writer(std::int32_t partition, const Checkpoint& restored) {
    auto made = ChangelogWriter::create(config_, partition, restored);
    EXPECT_TRUE(made.ok()) << made.status().to_string();
    return std::move(made).value();
  }

  std::unique_ptr<ingest::EmbeddedBroker> broker_;
  std::unique_ptr<ingest::Admin> admin_;
  ChangelogConfig config_;
};

TEST_F(ChangelogTest, RestoreReplaysPutsAndDeletesOfCommittedBatches) {
  Store first;
  const RestoreResult empty = restore(0, &first);
  EXPECT_TRUE(first.empty());
  EXPECT_EQ(empty.checkpoint.epoch, 1);
  EXPECT_EQ(empty.checkpoint.state.next_input_offset, -1);

  ChangelogWriter w = writer(0, empty.checkpoint);
  const std::vector<Record> b1 = {put("events", "e1", "one"), put("events", "e2", "two"),
                                  put("members", "e1", "pp-1")};
  const std::vector<Record> b2 = {erase("events", "e2"), put("events", "e1", "one again"),
                                  put("members", std::string("e\0x", 3), "pp-2")};
  const std::vector<Record> b3 = {erase("members", "e1"), erase("never", "written")};
  ASSERT_TRUE(w.append_batch(b1, state_at(3)).ok());
  ASSERT_TRUE(w.append_batch(b2, state_at(5)).ok());
  ASSERT_TRUE(w.append_batch(b3, state_at(9)).ok());
  EXPECT_EQ(w.checkpoint().batch_sequence, 3);

  // Partition 1 stays untouched by partition 0's writes.
  Store other;
  EXPECT_EQ(restore(1, &other).stats.records_applied, 0);
  EXPECT_TRUE(other.empty());

  Store restored;
  const RestoreResult result = restore(0, &restored);
  const Store expected = {{{"events", "e1"}, "one again"},
                          {{"members", std::string("e\0x", 3)}, "pp-2"}};
  EXPECT_EQ(restored, expected);
  EXPECT_EQ(result.checkpoint.epoch, 2);
  EXPECT_EQ(result.checkpoint.state, state_at(9));
  EXPECT_EQ(result.stats.batches_applied, 3);
  EXPECT_EQ(result.stats.records_applied, 8);
  EXPECT_EQ(result.stats.records_discarded, 0);

  // From the checkpoint the restore reads only what came after it.
  Store again = restored;
  const RestoreResult incremental = restore(0, &again, result.checkpoint);
  EXPECT_EQ(again, expected);
  EXPECT_EQ(incremental.stats.records_applied, 0);
  EXPECT_EQ(incremental.checkpoint.state, state_at(9));
  EXPECT_EQ(incremental.checkpoint.epoch, 3);
}

TEST_F(ChangelogTest, RecordsAfterTheLastMarkerAreDiscarded) {
  // One partition, so that a producer partitioning by key writes to it.
  config_.topic = make_topic("changelog-test.tail", 1);
  Store ignored;
  ChangelogWriter w = take_over(0, &ignored);
  ASSERT_TRUE(w.append_batch(std::vector<Record>{put("events", "e1", "one")}, state_at(1)).ok());

  // The owner died after two records of its next batch reached the broker, before the marker.
  ingest::ProducerConfig producer_config;
  producer_config.brokers = config_.brokers;
  auto producer = ingest::Producer::create(producer_config);
  ASSERT_TRUE(producer.ok());
  const std::vector<ingest::Header> headers = {{"painpoint.epoch", "1"}, {"painpoint.batch", "2"}};
  ASSERT_TRUE(producer->produce(config_.topic, std::string("events\0e2", 9), "two", headers).ok());
  ASSERT_TRUE(producer->produce(config_.topic, std::string("events\0e1", 9), "overwritten", headers).ok());
  ASSERT_TRUE(producer->flush(10'000ms).ok());

  Store restored;
  const RestoreResult result = restore(0, &restored);
  EXPECT_EQ(restored, (Store{{{"events", "e1"}, "one"}}));
  EXPECT_EQ(result.stats.records_discarded, 2);
  ASSERT_EQ(result.stats.uncommitted_keys.size(), 2U);
  EXPECT_EQ(result.stats.uncommitted_keys[0], erase("events", "e2"));
  EXPECT_EQ(result.checkpoint.state, state_at(1));

  // They stay discarded for every later restore, also after the new owner's batches.
  ChangelogWriter next = writer(0, result.checkpoint);  // a writer of its own works as well
  ASSERT_TRUE(next.append_batch(std::vector<Record>{put("events", "e3", "three")}, state_at(4)).ok());
  Store later;
  EXPECT_EQ(restore(0, &later).checkpoint.state, state_at(4));
  EXPECT_EQ(later, (Store{{{"events", "e1"}, "one"}, {{"events", "e3"}, "three"}}));
}

TEST_F(ChangelogTest, ZombieWriterIsFencedAndItsRecordsIgnored) {
  Store ignored;
  ChangelogWriter zombie = take_over(0, &ignored);
  ASSERT_TRUE(zombie.append_batch(std::vector<Record>{put("events", "e1", "one")}, state_at(1)).ok());

  // A new owner restores the partition while the old one still runs.
  Store owner_store;
  RestoreResult taken;
  ChangelogWriter owner = take_over(0, &owner_store, &taken);
  EXPECT_EQ(taken.checkpoint.epoch, 2);

  const Status late = zombie.append_batch(
      std::vector<Record>{put("events", "e1", "zombie"), erase("events", "e1")}, state_at(7));
  EXPECT_EQ(late.code, ChangelogErrc::kFenced) << late.to_string();
  EXPECT_EQ(zombie.append_batch({}, state_at(8)).code, ChangelogErrc::kState);

  ASSERT_TRUE(owner.append_batch(std::vector<Record>{put("events", "e2", "two")}, state_at(2)).ok());
  Store restored;
  const RestoreResult result = restore(0, &restored);
  EXPECT_EQ(restored, (Store{{{"events", "e1"}, "one"}, {{"events", "e2"}, "two"}}));
  EXPECT_EQ(result.checkpoint.state, state_at(2));
  EXPECT_EQ(result.checkpoint.epoch, 3);
  EXPECT_EQ(result.stats.records_ignored, 3);  // two records and the zombie's marker
  EXPECT_EQ(result.stats.uncommitted_keys.size(), 2U);
}

// One producer for both partitions' writers, appending side by side: a new owner takes
// partition 0 over while both append; its writer is fenced, partition 1's goes on on the same
// producer, and each partition's restore finds its own batches only.
TEST_F(ChangelogTest, SharedProducerFencesOnePartitionWhileTheOtherKeepsAppending) {
  auto producer = ChangelogProducer::create(config_);
  ASSERT_TRUE(producer.ok()) << producer.status().to_string();
  std::vector<ChangelogWriter> writers;
  for (std::int32_t p = 0; p < 2; ++p) {
    auto restorer = ChangelogRestorer::create(config_, p, {}, *producer);
    ASSERT_TRUE(restorer.ok()) << restorer.status().to_string();
    Store ignored;
    ASSERT_TRUE(restorer->run(apply_to(&ignored)).ok());
    auto made = std::move(restorer).value().into_writer();
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    writers.push_back(std::move(made).value());
  }
  constexpr int kBatches = 30;
  const auto batch_of = [](std::int32_t p, int batch) {
    const std::string n = std::to_string(batch);
    return std::vector<Record>{put("events", "p" + std::to_string(p) + "-" + n, n),
                               put("state", "last", n)};
  };
  std::atomic<int> appended0{0};
  std::atomic<bool> taken{false};
  Status fenced, refused;
  int committed0 = 0;
  std::thread zero([&] {
    for (int batch = 1; batch <= kBatches; ++batch) {
      if (batch == 6) {
        // The main thread gives up waiting for five batches after 60 s; so does this one.
        const auto give_up = std::chrono::steady_clock::now() + 90s;
        while (!taken.load() && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(1ms);
        }
      }
      Status s = writers[0].append_batch(batch_of(0, batch), state_at(batch));
      if (!s.ok()) {
        fenced = std::move(s);
        refused = writers[0].append_batch(batch_of(0, batch + 1), state_at(batch + 1));
        return;
      }
      committed0 = batch;
      appended0 = batch;
    }
  });
  std::vector<Status> one(kBatches + 1);
  std::thread first([&] {
    for (int batch = 1; batch <= kBatches; ++batch) {
      one[batch] = writers[1].append_batch(batch_of(1, batch), state_at(batch));
      if (!one[batch].ok()) return;
    }
  });
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (appended0.load() < 5 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(appended0.load(), 5) << "partition 0's first batches were not acknowledged";
  Store owner_store;
  ChangelogWriter owner = take_over(0, &owner_store);  // on a producer of its own
  taken = true;
  zero.join();
  first.join();

  EXPECT_EQ(fenced.code, ChangelogErrc::kFenced) << fenced.to_string();
  EXPECT_EQ(refused.code, ChangelogErrc::kState) << refused.to_string();
  EXPECT_EQ(committed0, 5);
  for (int batch = 1; batch <= kBatches; ++batch) {
    EXPECT_TRUE(one[batch].ok()) << batch << ": " << one[batch].to_string();
  }
  EXPECT_EQ(writers[1].checkpoint().batch_sequence, kBatches);
  EXPECT_TRUE((*producer)->fatal_error().ok());

  Store expected0, expected1;
  for (int batch = 1; batch <= 5; ++batch) (void)apply_to(&expected0)(batch_of(0, batch));
  for (int batch = 1; batch <= kBatches; ++batch) (void)apply_to(&expected1)(batch_of(1, batch));
  EXPECT_EQ(owner_store, expected0);
  Store restored0, restored1;
  const RestoreResult result0 = restore(0, &restored0);
  const RestoreResult result1 = restore(1, &restored1);
  EXPECT_EQ(restored0, expected0);
  EXPECT_EQ(result0.checkpoint.state, state_at(5));
  EXPECT_EQ(result0.stats.records_ignored, 3);  // the fenced batch: two records and its marker
  EXPECT_EQ(restored1, expected1);
  EXPECT_EQ(result1.checkpoint.state, state_at(kBatches));
  EXPECT_EQ(result1.stats.batches_applied, kBatches);
  EXPECT_EQ(result1.stats.records_ignored, 0);
}

// Restores of both partitions on one consumer, stepped in turn, each find their own partition's
// batches; a restore given up part way and begun again on the same consumer reads its partition
// from the start again.
TEST_F(ChangelogTest, RestoresOfSeveralPartitionsShareOneConsumer) {
  Store expected[2];
  for (std::int32_t p = 0; p < 2; ++p) {
    Store ignored;
    ChangelogWriter w = take_over(p, &ignored);
    for (int batch = 1; batch <= 12; ++batch) {
      const std::vector<Record> records = {
          put("events", "p" + std::to_string(p) + "-" + std::to_string(batch), "x"),
          put("state", "last", std::to_string(p * 100 + batch))};
      ASSERT_TRUE(w.append_batch(records, state_at(batch)).ok());
      (void)apply_to(&expected[p])(records);
    }
  }
  auto consumer = ChangelogConsumer::create(config_);
  ASSERT_TRUE(consumer.ok()) << consumer.status().to_string();
  {
    auto abandoned = ChangelogRestorer::create(config_, 0, {}, nullptr, *consumer);
    ASSERT_TRUE(abandoned.ok()) << abandoned.status().to_string();
    Store partial;
    ASSERT_TRUE(abandoned->step(apply_to(&partial), 5).ok());
  }
  std::vector<ChangelogRestorer> restorers;
  for (std::int32_t p = 0; p < 2; ++p) {
    auto restorer = ChangelogRestorer::create(config_, p, {}, nullptr, *consumer);
    ASSERT_TRUE(restorer.ok()) << restorer.status().to_string();
    restorers.push_back(std::move(restorer).value());
  }
  Store restored[2];
  bool done[2] = {false, false};
  for (int round = 0; round < 1000 && !(done[0] && done[1]); ++round) {
    for (std::size_t p = 0; p < 2; ++p) {
      if (done[p]) continue;
      auto step = restorers[p].step(apply_to(&restored[p]), 5);
      ASSERT_TRUE(step.ok()) << step.status().to_string();
      done[p] = *step;
    }
  }
  ASSERT_TRUE(done[0] && done[1]);
  for (std::size_t p = 0; p < 2; ++p) {
    EXPECT_EQ(restored[p], expected[p]) << "partition " << p;
    EXPECT_EQ(restorers[p].result().checkpoint.state, state_at(12));
    EXPECT_EQ(restorers[p].result().stats.batches_applied, 12);
  }
}

TEST_F(ChangelogTest, InterruptedRestoreRestartedGivesTheSameState) {
  Store ignored;
  ChangelogWriter w = take_over(0, &ignored);
  Store expected;
  for (int batch = 1; batch <= 20; ++batch) {
    std::vector<Record> records;
    for (int i = 0; i < 10; ++i) {
      const std::string key = "k" + std::to_string((batch * 7 + i) % 23);
      records.push_back(i % 4 == 3 ? erase("state", key) : put("state", key, std::to_string(batch)));
    }
    ASSERT_TRUE(w.append_batch(records, state_at(batch)).ok());
    (void)apply_to(&expected)(records);
  }

  // Stop a restore after a few chunks (a crash, a revoked partition) ...
  Store store;
  {
    auto interrupted = ChangelogRestorer::create(config_, 0, {});
    ASSERT_TRUE(interrupted.ok());
    int steps = 0;
    while (interrupted->position() < 100) {
      auto done = interrupted->step(apply_to(&store), 13);
      ASSERT_TRUE(done.ok()) << done.status().to_string();
      ASSERT_FALSE(*done);
      ++steps;
    }
    EXPECT_GT(steps, 3);
    EXPECT_NE(store, expected);
  }
  // ... and run it again on the half-applied store.
  const RestoreResult result = restore(0, &store);
  EXPECT_EQ(store, expected);
  EXPECT_EQ(result.checkpoint.state, state_at(20));
  EXPECT_EQ(result.stats.batches_applied, 20);
}

TEST_F(ChangelogTest, CheckpointBeyondTheEndIsRefused) {
  Checkpoint elsewhere;
  elsewhere.next_changelog_offset = 1000;
  elsewhere.epoch = 3;
  auto restorer = ChangelogRestorer::create(config_, 0, elsewhere);
  // Apache Kafka may answer "not leader" for a topic created a moment ago (a transient kKafka,
  // which serve's restores retry).
  for (int attempt = 0; attempt < 50 && restorer.status().code == ChangelogErrc::kKafka;
       ++attempt) {
    std::this_thread::sleep_for(100ms);
    restorer = ChangelogRestorer::create(config_, 0, elsewhere);
  }
  EXPECT_EQ(restorer.status().code, ChangelogErrc::kInvalidArgument) << restorer.status().to_string();
}

TEST_F(ChangelogTest, WriterNeedsARestoreAndValidFamilies) {
  EXPECT_EQ(ChangelogWriter::create(config_, 0, {}).status().code,
            ChangelogErrc::kInvalidArgument);
  Store ignored;
  ChangelogWriter w = take_over(0, &ignored);
  EXPECT_EQ(w.append_batch(std::vector<Record>{put("", "k", "v")}, {}).code,
            ChangelogErrc::kInvalidArgument);
  EXPECT_EQ(w.append_batch(std::vector<Record>{put(std::string("a\0b", 3), "k", "v")}, {}).code,
            ChangelogErrc::kInvalidArgument);
}

// The log cleaner removes overwritten values, deleted keys and all but the last batch marker of
// each epoch; the restore must still give the same state. Apache Kafka only (the embedded broker
// does not compact), with segments that roll every second and a cleaner that cleans at once.
TEST_F(ChangelogTest, RestoreAfterTheLogCleanerCompactedGivesTheSameState) {
  if (!admin_) GTEST_SKIP() << "the embedded broker does not compact";
  config_.topic = "changelog-test.compacted";
  const std::vector<ingest::TopicSpec> specs = {
      {config_.topic, 1, -1,
       {{"cleanup.policy", "compact"}, {"segment.ms", "1000"}, {"min.cleanable.dirty.ratio", "0.01"},
        {"min.compaction.lag.ms", "0"}, {"delete.retention.ms", "1000"}},
       false}};
  ASSERT_TRUE(admin_->create_topics(specs, 30'000ms).ok());

  Store expected;
  PartitionState last;
  int batch = 0;
  // Two owners, so that the log holds two epochs' markers.
  for (int owner = 0; owner < 2; ++owner) {
    Store ignored;
    ChangelogWriter w = take_over(0, &ignored);
    for (int i = 0; i < 20; ++i, ++batch) {
      std::vector<Record> records;
      for (int k = 0; k < 8; ++k) {
        const std::string key = "k" + std::to_string((batch + k) % 12);
        records.push_back((batch + k) % 5 == 0 ? erase("state", key)
                                               : put("state", key, std::to_string(batch)));
      }
      last = state_at(batch);
      ASSERT_TRUE(w.append_batch(records, last).ok());
      (void)apply_to(&expected)(records);
    }
  }

  // Restores (each adds a fence and a marker, which also rolls the segments) until the cleaner
  // has removed records; every one of them must give the same state.
  bool compacted = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (int attempt = 0; !compacted && std::chrono::steady_clock::now() < deadline; ++attempt) {
    Store restored;
    const RestoreResult result = restore(0, &restored);
    ASSERT_EQ(restored, expected) << "attempt " << attempt;
    ASSERT_EQ(result.checkpoint.state, last);
    ASSERT_EQ(result.stats.records_discarded, 0);
    // Every offset below the restore marker held a message when it was written.
    compacted = result.stats.messages_read < result.checkpoint.next_changelog_offset;
    std::printf("restore %d: %lld messages read below offset %lld\n", attempt,
                static_cast<long long>(result.stats.messages_read),
                static_cast<long long>(result.checkpoint.next_changelog_offset));
    if (!compacted) std::this_thread::sleep_for(1s);
  }
  EXPECT_TRUE(compacted) << "the log cleaner did not compact within 60 s";
}

TEST_F(ChangelogTest, TopicWithAnotherPartitionCountIsReported) {
  if (!admin_) GTEST_SKIP() << "the embedded broker answers neither CreateTopics nor DescribeConfigs";
  auto checked = ensure_changelog_topic(*admin_, config_.topic, 3, 30'000ms);
  ASSERT_TRUE(checked.ok()) << checked.status().to_string();
  EXPECT_EQ(checked->outcome, ingest::TopicCheck::Outcome::kMismatch);
  ASSERT_EQ(checked->mismatches.size(), 1U);
  EXPECT_EQ(checked->mismatches[0].rfind("2 partitions, expected 3", 0), 0U);
}

}  // namespace
}  // namespace painpoint::changelog

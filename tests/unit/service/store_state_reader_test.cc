// StoreStateReader over a real Store: a state record that does not decode and a read the store
// refuses both reach the caller as values (Aggregator::state_error(), read_error()), never as an
// exception and never skipped.
#include "store_state_reader.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/store/store.h"
#include "raw_rocks.h"

namespace painpoint::service {
namespace {

namespace fs = std::filesystem;
// Schema 3's family of the aggregator's state: each key behind its 2-byte partition prefix.
constexpr const char* kStateFamily = "aggregator_state@p";

v1::FeedbackEvent event(const std::string& id, const std::string& product,
                        const std::string& text) {
  v1::FeedbackEvent e;
  e.set_event_id(id);
  e.set_product_id(product);
  e.set_text(text);
  e.mutable_occurred_at()->set_seconds(1'790'000'000);
  e.set_source(v1::SOURCE_SUPPORT);
  return e;
}

std::vector<v1::FeedbackEvent> events_of(const std::string& product) {
  const std::vector<std::string> texts = {"password reset email never arrives",
                                          "the password reset email never arrives today",
                                          "cannot reset my password, the email never arrives",
                                          "invoice shows the wrong amount",
                                          "billing charged me twice this month",
                                          "invoice amount is wrong again"};
  std::vector<v1::FeedbackEvent> out;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    out.push_back(event(product + "-" + std::to_string(i), product, texts[i]));
  }
  return out;
}

class StoreStateReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("painpoint-state-reader-" + std::to_string(::getpid()) + "-" + test->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<store::Store> open_store() {
    std::unique_ptr<store::Store> store;
    const store::Status s = store::Store::open(dir_, {}, &store);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return store;
  }

  // Product "beta" aggregated and its whole state committed, as a checkpoint of serve does.
  void store_beta_state() {
    auto store = open_store();
    ASSERT_NE(store, nullptr);
    StoreStateReader reader(*store);
    aggregator::Aggregator aggregator({}, &reader);
    for (const auto& e : events_of("beta")) (void)aggregator.add(e);
    store::CommitBatch batch;
    for (auto& write : aggregator.take_changes().state) {
      batch.aggregator_state.push_back({std::move(write.key), std::move(write.value)});
    }
    batch.aggregator_checkpoint = true;
    ASSERT_FALSE(batch.aggregator_state.empty());
    const store::Status s = store->commit(batch);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  fs::path dir_;
};

TEST_F(StoreStateReaderTest, UndecodableRecordIsReportedByTheAggregatorWithItsKey) {
  store_beta_state();
  std::string damaged;
  {
    store::RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    std::unique_ptr<rocksdb::Iterator> it(
        raw.db->NewIterator(rocksdb::ReadOptions(), raw.family(kStateFamily)));
    // The first of beta's cluster records, which loading the product decodes.
    const std::string clusters = aggregator::product_state_prefix("beta") + "c/";
    std::string stored_key;
    for (it->SeekToFirst(); it->Valid() && stored_key.empty(); it->Next()) {
      const std::string key = it->key().ToString();
      if (key.size() > 2 && key.substr(2).starts_with(clusters)) stored_key = key;
    }
    ASSERT_FALSE(stored_key.empty());
    damaged = stored_key.substr(2);  // the key as the aggregator knows it
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.family(kStateFamily), stored_key, "\xff\xff\xff")
            .ok());
  }
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  StoreStateReader reader(*store);
  aggregator::Aggregator aggregator({}, &reader);
  (void)aggregator.add(event("beta-new", "beta", "password reset email never arrives"));
  ASSERT_TRUE(aggregator.state_error().has_value());
  EXPECT_NE(aggregator.state_error()->find("'" + damaged + "'"), std::string::npos)
      << *aggregator.state_error();
  EXPECT_FALSE(reader.read_error().has_value()) << *reader.read_error();
}

// The state family's table file damaged on disk: RocksDB's block checksum refuses the read.
TEST_F(StoreStateReaderTest, ReadTheStoreRefusesIsKeptAndStopsFurtherReads) {
  store_beta_state();
  {
    store::RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    ASSERT_TRUE(raw.db->Flush(rocksdb::FlushOptions(), raw.family(kStateFamily)).ok());
    std::vector<rocksdb::LiveFileMetaData> files;
    raw.db->GetLiveFilesMetaData(&files);
    int damaged = 0;
    for (const auto& file : files) {
      if (file.column_family_name != kStateFamily) continue;
      // The first data block starts at offset 0; the index and footer at the end stay intact,
      // so the store opens and only reading a record fails.
      std::fstream sst(file.db_path + file.name, std::ios::in | std::ios::out | std::ios::binary);
      ASSERT_TRUE(sst.is_open()) << file.db_path + file.name;
      sst.seekp(16);
      const std::string garbage(32, '\x5a');
      sst.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
      ++damaged;
    }
    ASSERT_GT(damaged, 0);
  }
  auto store = open_store();
  ASSERT_NE(store, nullptr);

  StoreStateReader reader(*store);
  aggregator::Aggregator aggregator({}, &reader);
  (void)aggregator.add(event("beta-new", "beta", "password reset email never arrives"));
  ASSERT_TRUE(reader.read_error().has_value());
  const std::string first = *reader.read_error();
  EXPECT_NE(first.find("read aggregator state"), std::string::npos) << first;
  EXPECT_EQ(reader.get(aggregator::product_state_prefix("alpha")), std::nullopt);
  EXPECT_EQ(*reader.read_error(), first) << "the first error is the one reported";

  StoreStateReader scanner(*store);
  scanner.scan(aggregator::product_state_prefix("beta"), [](std::string_view, std::string_view) {});
  ASSERT_TRUE(scanner.read_error().has_value());
  EXPECT_NE(scanner.read_error()->find("scan aggregator state"), std::string::npos)
      << *scanner.read_error();
}

}  // namespace
}  // namespace painpoint::service

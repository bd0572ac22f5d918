// commit() in two steps: prepare_commit() builds a batch's writes without writing anything,
// write_prepared() writes them and leaves the same store as commit() does.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "raw_rocks.h"
#include "store_dir_test.h"

namespace painpoint::store {
namespace {

v1::PainPointSummary summary(const std::string& id, const std::string& product,
                             std::int64_t version) {
  v1::PainPointSummary s;
  s.set_id(id);
  s.set_product_id(product);
  s.set_status(v1::STATUS_ACTIVE);
  s.set_version(version);
  s.set_event_count(version);
  return s;
}

// Every record of every column family, family by family in key order.
std::map<std::string, std::vector<std::pair<std::string, std::string>>> contents(
    const std::filesystem::path& dir) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  RawRocks raw(dir);
  EXPECT_TRUE(raw.open());
  for (std::size_t i = 0; i < raw.names.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator({}, raw.handles[i]));
    auto& records = out[raw.names[i]];
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      records.emplace_back(it->key().ToString(), it->value().ToString());
    }
    EXPECT_TRUE(it->status().ok());
  }
  return out;
}

class PreparedCommitTest : public StoreDirTest {
 protected:
  // A first batch both stores get, then one that touches every kind of record: new events (random
  // ids, out of key order), a stored event moving pain point, state puts and deletes, summaries
  // with their outbox, offsets, the cluster id and an alert.
  static CommitBatch first_batch() {
    CommitBatch batch;
    batch.events = {make_event("e-old", "app", v1::SOURCE_CUSTOMER, 50)};
    batch.memberships = {{"e-old", "app", "pp-old"}};
    batch.summaries = {summary("pp-old", "app", 1)};
    batch.aggregator_state = {{"p/app/gone", "x"}};
    return batch;
  }

  static CommitBatch second_batch() {
    CommitBatch batch;
    batch.events = {make_event("e-z", "app", v1::SOURCE_CUSTOMER, 300),
                    make_event("e-a", "web", v1::SOURCE_CUSTOMER, 100),
                    make_event("e-m", "app", v1::SOURCE_CUSTOMER, 200)};
    batch.offsets = {{"painpoint.feedback", 0, 42}, {"painpoint.feedback", 1, 7}};
    batch.kafka_cluster_id = "cluster-1";
    batch.aggregator_state = {{"p/app/z", "1"}, {"p/app/a", "2"}, {"p/app/gone", std::nullopt}};
    batch.memberships = {{"e-z", "app", "pp-new"},
                         {"e-a", "web", "pp-web"},
                         {"e-m", "app", "pp-new"},
                         {"e-old", "app", "pp-new"}};
    batch.summaries = {summary("pp-new", "app", 1), summary("pp-web", "web", 1)};
    batch.publish_summaries = true;
    v1::AlertEvent alert;
    alert.set_alert_id("al-1");
    alert.set_product_id("app");
    alert.set_rule("r");
    batch.alerts = {alert};
    return batch;
  }

  void TearDown() override {
    std::filesystem::remove_all(committed_dir());
    StoreDirTest::TearDown();
  }
  std::filesystem::path committed_dir() const { return dir_.string() + "-committed"; }
};

TEST_F(PreparedCommitTest, PreparedWritesAreInspectableAndWriteWhatCommitWrites) {
  std::filesystem::remove_all(committed_dir());
  {
    auto prepared_store = open_store();
    std::unique_ptr<Store> committed_store;
    ASSERT_TRUE(Store::open(committed_dir(), {}, &committed_store).ok());
    ASSERT_TRUE(prepared_store->commit(first_batch()).ok());
    ASSERT_TRUE(committed_store->commit(first_batch()).ok());

    PreparedCommit prepared;
    Status s = prepared_store->prepare_commit(second_batch(), &prepared);
    ASSERT_TRUE(s.ok()) << s.to_string();
    // Nothing is written yet.
    EXPECT_EQ(prepared_store->event_count(), 1);
    std::optional<v1::StoredEvent> absent;
    ASSERT_TRUE(prepared_store->get_event("e-z", &absent).ok());
    EXPECT_FALSE(absent.has_value());

    const std::vector<PreparedWrite> writes = prepared.writes();
    std::map<std::string, std::vector<std::string>> keys_of;  // family -> keys, in write order
    for (const PreparedWrite& w : writes) keys_of[std::string(w.family)].emplace_back(w.key);
    // The arrival log (numbers 1..3 after the first batch's event) comes first, in batch order.
    ASSERT_FALSE(writes.empty());
    EXPECT_EQ(writes.front().family, "unsaved_arrivals");
    EXPECT_EQ(writes.front().value, "e-z");
    // The other families' keys in key order, whatever order the batch had them in.
    EXPECT_EQ(keys_of["events"], (std::vector<std::string>{"e-a", "e-m", "e-z"}));
    EXPECT_EQ(keys_of["aggregator_state"],
              (std::vector<std::string>{"p/app/a", "p/app/gone", "p/app/z"}));
    EXPECT_EQ(keys_of["members"], (std::vector<std::string>{"e-a", "e-m", "e-old", "e-z"}));
    // The stored event's move: its old index entry deleted, the new one put.
    const std::string old_entry =
        keys::member_key("pp-old", keys::member_position(50'000'000, "e-old"));
    bool old_entry_deleted = false;
    for (const PreparedWrite& w : writes) {
      if (w.family == "members_by_pain_point" && w.key == old_entry) {
        old_entry_deleted = w.kind == WriteKind::kDelete;
      }
    }
    EXPECT_TRUE(old_entry_deleted);
    EXPECT_EQ(keys_of["outbox"].size(), 2u);
    EXPECT_EQ(keys_of["alerts"].size(), 5u);   // id, sequence, product, outbox, next sequence
    EXPECT_EQ(keys_of["default"].size(), 7u);  // 2 products, event count, 2 offsets, cluster,
                                               // outbox sequence

    s = prepared_store->write_prepared(std::move(prepared));
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(committed_store->commit(second_batch()).ok());
    EXPECT_EQ(prepared_store->event_count(), 4);
    EXPECT_EQ(prepared_store->outbox_next_sequences(), committed_store->outbox_next_sequences());
    EXPECT_EQ(prepared_store->alert_next_sequence(), committed_store->alert_next_sequence());
    const auto prepared_stats = prepared_store->product_stats();
    const auto committed_stats = committed_store->product_stats();
    ASSERT_EQ(prepared_stats.size(), committed_stats.size());
    for (std::size_t i = 0; i < prepared_stats.size(); ++i) {
      EXPECT_EQ(prepared_stats[i].SerializeAsString(), committed_stats[i].SerializeAsString());
    }
  }
  EXPECT_EQ(contents(dir_), contents(committed_dir()));
}

TEST_F(PreparedCommitTest, ACommitBetweenPrepareAndWriteIsRefused) {
  auto store = open_store();
  PreparedCommit stale;
  ASSERT_TRUE(store->prepare_commit(first_batch(), &stale).ok());
  CommitBatch other;
  other.events = {make_event("e-other", "app", v1::SOURCE_CUSTOMER, 10)};
  ASSERT_TRUE(store->commit(other).ok());

  EXPECT_EQ(store->write_prepared(std::move(stale)).code, StoreErrc::kInvalidArgument);
  std::optional<v1::StoredEvent> absent;
  ASSERT_TRUE(store->get_event("e-old", &absent).ok());
  EXPECT_FALSE(absent.has_value());
  EXPECT_EQ(store->event_count(), 1);

  PreparedCommit fresh;
  ASSERT_TRUE(store->prepare_commit(first_batch(), &fresh).ok());
  ASSERT_TRUE(store->write_prepared(std::move(fresh)).ok());
  EXPECT_EQ(store->event_count(), 2);
  EXPECT_EQ(store->write_prepared(PreparedCommit()).code, StoreErrc::kInvalidArgument);
}

// What the changelog carries: a partition's writes as writes() lists them, applied to another
// store with apply_partition_writes(), rebuild that partition there (counters after
// reload_counters()); a local record is written with the commit but never listed.
TEST_F(PreparedCommitTest, PartitionWritesAppliedElsewhereRebuildThePartition) {
  struct OwnedWrite {
    std::string family, key, value;
    WriteKind kind;
    std::int32_t partition;
  };
  std::vector<std::vector<OwnedWrite>> batches;
  std::filesystem::remove_all(committed_dir());
  auto source = open_store();
  for (const CommitBatch& batch : {first_batch(), second_batch()}) {
    PreparedCommit prepared;
    ASSERT_TRUE(source->prepare_commit(batch, &prepared).ok());
    auto& owned = batches.emplace_back();
    for (const PreparedWrite& w : prepared.writes()) {
      owned.push_back(
          {std::string(w.family), std::string(w.key), std::string(w.value), w.kind, w.partition});
    }
    ASSERT_TRUE(source->add_local_record(&prepared, 0, "checkpoint", "cp-1").ok());
    ASSERT_TRUE(source->write_prepared(std::move(prepared)).ok());
  }
  std::optional<std::string> local;
  ASSERT_TRUE(source->local_record(0, "checkpoint", &local).ok());
  EXPECT_EQ(local, "cp-1");

  std::unique_ptr<Store> copy;
  ASSERT_TRUE(Store::open(committed_dir(), {}, &copy).ok());
  std::size_t partition_writes = 0;
  for (const auto& batch : batches) {
    std::map<std::int32_t, std::vector<PreparedWrite>> by_partition;
    for (const OwnedWrite& w : batch) {
      EXPECT_EQ(w.key.find("local/"), std::string::npos) << w.family << " " << w.key;
      if (w.partition == kNoPartition) continue;
      by_partition[w.partition].push_back({w.family, w.kind, w.key, w.value, w.partition});
      ++partition_writes;
    }
    for (const auto& [p, writes] : by_partition) {
      Status s = copy->apply_partition_writes(p, writes);
      ASSERT_TRUE(s.ok()) << s.to_string();
    }
  }
  EXPECT_GT(partition_writes, 20U);
  EXPECT_EQ(copy->event_count(), 0);  // counters follow only on reload
  ASSERT_TRUE(copy->reload_counters().ok());
  EXPECT_EQ(copy->event_count(), source->event_count());
  EXPECT_EQ(copy->outbox_next_sequences(), source->outbox_next_sequences());
  std::vector<InputOffset> source_offsets, copy_offsets;
  ASSERT_TRUE(source->load_offsets(&source_offsets).ok());
  ASSERT_TRUE(copy->load_offsets(&copy_offsets).ok());
  EXPECT_EQ(copy_offsets, source_offsets);
  ASSERT_EQ(copy->product_stats().size(), source->product_stats().size());
  for (const v1::ProductStats& stats : source->product_stats()) {
    const auto other = copy->product_stats(stats.product_id());
    ASSERT_TRUE(other.has_value()) << stats.product_id();
    EXPECT_EQ(other->SerializeAsString(), stats.SerializeAsString());
  }
  std::optional<std::string> value;
  ASSERT_TRUE(copy->partition_record(0, "members", "e-old", &value).ok());
  EXPECT_EQ(value, "pp-new");
  // The copy continues like the source: the next commit gets the same arrival numbers.
  for (Store* store : {source.get(), copy.get()}) {
    CommitBatch next;
    next.events = {make_event("e-next", "app", v1::SOURCE_CUSTOMER, 400)};
    ASSERT_TRUE(store->commit(next).ok());
  }
  std::optional<v1::StoredEvent> a, b;
  ASSERT_TRUE(source->get_event("e-next", &a).ok());
  ASSERT_TRUE(copy->get_event("e-next", &b).ok());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->arrival_seq(), b->arrival_seq());
  // The local record goes with its partition.
  ASSERT_TRUE(source->drop_partition(0).ok());
  ASSERT_TRUE(source->local_record(0, "checkpoint", &local).ok());
  EXPECT_FALSE(local.has_value());
  // Records of no partition are refused.
  const PreparedWrite alert{"alerts", WriteKind::kPut, "k", "v", kNoPartition};
  EXPECT_FALSE(copy->apply_partition_writes(0, std::span(&alert, 1)).ok());
  copy.reset();
  std::filesystem::remove_all(committed_dir());
}

}  // namespace
}  // namespace painpoint::store

#include "painpoint/store/store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "painpoint/store/keys.h"
#include "raw_rocks.h"
#include "store_dir_test.h"

namespace painpoint::store {
namespace {

class StoreTest : public StoreDirTest {
 protected:
  static std::vector<std::size_t> new_of(const Store& store, std::vector<std::string_view> ids) {
    std::vector<std::size_t> out;
    Status s = store.filter_new_events(ids, &out);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }
  // Commits `events` ((id, product) in arrival order) with the whole state of the products `saved`.
  static void commit_saving(Store& store,
                            const std::vector<std::pair<std::string, std::string>>& events,
                            std::vector<std::string> saved) {
    CommitBatch batch;
    for (const auto& [id, product] : events) {
      batch.events.push_back(make_event(id, product, v1::SOURCE_SUPPORT, 1'000'000));
    }
    for (const auto& product : saved) {
      batch.aggregator_state.push_back({"agg/" + product + "/m", std::string("state")});
    }
    batch.state_saved_for = std::move(saved);
    Status s = store.commit(batch);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
};

TEST_F(StoreTest, EventRoundTripAndAbsenceIsAValue) {
  auto store = open_store();
  CommitBatch batch;
  batch.events.push_back(make_event("e-1", "app", v1::SOURCE_SUPPORT, 100));
  ASSERT_TRUE(store->commit(batch).ok());

  std::optional<v1::StoredEvent> got;
  ASSERT_TRUE(store->get_event("e-1", &got).ok());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->event().text(), "text of e-1");
  ASSERT_TRUE(store->get_event("missing", &got).ok());
  EXPECT_FALSE(got.has_value());
}

TEST_F(StoreTest, DuplicateIdsAreFilteredAgainstStoreAndWithinBatch) {
  auto store = open_store();
  CommitBatch batch;
  batch.events.push_back(make_event("a", "app", v1::SOURCE_SUPPORT, 1));
  ASSERT_TRUE(store->commit(batch).ok());
  EXPECT_EQ(new_of(*store, {"a", "b", "b", "c", "a"}), (std::vector<std::size_t>{1, 3}));
  EXPECT_TRUE(new_of(*store, {}).empty());
}

TEST_F(StoreTest, DedupeOfManyIdsOfMixedShapesFromTableFilesAndMemtable) {
  // The lookup sorts ids itself (by their first 16 bytes, then the rest): ids sharing long
  // prefixes, shorter than 16 bytes, with NUL or high bytes, must all be found where stored.
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i) {
    const std::string n = std::to_string(i);
    switch (i % 5) {
      case 0:
        ids.push_back("bench-1-" + n);
        break;
      case 1:
        ids.push_back("same-sixteen-pfx" + n);
        break;
      case 2:
        ids.push_back(n);
        break;
      case 3:
        ids.push_back(std::string("\xff\x80", 2) + n);
        break;
      default:
        ids.push_back(std::string("nul\0", 4) + n);
        break;
    }
  }
  {
    auto store = open_store();
    CommitBatch batch;
    for (std::size_t i = 0; i < ids.size(); i += 3) {
      batch.events.push_back(make_event(ids[i], "app", v1::SOURCE_SUPPORT, 1));
    }
    ASSERT_TRUE(store->commit(batch).ok());
  }
  auto store = open_store();  // reopening moves the first commit into a table file
  CommitBatch later;
  for (std::size_t i = 1; i < ids.size(); i += 3) {
    later.events.push_back(make_event(ids[i], "app", v1::SOURCE_SUPPORT, 1));
  }
  ASSERT_TRUE(store->commit(later).ok());
  std::vector<std::string_view> query(ids.begin(), ids.end());
  query.push_back(ids[2]);  // a repeat of a new id
  query.push_back(ids[0]);  // a repeat of a stored id
  std::vector<std::size_t> expected;
  for (std::size_t i = 2; i < ids.size(); i += 3) expected.push_back(i);
  EXPECT_EQ(new_of(*store, query), expected);
}

TEST_F(StoreTest, CountersPerProductAndSourceSurviveReopen) {
  {
    auto store = open_store();
    CommitBatch batch;
    batch.events.push_back(make_event("1", "app", v1::SOURCE_SUPPORT, 1));
    batch.events.push_back(make_event("2", "app", v1::SOURCE_SALES, 2));
    batch.events.push_back(make_event("3", "web", v1::SOURCE_CUSTOMER, 3));
    ASSERT_TRUE(store->commit(batch).ok());
    EXPECT_EQ(store->event_count(), 3);
  }
  auto store = open_store();
  EXPECT_EQ(store->event_count(), 3);
  auto stats = store->product_stats();
  ASSERT_EQ(stats.size(), 2U);
  EXPECT_EQ(stats[0].product_id(), "app");
  EXPECT_EQ(stats[0].event_count(), 2);
  EXPECT_EQ(stats[0].support_count(), 1);
  EXPECT_EQ(stats[0].sales_count(), 1);
  EXPECT_EQ(stats[1].customer_count(), 1);
}

TEST_F(StoreTest, AFailedCommitLeavesNothingForTheNextOne) {
  // commit() reuses its WriteBatch: what a refused batch had added before the check that refused
  // it must not ride along with the next commit.
  {
    auto store = open_store();
    CommitBatch refused;
    refused.events.push_back(make_event("x", "web", v1::SOURCE_SALES, 1));
    refused.memberships.push_back({"x", "web", "pp-x"});
    refused.memberships_known.resize(2);
    ASSERT_EQ(store->commit(refused).code, StoreErrc::kInvalidArgument);
    CommitBatch next;
    next.events.push_back(make_event("y", "app", v1::SOURCE_SUPPORT, 2));
    ASSERT_TRUE(store->commit(next).ok());
  }
  auto store = open_store();
  EXPECT_EQ(store->event_count(), 1);
  auto stats = store->product_stats();
  ASSERT_EQ(stats.size(), 1U);
  EXPECT_EQ(stats[0].product_id(), "app");
  std::vector<std::string> unsaved;
  ASSERT_TRUE(store
                  ->scan_unsaved_events([&](const v1::StoredEvent& e) {
                    unsaved.push_back(e.event().event_id());
                    return true;
                  })
                  .ok());
  EXPECT_EQ(unsaved, (std::vector<std::string>{"y"}));
}

TEST_F(StoreTest, OffsetsAndClusterIdRoundTrip) {
  {
    auto store = open_store();
    CommitBatch batch;
    batch.offsets = {{"topic", 0, 10}, {"topic", 11, 5}};
    batch.kafka_cluster_id = "cluster-A";
    ASSERT_TRUE(store->commit(batch).ok());
    batch.offsets = {{"topic", 0, 42}};
    batch.kafka_cluster_id.reset();
    ASSERT_TRUE(store->commit(batch).ok());
  }
  auto store = open_store();
  std::vector<InputOffset> offsets;
  ASSERT_TRUE(store->load_offsets(&offsets).ok());
  EXPECT_EQ(offsets, (std::vector<InputOffset>{{"topic", 0, 42}, {"topic", 11, 5}}));
  std::optional<std::string> cluster;
  ASSERT_TRUE(store->kafka_cluster_id(&cluster).ok());
  EXPECT_EQ(cluster, "cluster-A");
}

TEST_F(StoreTest, InputPartitionsRoundTrip) {
  {
    auto store = open_store();
    std::optional<std::int32_t> partitions;
    ASSERT_TRUE(store->input_partitions(&partitions).ok());
    EXPECT_FALSE(partitions.has_value());
    ASSERT_TRUE(store->record_input_partitions(48).ok());
  }
  auto store = open_store();
  std::optional<std::int32_t> partitions;
  ASSERT_TRUE(store->input_partitions(&partitions).ok());
  EXPECT_EQ(partitions, 48);
}

// Schema 2 keys begin with their own bytes (an event id, a time), not a partition: listing or
// dropping partitions there refuses, and deletes nothing.
TEST_F(StoreTest, PartitionsOfASchema2StoreAreRefused) {
  auto store = open_schema2_store();
  CommitBatch batch;
  batch.events.push_back(make_event("e-1", "app", v1::SOURCE_SUPPORT, 100));
  ASSERT_TRUE(store->commit(batch).ok());
  std::vector<std::int32_t> partitions;
  Status s = store->partitions_present(&partitions);
  EXPECT_EQ(s.code, StoreErrc::kSchemaMismatch);
  EXPECT_NE(s.message.find("schema 2"), std::string::npos) << s.message;
  for (std::int32_t partition : {0, 0x652d}) {  // 0x652d: the first two bytes of "e-1"
    s = store->drop_partition(partition);
    EXPECT_EQ(s.code, StoreErrc::kSchemaMismatch) << s.message;
  }
  std::optional<v1::StoredEvent> got;
  ASSERT_TRUE(store->get_event("e-1", &got).ok());
  EXPECT_TRUE(got.has_value());
  EXPECT_EQ(store->event_count(), 1);
}

// A schema 2 store keeps one arrival log: a scan of some partitions reads it once, so that
// each unsaved event is seen once however many partitions are named.
TEST_F(StoreTest, UnsavedEventsOfSomePartitionsOfASchema2StoreAreReadOnce) {
  auto store = open_schema2_store();
  CommitBatch batch;
  batch.events.push_back(make_event("e-1", "app", v1::SOURCE_SUPPORT, 100));
  batch.events.push_back(make_event("e-2", "web", v1::SOURCE_SUPPORT, 101));
  ASSERT_TRUE(store->commit(batch).ok());
  std::vector<std::string> seen;
  const std::vector<std::int32_t> partitions{1, 9};
  ASSERT_TRUE(store
                  ->scan_unsaved_events(partitions,
                                        [&](const v1::StoredEvent& e) {
                                          seen.push_back(e.event().event_id());
                                          return true;
                                        })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"e-1", "e-2"}));
  seen.clear();
  ASSERT_TRUE(store
                  ->scan_unsaved_events(std::span<const std::int32_t>(),
                                        [&](const v1::StoredEvent& e) {
                                          seen.push_back(e.event().event_id());
                                          return true;
                                        })
                  .ok());
  EXPECT_TRUE(seen.empty());
}

// Below the free space it keeps, the store refuses writes itself (kNoSpace, saying how much is
// free) rather than letting RocksDB meet a full disk; nothing of the refused batch is stored.
TEST_F(StoreTest, WritesAreRefusedBelowTheFreeSpaceReserve) {
  StoreOptions options;
  options.min_free_bytes = std::uint64_t{1} << 62;
  auto store = open_store(options);
  CommitBatch batch;
  batch.events.push_back(make_event("e-1", "billing", v1::SOURCE_SUPPORT, 1'780'000'000));
  const Status s = store->commit(batch);
  EXPECT_EQ(s.code, StoreErrc::kNoSpace) << s.to_string();
  EXPECT_NE(s.to_string().find("MiB free on the file system of"), std::string::npos)
      << s.to_string();
  EXPECT_EQ(store->event_count(), 0u);
  EXPECT_EQ(store->record_clustering("encoder = static\n").code, StoreErrc::kNoSpace);
}

TEST_F(StoreTest, ClusteringRecordSurvivesReopenAndIsReplaced) {
  {
    auto store = open_store();
    std::optional<std::string> clustering;
    ASSERT_TRUE(store->clustering(&clustering).ok());
    EXPECT_FALSE(clustering.has_value());
    ASSERT_TRUE(store->record_clustering("encoder = static\n").ok());
  }
  auto store = open_store();
  std::optional<std::string> clustering;
  ASSERT_TRUE(store->clustering(&clustering).ok());
  EXPECT_EQ(clustering, "encoder = static\n");
  ASSERT_TRUE(store->record_clustering("encoder = semantic\n").ok());
  ASSERT_TRUE(store->clustering(&clustering).ok());
  EXPECT_EQ(clustering, "encoder = semantic\n");
}

TEST_F(StoreTest, ScanByTimeIsOrderedAndBounded) {
  auto store = open_store();
  CommitBatch batch;
  batch.events.push_back(make_event("late", "app", v1::SOURCE_SUPPORT, 300));
  batch.events.push_back(make_event("b-early", "app", v1::SOURCE_SUPPORT, 100));
  batch.events.push_back(make_event("a-early", "web", v1::SOURCE_SUPPORT, 100));
  batch.events.push_back(make_event("middle", "app", v1::SOURCE_SUPPORT, 200));
  ASSERT_TRUE(store->commit(batch).ok());
  using std::chrono::seconds;
  using std::chrono::system_clock;
  std::vector<std::string> ids;
  ASSERT_TRUE(store
                  ->scan_events_by_time(system_clock::time_point(seconds(100)),
                                        system_clock::time_point(seconds(300)),
                                        [&](const v1::StoredEvent& e) {
                                          ids.push_back(e.event().event_id());
                                          return true;
                                        })
                  .ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"a-early", "b-early", "middle"}));

  // With a product filter: only that product's events, still in time order.
  ids.clear();
  ASSERT_TRUE(store
                  ->scan_events_by_time(
                      system_clock::time_point::min(), system_clock::time_point::max(),
                      [](std::string_view product) { return product == "app"; },
                      [&](const v1::StoredEvent& e) {
                        ids.push_back(e.event().event_id());
                        return true;
                      })
                  .ok());
  EXPECT_EQ(ids, (std::vector<std::string>{"b-early", "middle", "late"}));
}

// Every stored event carries its arrival number: 0, 1, 2, ... in commit order, across commits
// with and without checkpoints and across reopens, whatever the caller left in the field.
TEST_F(StoreTest, ArrivalNumbersArePersistedInCommitOrderAcrossReopens) {
  std::vector<std::string> committed;
  auto commit = [&](Store& store, std::vector<std::string> ids, bool checkpoint) {
    CommitBatch batch;
    std::int64_t t = 2'000'000'000;  // occurred_at runs backwards: numbers follow commits
    for (const auto& id : ids) {
      batch.events.push_back(make_event(id, id[0] == 'w' ? "web" : "app", v1::SOURCE_SUPPORT, t--));
      batch.events.back().set_arrival_seq(999);  // the store owns the numbering
      committed.push_back(id);
    }
    batch.aggregator_checkpoint = checkpoint;
    Status s = store.commit(batch);
    EXPECT_TRUE(s.ok()) << s.to_string();
  };
  auto arrivals = [&](const Store& store) {
    std::vector<std::uint64_t> out;
    for (const auto& id : committed) {
      std::optional<v1::StoredEvent> got;
      EXPECT_TRUE(store.get_event(id, &got).ok());
      EXPECT_TRUE(got.has_value() && got->has_arrival_seq()) << id;
      if (!got) continue;
      out.push_back(got->arrival_seq());
      EXPECT_EQ(got->event().event_id(), id);  // the rest of the record is intact
    }
    return out;
  };
  {
    auto store = open_store();
    commit(*store, {"c", "a", "w1"}, false);
    commit(*store, {}, true);
    commit(*store, {"b", "w0"}, true);
    EXPECT_EQ(arrivals(*store), (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  }
  auto store = open_store();
  commit(*store, {"a2", "w2"}, false);
  EXPECT_EQ(arrivals(*store), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6}));
  // A later commit that only moves memberships (as a rebuild does) keeps the numbers.
  CommitBatch moves;
  moves.memberships.push_back({"c", "app", "pp-x"});
  ASSERT_TRUE(store->commit(moves).ok());
  EXPECT_EQ(arrivals(*store), (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST_F(StoreTest, ScanByArrivalFollowsCommitOrderWithOlderRecordsFirst) {
  using std::chrono::seconds;
  using std::chrono::system_clock;
  // Records without arrival numbers exist only in stores of schema 2 and before.
  {
    auto store = open_schema2_store();
    CommitBatch first;
    first.events.push_back(make_event("late", "app", v1::SOURCE_SUPPORT, 300));
    first.events.push_back(make_event("w-mid", "web", v1::SOURCE_SUPPORT, 250));
    first.events.push_back(make_event("early", "app", v1::SOURCE_SUPPORT, 100));
    ASSERT_TRUE(store->commit(first).ok());
    CommitBatch second;
    second.events.push_back(make_event("middle", "app", v1::SOURCE_SUPPORT, 200));
    second.events.push_back(make_event("earliest", "app", v1::SOURCE_SUPPORT, 50));
    ASSERT_TRUE(store->commit(second).ok());
  }
  {
    // Two records as a build from before arrival numbers wrote them (no arrival_seq).
    RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    for (const auto& [id, secs] : {std::pair<std::string, std::int64_t>{"old-b", 400},
                                   std::pair<std::string, std::int64_t>{"old-a", 150}}) {
      const v1::StoredEvent old = make_event(id, "app", v1::SOURCE_SUPPORT, secs);
      ASSERT_FALSE(old.has_arrival_seq());
      ASSERT_TRUE(raw.db->Put({}, raw.family("events"), id, old.SerializeAsString()).ok());
      ASSERT_TRUE(
          raw.db->Put({}, raw.family("by_time"), keys::time_key(secs * 1'000'000, id), "app").ok());
    }
  }
  auto store = open_schema2_store();
  auto scan = [&](system_clock::time_point since, system_clock::time_point until,
                  std::function<bool(std::string_view)> want, std::size_t limit = 100) {
    std::vector<std::string> ids;
    Status s = store->scan_events_by_arrival(since, until, want, [&](const v1::StoredEvent& e) {
      ids.push_back(e.event().event_id());
      return ids.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    return ids;
  };
  const auto all_time_min = system_clock::time_point::min();
  const auto all_time_max = system_clock::time_point::max();
  EXPECT_EQ(
      scan(all_time_min, all_time_max, nullptr),
      (std::vector<std::string>{"old-a", "old-b", "late", "w-mid", "early", "middle", "earliest"}));
  EXPECT_EQ(scan(all_time_min, all_time_max, [](std::string_view p) { return p == "app"; }),
            (std::vector<std::string>{"old-a", "old-b", "late", "early", "middle", "earliest"}));
  EXPECT_EQ(
      scan(system_clock::time_point(seconds(100)), system_clock::time_point(seconds(300)), nullptr),
      (std::vector<std::string>{"old-a", "w-mid", "early", "middle"}));
  EXPECT_EQ(scan(all_time_min, all_time_max, nullptr, 3),
            (std::vector<std::string>{"old-a", "old-b", "late"}))
      << "fn returning false stops the scan";
  // New commits continue the numbering after the reopen.
  CommitBatch third;
  third.events.push_back(make_event("newest", "app", v1::SOURCE_SUPPORT, 10));
  ASSERT_TRUE(store->commit(third).ok());
  EXPECT_EQ(scan(all_time_min, all_time_max, nullptr).back(), "newest");
}

TEST_F(StoreTest, StateMembershipsSummariesAndOutbox) {
  auto store = open_store();
  CommitBatch batch;
  batch.aggregator_state = {{"p/app/meta", "m1"}, {"p/app/c/1", "c1"}, {"p/web/meta", "w"}};
  batch.memberships = {{"e-1", "app", "pp-1"}};
  v1::PainPointSummary summary;
  summary.set_id("pp-1");
  summary.set_product_id("app");
  summary.set_version(1);
  batch.summaries = {summary};
  batch.outbox = {summary};
  ASSERT_TRUE(store->commit(batch).ok());

  CommitBatch second;
  second.aggregator_state = {{"p/app/c/1", std::nullopt}};
  summary.set_version(2);
  second.summaries = {summary};
  second.outbox = {summary};
  ASSERT_TRUE(store->commit(second).ok());

  std::vector<std::string> keys;
  ASSERT_TRUE(store
                  ->scan_state("p/app/",
                               [&](std::string_view k, std::string_view) {
                                 keys.emplace_back(k);
                                 return true;
                               })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"p/app/meta"}));

  std::optional<std::string> member;
  ASSERT_TRUE(store->get_membership("e-1", &member).ok());
  EXPECT_EQ(member, "pp-1");

  std::vector<std::int64_t> versions;
  ASSERT_TRUE(store
                  ->scan_summaries("app",
                                   [&](const v1::PainPointSummary& s) {
                                     versions.push_back(s.version());
                                     return true;
                                   })
                  .ok());
  EXPECT_EQ(versions, (std::vector<std::int64_t>{2}));
  ASSERT_TRUE(store
                  ->scan_summaries("ap",
                                   [](const v1::PainPointSummary&) {
                                     ADD_FAILURE() << "prefix of another product matched";
                                     return true;
                                   })
                  .ok());

  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(store->read_outbox(10, &outbox).ok());
  ASSERT_EQ(outbox.size(), 2U);
  EXPECT_LT(outbox[0].sequence, outbox[1].sequence);
  EXPECT_EQ(outbox[1].version, 2);
  const std::vector<OutboxPosition> done = {{outbox[0].partition, outbox[0].sequence}};
  ASSERT_TRUE(store->delete_outbox(done).ok());
  outbox.clear();
  ASSERT_TRUE(store->read_outbox(10, &outbox).ok());
  ASSERT_EQ(outbox.size(), 1U);
  EXPECT_EQ(outbox[0].version, 2);
}

// The arrival log's event ids, in its order.
std::vector<std::string> unsaved(const Store& store) {
  std::vector<std::string> ids;
  Status s = store.scan_unsaved_events([&](const v1::StoredEvent& e) {
    ids.push_back(e.event().event_id());
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return ids;
}

TEST_F(StoreTest, ArrivalLogHoldsTheEventsSinceTheLastCheckpointInCommitOrder) {
  auto commit = [](Store& store, std::vector<std::string> ids, bool checkpoint) {
    CommitBatch batch;
    // Occurred-at order is the reverse of arrival order: the log must follow arrival.
    std::int64_t t = 2'000'000'000;
    for (const auto& id : ids) batch.events.push_back(make_event(id, "p", v1::SOURCE_SUPPORT, t--));
    batch.aggregator_checkpoint = checkpoint;
    if (checkpoint) batch.aggregator_state.push_back({"agg/p/m", std::string("state")});
    Status s = store.commit(batch);
    EXPECT_TRUE(s.ok()) << s.to_string();
  };
  {
    auto store = open_store();
    EXPECT_TRUE(unsaved(*store).empty());
    commit(*store, {"b", "a"}, false);
    commit(*store, {"d", "c"}, false);
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b", "a", "d", "c"}));
    commit(*store, {"e"}, true);
    EXPECT_TRUE(unsaved(*store).empty()) << "a checkpoint covers everything stored before it";
    commit(*store, {"g", "f"}, false);
  }
  auto store = open_store();  // survives a reopen
  EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"g", "f"}));
  EXPECT_EQ(store->event_count(), 7);
  commit(*store, {}, true);
  EXPECT_TRUE(unsaved(*store).empty()) << "a checkpoint without events still covers the log";
}

// A checkpoint spread over batches saves a share of the products per commit: exactly their
// entries leave what recovery replays, their events of that commit are not logged, and the
// others' stay in arrival order, also after a reopen (the index by product is rebuilt from the log).
TEST_F(StoreTest, SavingSomeProductsStateDropsOnlyTheirArrivalLogEntries) {
  {
    auto store = open_store();
    commit_saving(*store, {{"a1", "a"}, {"b1", "b"}, {"c1", "c"}, {"a2", "a"}}, {});
    commit_saving(*store, {{"b2", "b"}, {"a3", "a"}}, {"a"});
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b1", "c1", "b2"}))
        << "a's entries go, and a3 (saved with its commit) is never logged";
    commit_saving(*store, {{"a4", "a"}, {"c2", "c"}}, {});
  }
  auto store = open_store();
  EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b1", "c1", "b2", "a4", "c2"}));
  commit_saving(*store, {{"d1", "d"}}, {"c", "nothing-logged"});
  EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b1", "b2", "a4", "d1"}))
      << "the index survives the reopen";
  commit_saving(*store, {}, {"a", "b", "d"});
  EXPECT_TRUE(unsaved(*store).empty());
}

// The event ids the arrival log holds on disk, covered or not (the store must be closed).
std::vector<std::string> logged_on_disk(const fs::path& dir) {
  RawRocks raw(dir);
  EXPECT_TRUE(raw.open());
  std::vector<std::string> ids;
  std::unique_ptr<rocksdb::Iterator> it(
      raw.db->NewIterator({}, raw.family(std::string(kArrivalLogFamily) + "@p")));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ids.push_back(it->value().ToString());
  return ids;
}

// Saving a product's state does not delete its entries one by one: its statistics record what
// the saved state covers, and the log is cut by one range deletion below the oldest entry that
// is still needed. Covered entries left on disk are skipped by recovery, also after a reopen.
TEST_F(StoreTest, SavedProductsEntriesLeaveTheLogWithOneRangeDeletion) {
  {
    auto store = open_store();
    commit_saving(*store, {{"a1", "a"}, {"b1", "b"}, {"a2", "a"}, {"c1", "c"}}, {});
    commit_saving(*store, {{"b2", "b"}}, {"a"});
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b1", "c1", "b2"}));
  }
  EXPECT_EQ(logged_on_disk(dir_), (std::vector<std::string>{"b1", "a2", "c1", "b2"}))
      << "a1, below b1 (the oldest entry needed), is deleted; a2 stays, covered";
  {
    auto store = open_store();
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"b1", "c1", "b2"}))
        << "a's statistics say a2 is covered";
    commit_saving(*store, {{"a3", "a"}}, {"b"});
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"c1", "a3"}));
  }
  EXPECT_EQ(logged_on_disk(dir_), (std::vector<std::string>{"c1", "b2", "a3"}));
  {
    auto store = open_store();
    commit_saving(*store, {{"b3", "b"}}, {"c"});
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"a3", "b3"}));
    commit_saving(*store, {}, {"a", "b"});
    EXPECT_TRUE(unsaved(*store).empty());
  }
  EXPECT_TRUE(logged_on_disk(dir_).empty()) << "every entry is covered: the whole log goes";
}

TEST_F(StoreTest, PublishedSummariesGoToTheOutboxOnce) {
  auto store = open_store();
  CommitBatch batch;
  v1::PainPointSummary summary;
  summary.set_id("pp-1");
  summary.set_product_id("p");
  summary.set_status(v1::STATUS_ACTIVE);
  summary.set_version(3);
  // Fields of every wire type around the two the outbox reads out (id, version).
  summary.set_label("export fails");
  summary.add_keywords("export");
  summary.add_exemplars()->set_text("the export fails");
  summary.set_event_count(12);
  summary.add_daily_counts(4);
  summary.add_daily_counts(8);
  summary.mutable_last_seen()->set_seconds(1'700'000'000);
  summary.set_trend(0.5);
  summary.set_severity(-1.25);
  batch.summaries = {summary};
  batch.publish_summaries = true;
  ASSERT_TRUE(store->commit(batch).ok());
  std::vector<OutboxEntry> outbox;
  ASSERT_TRUE(store->read_outbox(10, &outbox).ok());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].summary, summary.SerializeAsString());
  EXPECT_EQ(outbox[0].id, "pp-1");
  EXPECT_EQ(outbox[0].version, 3);
  std::optional<v1::PainPointSummary> stored;
  ASSERT_TRUE(store->get_summary("pp-1", &stored).ok());
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->version(), 3);
}

// Member ids of a pain point as the index lists them.
std::vector<std::string> members_of(const Store& store, const std::string& pain_point) {
  std::vector<std::string> out;
  const std::vector<std::string> ids = {pain_point};
  Status s = store.scan_members(ids, "", [&](const v1::StoredEvent& e, std::string_view) {
    out.push_back(e.event().event_id());
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

TEST_F(StoreTest, MembershipsListByEventTimeInAnyOrderOfTheBatch) {
  // A membership takes its event's time from the batch: from the event at the same position
  // when the ids match, else by id.
  auto store = open_store();
  CommitBatch batch;
  batch.events.push_back(make_event("late", "app", v1::SOURCE_SUPPORT, 300));
  batch.events.push_back(make_event("early", "app", v1::SOURCE_SUPPORT, 100));
  batch.events.push_back(make_event("middle", "app", v1::SOURCE_SUPPORT, 200));
  batch.memberships.push_back({"early", "app", "pp-1"});
  batch.memberships.push_back({"early-twin", "app", "pp-1"});  // not in the batch: no index entry
  batch.memberships.push_back({"middle", "app", "pp-1"});
  batch.memberships.push_back({"late", "app", "pp-1"});
  ASSERT_TRUE(store->commit(batch).ok());
  EXPECT_EQ(members_of(*store, "pp-1"), (std::vector<std::string>{"late", "middle", "early"}));
}

TEST_F(StoreTest, RebuildWritesMoveAndRemoveMemberships) {
  auto store = open_store();
  CommitBatch first;
  first.events.push_back(make_event("a", "app", v1::SOURCE_SUPPORT, 100));
  first.events.push_back(make_event("b", "app", v1::SOURCE_SUPPORT, 200));
  first.events.push_back(make_event("c", "app", v1::SOURCE_SUPPORT, 300));
  for (const char* id : {"a", "b", "c"}) first.memberships.push_back({id, "app", "pp-old"});
  ASSERT_TRUE(store->commit(first).ok());

  std::vector<std::optional<std::string>> found;
  const std::vector<std::string_view> ids = {"a", "zz", "c"};
  ASSERT_TRUE(store->get_memberships(ids, &found).ok());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0], "pp-old");
  EXPECT_FALSE(found[1].has_value());
  EXPECT_EQ(found[2], "pp-old");

  // "a" moves with what the caller knows (no reads), "b" without, "c" leaves every pain point.
  CommitBatch rebuild;
  rebuild.memberships.push_back({"a", "app", "pp-new"});
  rebuild.memberships_known.emplace_back(KnownMembership{100'000'000, "pp-old"});
  rebuild.memberships.push_back({"b", "app", "pp-new"});
  rebuild.memberships_known.emplace_back(std::nullopt);
  rebuild.removed_memberships.push_back("c");
  ASSERT_TRUE(store->commit(rebuild).ok());
  EXPECT_EQ(members_of(*store, "pp-new"), (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(members_of(*store, "pp-old").empty());
  std::optional<std::string> c;
  ASSERT_TRUE(store->get_membership("c", &c).ok());
  EXPECT_FALSE(c.has_value());
  std::optional<v1::StoredEvent> kept;
  ASSERT_TRUE(store->get_event("c", &kept).ok());
  EXPECT_TRUE(kept.has_value());  // the event itself stays

  CommitBatch mismatched;
  mismatched.memberships.push_back({"a", "app", "pp-x"});
  mismatched.memberships_known.resize(2);
  EXPECT_EQ(store->commit(mismatched).code, StoreErrc::kInvalidArgument);
}

TEST_F(StoreTest, ProductPartitionsMustCoverEveryProductOfTheBatch) {
  auto store = open_store();
  CommitBatch batch;
  batch.events.push_back(make_event("e-1", "app", v1::SOURCE_SUPPORT, 100));
  batch.events.back().set_input_partition(3);
  batch.aggregator_state = {{"agg/app/m", "m", "app"},
                            {"alert-episode/r/pp-3", "1 open", "mobile"}};
  batch.memberships = {{"e-1", "app", "pp-1"}};
  v1::PainPointSummary summary;
  summary.set_id("pp-2");
  summary.set_product_id("web");
  summary.set_version(1);
  batch.outbox = {summary};

  auto refused = [&](std::map<std::string, std::int32_t, std::less<>> partitions) {
    batch.product_partitions = std::move(partitions);
    const Status s = store->commit(batch);
    EXPECT_EQ(s.code, StoreErrc::kInvalidArgument) << s.to_string();
    return s.to_string();
  };
  EXPECT_NE(refused({{"app", 3}, {"mobile", 0}}).find("no partition for product web"),
            std::string::npos);
  EXPECT_NE(refused({{"app", 3}, {"web", 1}}).find("no partition for product mobile"),
            std::string::npos);
  EXPECT_NE(refused({{"app", 5}, {"mobile", 0}, {"web", 1}}).find("e-1"), std::string::npos);
  EXPECT_NE(refused({{"app", 3}, {"mobile", 0}, {"web", -1}}).find("invalid"), std::string::npos);
  std::optional<v1::StoredEvent> got;
  ASSERT_TRUE(store->get_event("e-1", &got).ok());
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(store->event_count(), 0);

  batch.product_partitions = {{"app", 3}, {"mobile", 0}, {"web", 1}};
  ASSERT_TRUE(store->commit(batch).ok());
  ASSERT_TRUE(store->get_event("e-1", &got).ok());
  EXPECT_TRUE(got.has_value());
  EXPECT_EQ(store->event_count(), 1);
}

TEST_F(StoreTest, SecondOpenOfALiveDirectoryIsRefused) {
  auto store = open_store();
  std::unique_ptr<Store> second;
  Status s = Store::open(dir_, {}, &second);
  EXPECT_EQ(s.code, StoreErrc::kLocked) << s.to_string();
  EXPECT_EQ(second, nullptr);
}

TEST_F(StoreTest, OtherSchemaVersionIsRefusedWithAClearMessage) {
  { auto store = open_store(); }
  {
    // Rewrite the version marker with RocksDB directly, as an older build would have left it.
    RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    ASSERT_TRUE(raw.db->Put({}, "schema_version", std::string("\0\0\0\x63", 4)).ok());
  }
  std::unique_ptr<Store> store;
  Status s = Store::open(dir_, {}, &store);
  EXPECT_EQ(s.code, StoreErrc::kSchemaMismatch);
  EXPECT_NE(s.message.find("schema version 99"), std::string::npos) << s.message;
}

// Schema 3 differs from 4 only in what its arrival log may hold: a read-only open reads it as it
// is, a read-write one stamps it 4, which a schema 3 build then refuses.
TEST_F(StoreTest, ASchema3DirectoryIsReadAsItIsAndStampedFourOnAReadWriteOpen) {
  {
    auto store = open_store();
    commit_saving(*store, {{"a1", "a"}, {"b1", "b"}}, {});
  }
  const auto stored_version = [this] {
    RawRocks raw(dir_);
    EXPECT_TRUE(raw.open());
    std::string version;
    EXPECT_TRUE(raw.db->Get({}, "schema_version", &version).ok());
    return keys::read_be32(version).value_or(0);
  };
  EXPECT_EQ(stored_version(), kSchemaVersion);
  {
    RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    ASSERT_TRUE(raw.db->Put({}, "schema_version", std::string("\0\0\0\x03", 4)).ok());
  }
  {
    StoreOptions read_only;
    read_only.read_only = true;
    std::unique_ptr<Store> store;
    const Status s = Store::open(dir_, read_only, &store);
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"a1", "b1"}));
  }
  EXPECT_EQ(stored_version(), kPartitionedSchemaVersion) << "a read-only open writes nothing";
  {
    auto store = open_store();
    EXPECT_EQ(unsaved(*store), (std::vector<std::string>{"a1", "b1"}));
  }
  EXPECT_EQ(stored_version(), 4U);
}

// A process killed at a random moment leaves, for every batch, either all of it (events and the
// offset after them) or none of it: the stored offset always equals the number of stored events.
TEST_F(StoreTest, OffsetsAreAtomicWithTheEventsAcrossAKill) {
  for (int round = 0; round < 3; ++round) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(ready[0]);
      std::unique_ptr<Store> store;
      if (!Store::open(dir_, {}, &store).ok()) ::_exit(2);
      std::vector<InputOffset> offsets;
      if (!store->load_offsets(&offsets).ok()) ::_exit(3);
      std::int64_t next = offsets.empty() ? 0 : offsets[0].next_offset;
      for (;;) {
        CommitBatch batch;
        for (int i = 0; i < 50; ++i, ++next) {
          batch.events.push_back(
              make_event("e-" + std::to_string(next), "app", v1::SOURCE_SUPPORT, next, next));
        }
        batch.offsets = {{"t", 0, next}};
        if (!store->commit(batch).ok()) ::_exit(4);
        if (ready[1] >= 0) {  // tell the parent that commits are under way
          if (::write(ready[1], "x", 1) != 1) ::_exit(5);
          ::close(ready[1]);
          ready[1] = -1;
        }
      }
    }
    ::close(ready[1]);
    char byte = 0;
    ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "child died before its first commit";
    ::close(ready[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + 60 * round));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);

    auto store = open_store();
    std::vector<InputOffset> offsets;
    ASSERT_TRUE(store->load_offsets(&offsets).ok());
    ASSERT_EQ(offsets.size(), 1U);
    const std::int64_t next = offsets[0].next_offset;
    EXPECT_EQ(store->event_count(), next);
    std::optional<v1::StoredEvent> event;
    if (next > 0) {
      ASSERT_TRUE(store->get_event("e-" + std::to_string(next - 1), &event).ok());
      EXPECT_TRUE(event.has_value());
    }
    ASSERT_TRUE(store->get_event("e-" + std::to_string(next), &event).ok());
    EXPECT_FALSE(event.has_value());
  }
}

}  // namespace
}  // namespace painpoint::store

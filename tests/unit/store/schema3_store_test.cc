// The store in the per-partition layout (schema 3): a schema 2 directory upgraded by a
// read-write open answers as before, an interrupted upgrade finishes at the next open, each
// partition keeps its own counters, and dropping a partition leaves the others untouched.

#include <gtest/gtest.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "painpoint/store/store.h"
#include "partition_upgrade.h"
#include "schema2_store.h"

namespace painpoint::store {
namespace {

// schema2_test_rule() as the public rule Store::open takes.
PartitionRule public_test_rule() {
  const partition_assignment::PartitionRule rule = schema2_test_rule();
  PartitionRule out;
  out.of_product = [rule](std::string_view product, std::int32_t) {
    return rule.of_product(product);
  };
  out.state_key_owner = rule.state_key_owner;
  out.partition_count = 301;
  return out;
}

// What the API, recovery and the publisher read from a store, in an order that does not depend
// on the layout.
std::vector<std::string> answers(const Store& store) {
  std::vector<std::string> out;
  auto add = [&out](std::string line) { out.push_back(std::move(line)); };
  for (const char* id : {"e1", "e2", "e3", "e4", "e5", "e6", "e-none"}) {
    std::optional<v1::StoredEvent> event;
    EXPECT_TRUE(store.get_event(id, &event).ok());
    std::optional<std::string> member;
    EXPECT_TRUE(store.get_membership(id, &member).ok());
    add(std::string("event ") + id + " " + (event ? event->event().product_id() : "-") + " " +
        member.value_or("-"));
  }
  for (const char* product : {"alpha", "beta", "gamma", "delta"}) {
    PainPointPage page;
    EXPECT_TRUE(store.list_active_pain_points(product, ListingOrder::kEvents, 0, 10, &page).ok());
    std::string line = std::string("list ") + product + " " + std::to_string(page.active_total);
    for (const auto& s : page.summaries) line += " " + s.id();
    add(line);
    const auto stats = store.product_stats(product);
    add(std::string("stats ") + product + " " + (stats ? stats->ShortDebugString() : "-"));
    EXPECT_TRUE(store
                    .scan_summaries(product,
                                    [&](const v1::PainPointSummary& s) {
                                      add("summary " + s.id() + " v" + std::to_string(s.version()));
                                      return true;
                                    })
                    .ok());
  }
  for (const std::vector<std::string>& ids :
       {std::vector<std::string>{"pp-alpha"}, std::vector<std::string>{"pp-beta", "pp-b2"}}) {
    std::string line = "members " + ids[0];
    EXPECT_TRUE(store
                    .scan_members(ids, "",
                                  [&](const v1::StoredEvent& e, std::string_view) {
                                    line += " " + e.event().event_id();
                                    return true;
                                  })
                    .ok());
    add(line);
  }
  std::optional<std::string> state;
  EXPECT_TRUE(store.get_state("agg-merged/pp-b2", &state).ok());
  add("state merged " + state.value_or("-"));
  std::set<std::string> state_keys;
  EXPECT_TRUE(store
                  .scan_state("agg",
                              [&](std::string_view key, std::string_view value) {
                                state_keys.insert(std::string(key) + "=" + std::string(value));
                                return true;
                              })
                  .ok());
  for (const auto& key : state_keys) add("state " + key);
  std::string by_time = "by time";
  EXPECT_TRUE(store
                  .scan_events_by_time(std::chrono::system_clock::time_point{},
                                       std::chrono::system_clock::time_point::max(),
                                       [&](const v1::StoredEvent& e) {
                                         by_time += " " + e.event().event_id();
                                         return true;
                                       })
                  .ok());
  add(by_time);
  // Recovery may merge the partitions in any interleaving; each product keeps its order.
  std::map<std::string, std::string> unsaved;
  EXPECT_TRUE(store
                  .scan_unsaved_events([&](const v1::StoredEvent& e) {
                    unsaved[e.event().product_id()] += " " + e.event().event_id();
                    return true;
                  })
                  .ok());
  for (const auto& [product, ids] : unsaved) add("unsaved " + product + ids);
  std::vector<OutboxEntry> outbox;
  EXPECT_TRUE(store.read_outbox(100, &outbox).ok());
  std::multiset<std::string> published;
  for (const auto& entry : outbox) published.insert(entry.id);
  for (const auto& id : published) add("outbox " + id);
  std::vector<InputOffset> offsets;
  EXPECT_TRUE(store.load_offsets(&offsets).ok());
  std::sort(offsets.begin(), offsets.end(),
            [](const InputOffset& a, const InputOffset& b) { return a.partition < b.partition; });
  for (const auto& o : offsets) {
    add("offset " + std::to_string(o.partition) + " " + std::to_string(o.next_offset));
  }
  bool fired = false;
  EXPECT_TRUE(store.alert_fired("al-1", &fired).ok());
  add(std::string("alert ") + (fired ? "fired" : "-"));
  add("events " + std::to_string(store.event_count()));
  return out;
}

class Schema3StoreTest : public Schema2StoreTest {
 protected:
  std::unique_ptr<Store> open_upgrading() {
    StoreOptions options;
    options.upgrade_rule = public_test_rule();
    return open_store(options);
  }

  static v1::StoredEvent event_in(const std::string& id, const std::string& product,
                                  std::int32_t partition, std::int64_t seconds) {
    v1::StoredEvent e = make_event(id, product, v1::SOURCE_CUSTOMER, seconds);
    e.set_input_partition(partition);
    return e;
  }

  // Commits `events` (id, product) and saves the aggregator state of the products `saved`, each
  // product in its partition of `partition_of`.
  static void commit_saving(Store& store, const std::map<std::string, std::int32_t>& partition_of,
                            const std::vector<std::pair<std::string, std::string>>& events,
                            std::vector<std::string> saved) {
    CommitBatch batch;
    for (const auto& [id, product] : events) {
      batch.events.push_back(event_in(id, product, partition_of.at(product), 100));
      batch.product_partitions.emplace(product, partition_of.at(product));
    }
    for (const auto& product : saved) {
      batch.aggregator_state.push_back({"agg/" + product + "/m", std::string("state"), product});
      batch.product_partitions.emplace(product, partition_of.at(product));
    }
    batch.state_saved_for = std::move(saved);
    const Status s = store.commit(batch);
    EXPECT_TRUE(s.ok()) << s.to_string();
  }

  std::vector<std::string> schema2_answers() {
    auto store = open_schema2_store();
    return answers(*store);
  }
};

TEST_F(Schema3StoreTest, AReadWriteOpenUpgradesASchema2StoreThatAnswersTheSame) {
  write_schema2_store();
  const std::vector<std::string> before = schema2_answers();

  StoreOptions read_only;
  read_only.read_only = true;
  std::unique_ptr<Store> refused;
  Status s = Store::open(dir_, read_only, &refused);
  EXPECT_EQ(s.code, StoreErrc::kSchemaMismatch) << s.to_string();
  EXPECT_NE(s.message.find("read-write once"), std::string::npos) << s.message;
  s = Store::open(dir_, {}, &refused);
  EXPECT_EQ(s.code, StoreErrc::kInvalidArgument) << "no rule given: " << s.to_string();

  {
    auto store = open_upgrading();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(answers(*store), before);
    std::vector<std::int32_t> partitions;
    ASSERT_TRUE(store->partitions_present(&partitions).ok());
    EXPECT_EQ(partitions, (std::vector<std::int32_t>{0, 2, 300}));
  }
  read_only.read_only = true;
  auto store = open_store(read_only);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(answers(*store), before);
}

// A crash during the copy: the next read-write open finishes the upgrade.
TEST_F(Schema3StoreTest, AnInterruptedUpgradeFinishesAtTheNextOpen) {
  write_schema2_store();
  const std::vector<std::string> before = schema2_answers();
  partition_upgrade::UpgradeLimits limits;
  limits.copy.records_per_batch = 2;
  limits.copy.max_batches = 3;
  partition_upgrade::UpgradeStats stats;
  ASSERT_TRUE(partition_upgrade::run(dir_, schema2_test_rule(), limits, &stats).IsIncomplete());
  StoreOptions read_only;
  read_only.read_only = true;
  std::unique_ptr<Store> refused;
  EXPECT_EQ(Store::open(dir_, read_only, &refused).code, StoreErrc::kSchemaMismatch);
  auto store = open_upgrading();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(answers(*store), before);
}

// Arrival numbers and outbox sequences continue per partition, above the migrated ones.
TEST_F(Schema3StoreTest, CountersContinuePerPartitionAfterTheUpgrade) {
  write_schema2_store();
  auto store = open_upgrading();
  ASSERT_NE(store, nullptr);
  const auto sequences_before = store->outbox_next_sequences();
  EXPECT_EQ(sequences_before, (std::map<std::int32_t, std::uint64_t>{{0, 5}, {2, 5}, {300, 5}}));
  CommitBatch batch;
  batch.events = {make_event("e7", "beta", v1::SOURCE_SALES, 1'700'000'100)};
  batch.events[0].set_input_partition(2);
  batch.product_partitions = {{"beta", 2}};
  batch.summaries = {summary("pp-beta", "beta")};
  batch.summaries[0].set_version(2);
  batch.publish_summaries = true;
  ASSERT_TRUE(store->commit(batch).ok());
  std::optional<v1::StoredEvent> e7;
  ASSERT_TRUE(store->get_event("e7", &e7).ok());
  ASSERT_TRUE(e7.has_value());
  EXPECT_EQ(e7->arrival_seq(), 6u) << "above the 6 events numbered before the upgrade";
  EXPECT_EQ(store->event_count(), 7);
  auto sequences = store->outbox_next_sequences();
  EXPECT_EQ(sequences[2], 6u);
  EXPECT_EQ(sequences[0], 5u);
  std::vector<OutboxEntry> entries;
  ASSERT_TRUE(store->read_outbox_after({2, 4}, 10, &entries).ok());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].partition, 2);
  EXPECT_EQ(entries[0].sequence, 5u);
  EXPECT_EQ(entries[0].version, 2);

  // A product stays in its partition.
  CommitBatch moved;
  moved.events = {make_event("e8", "beta", v1::SOURCE_SALES, 1'700'000'101)};
  moved.events[0].set_input_partition(3);
  moved.product_partitions = {{"beta", 3}};
  EXPECT_EQ(store->commit(moved).code, StoreErrc::kInvalidArgument);
  // A batch naming partitions must name the partition of each product it writes.
  CommitBatch unknown;
  unknown.summaries = {summary("pp-new", "new-product")};
  unknown.product_partitions = {{"beta", 2}};
  EXPECT_EQ(store->commit(unknown).code, StoreErrc::kInvalidArgument);
}


// drop_partition() on a schema 3 store: the partition's events, memberships, pain points, state,
// outbox, counters and offset go in one write; the other partition keeps all of its own.
TEST_F(Schema3StoreTest, DroppingAPartitionLeavesTheOthersUntouched) {
  auto store = open_store();
  for (std::int32_t round = 0; round < 2; ++round) {
    CommitBatch batch;
    const std::string r = std::to_string(round);
    batch.events = {event_in("a" + r, "apps", 1, 100 + round),
                    event_in("w" + r, "web", 4, 200 + round)};
    batch.product_partitions = {{"apps", 1}, {"web", 4}};
    batch.memberships = {{"a" + r, "apps", "pp-apps"}, {"w" + r, "web", "pp-web"}};
    batch.summaries = {summary("pp-apps", "apps"), summary("pp-web", "web")};
    batch.publish_summaries = true;
    batch.aggregator_state = {{"agg/apps/x" + r, "1", "apps"}, {"agg/web/x" + r, "1", "web"}};
    batch.offsets = {{"painpoint.feedback-by-product", 1, round + 1},
                     {"painpoint.feedback-by-product", 4, round + 1}};
    ASSERT_TRUE(store->commit(batch).ok());
  }
  std::vector<std::int32_t> partitions;
  ASSERT_TRUE(store->partitions_present(&partitions).ok());
  EXPECT_EQ(partitions, (std::vector<std::int32_t>{1, 4}));
  EXPECT_EQ(store->event_count(), 4);
  std::optional<v1::StoredEvent> event;
  ASSERT_TRUE(store->get_event("w1", &event).ok());
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->arrival_seq(), 1u) << "arrival numbers count per partition";

  ASSERT_TRUE(store->drop_partition(1).ok());
  auto check = [](const Store& s) {
    std::vector<std::int32_t> present;
    ASSERT_TRUE(s.partitions_present(&present).ok());
    EXPECT_EQ(present, (std::vector<std::int32_t>{4}));
    for (std::int32_t p : {0, 1, 3, 4, 5}) {
      bool found = false;
      ASSERT_TRUE(s.partition_present(p, &found).ok());
      EXPECT_EQ(found, p == 4) << p;
    }
    EXPECT_EQ(s.event_count(), 2);
    EXPECT_FALSE(s.product_stats("apps").has_value());
    ASSERT_TRUE(s.product_stats("web").has_value());
    for (const char* id : {"a0", "a1", "w0", "w1"}) {
      std::optional<v1::StoredEvent> e;
      ASSERT_TRUE(s.get_event(id, &e).ok());
      EXPECT_EQ(e.has_value(), id[0] == 'w') << id;
    }
    std::optional<v1::PainPointSummary> summary;
    ASSERT_TRUE(s.get_summary("pp-apps", &summary).ok());
    EXPECT_FALSE(summary.has_value());
    ASSERT_TRUE(s.get_summary("pp-web", &summary).ok());
    EXPECT_TRUE(summary.has_value());
    // The publisher's read names the partition: found there only.
    ASSERT_TRUE(s.get_summary(4, "pp-web", &summary).ok());
    ASSERT_TRUE(summary.has_value());
    EXPECT_EQ(summary->product_id(), "web");
    ASSERT_TRUE(s.get_summary(1, "pp-web", &summary).ok());
    EXPECT_FALSE(summary.has_value());
    ASSERT_TRUE(s.get_summary(1, "pp-apps", &summary).ok());
    EXPECT_FALSE(summary.has_value());
    std::vector<OutboxEntry> outbox;
    ASSERT_TRUE(s.read_outbox(10, &outbox).ok());
    ASSERT_EQ(outbox.size(), 2u);
    for (const auto& entry : outbox) EXPECT_EQ(entry.partition, 4);
    EXPECT_EQ(s.outbox_next_sequences(), (std::map<std::int32_t, std::uint64_t>{{4, 3}}));
    std::vector<std::string> state;
    ASSERT_TRUE(s.scan_state("agg/", [&](std::string_view key, std::string_view) {
                   state.emplace_back(key);
                   return true;
                 }).ok());
    EXPECT_EQ(state, (std::vector<std::string>{"agg/web/x0", "agg/web/x1"}));
    std::vector<InputOffset> offsets;
    ASSERT_TRUE(s.load_offsets(&offsets).ok());
    ASSERT_EQ(offsets.size(), 1u);
    EXPECT_EQ(offsets[0].partition, 4);
    EXPECT_EQ(offsets[0].next_offset, 2);
    std::string members;
    ASSERT_TRUE(s.scan_members(std::vector<std::string>{"pp-web"}, "",
                               [&](const v1::StoredEvent& e, std::string_view) {
                                 members += e.event().event_id();
                                 return true;
                               }).ok());
    EXPECT_EQ(members, "w1w0");
  };
  check(*store);
  store.reset();
  store = open_store();
  check(*store);
  std::vector<std::string_view> ids = {"a0", "w0"};
  std::vector<std::int32_t> in = {1, 4};
  std::vector<std::size_t> fresh;
  ASSERT_TRUE(store->filter_new_events(ids, in, &fresh).ok());
  EXPECT_EQ(fresh, (std::vector<std::size_t>{0})) << "a0's partition was dropped";
}

// A checkpoint spread over batches in schema 3: the arrival log's entries are under their
// partitions, the index by product is rebuilt from every partition at a reopen, and a dropped
// partition's products leave it (their keys would otherwise name the partition's next events,
// whose arrival numbers start again from 0).
TEST_F(Schema3StoreTest, SavingSomeProductsStateDropsTheirArrivalLogEntriesInEachPartition) {
  const std::map<std::string, std::int32_t> partition_of = {
      {"apps", 1}, {"web", 4}, {"api", 9}, {"api-2", 9}};
  auto commit = [&](Store& store, std::vector<std::pair<std::string, std::string>> events,
                    std::vector<std::string> saved) {
    commit_saving(store, partition_of, events, std::move(saved));
  };
  auto unsaved = [](const Store& store) {
    std::set<std::string> ids;
    EXPECT_TRUE(store
                    .scan_unsaved_events([&](const v1::StoredEvent& e) {
                      ids.insert(e.event().event_id());
                      return true;
                    })
                    .ok());
    return ids;
  };
  {
    auto store = open_store();
    commit(*store, {{"a1", "apps"}, {"w1", "web"}, {"p1", "api"}, {"w2", "web"}}, {});
    commit(*store, {{"a2", "apps"}}, {"web"});
    EXPECT_EQ(unsaved(*store), (std::set<std::string>{"a1", "a2", "p1"}));
  }
  auto store = open_store();
  EXPECT_EQ(unsaved(*store), (std::set<std::string>{"a1", "a2", "p1"}));
  commit(*store, {{"w3", "web"}}, {"apps"});
  EXPECT_EQ(unsaved(*store), (std::set<std::string>{"p1", "w3"}))
      << "the index of every partition survives the reopen";

  ASSERT_TRUE(store->drop_partition(9).ok());
  EXPECT_EQ(unsaved(*store), (std::set<std::string>{"w3"}));
  // The dropped partition comes back with another product: its first arrival number is 0, the
  // number of api's dropped entry p1.
  commit(*store, {{"q1", "api-2"}}, {});
  EXPECT_EQ(unsaved(*store), (std::set<std::string>{"w3", "q1"}));
  commit(*store, {}, {"api"});
  EXPECT_EQ(unsaved(*store), (std::set<std::string>{"w3", "q1"}))
      << "saving the dropped product deletes none of the new product's entries";
}

// A restore that ends reads its partitions' arrival logs only (the others may be half restored):
// the scan of some partitions lists theirs, and reloading the counters of some partitions keeps
// the other partitions' index entries, so that saving their products still deletes them.
TEST_F(Schema3StoreTest, ARestoredPartitionsArrivalLogIsReadAndIndexedAloneKeepingTheOthers) {
  const std::map<std::string, std::int32_t> partition_of = {{"apps", 1}, {"web", 4}, {"api", 9}};
  auto commit = [&](std::vector<std::pair<std::string, std::string>> events,
                    std::vector<std::string> saved, Store& store) {
    commit_saving(store, partition_of, events, std::move(saved));
  };
  auto unsaved = [](const Store& store, std::vector<std::int32_t> partitions) {
    std::vector<std::string> ids;
    EXPECT_TRUE(store
                    .scan_unsaved_events(partitions,
                                         [&](const v1::StoredEvent& e) {
                                           ids.push_back(e.event().event_id());
                                           return true;
                                         })
                    .ok());
    return ids;
  };
  auto store = open_store();
  commit({{"a1", "apps"}, {"w1", "web"}, {"p1", "api"}, {"w2", "web"}}, {}, *store);
  EXPECT_EQ(unsaved(*store, {4}), (std::vector<std::string>{"w1", "w2"}));
  EXPECT_EQ(unsaved(*store, {1, 9}), (std::vector<std::string>{"a1", "p1"}));
  EXPECT_TRUE(unsaved(*store, {2}).empty());

  const std::vector<std::int32_t> restored{4};
  ASSERT_TRUE(store->reload_counters(restored).ok());
  ASSERT_TRUE(store->reload_counters(restored).ok());
  EXPECT_EQ(store->event_count(), 4);
  commit({}, {"apps", "web", "api"}, *store);
  EXPECT_TRUE(unsaved(*store, {1, 4, 9}).empty())
      << "the entries of the partitions not reindexed stay in the index";
}

// A partition's read stops at its last entry: stepping past it would visit every deletion
// tombstone before the next live key (the following partitions' published entries), which made
// the publisher's read rounds take tens of milliseconds at 10,000 events/s.
TEST_F(Schema3StoreTest, OutboxReadsStopAtAPartitionsLastEntryBeforeTheNextOnesTombstones) {
  auto store = open_store();
  for (int round = 0; round < 200; ++round) {
    CommitBatch batch;
    for (const auto& [product, partition] :
         std::vector<std::pair<std::string, std::int32_t>>{{"apps", 1}, {"web", 4}}) {
      batch.outbox.push_back(summary("pp-" + product, product));
      batch.outbox.back().set_version(round + 1);
      batch.product_partitions.emplace(product, partition);
    }
    ASSERT_TRUE(store->commit(batch).ok());
  }
  std::vector<OutboxPosition> published;
  for (std::uint64_t sequence = 1; sequence <= 200; ++sequence) published.push_back({4, sequence});
  ASSERT_TRUE(store->delete_outbox(published).ok());

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  std::vector<OutboxEntry> entries;
  const std::vector<OutboxPosition> after = {{1, 150}};
  ASSERT_TRUE(store->read_outbox_after(after, 100, &entries).ok());
  const std::uint64_t skipped = rocksdb::get_perf_context()->internal_delete_skipped_count;
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  ASSERT_EQ(entries.size(), 50u);
  EXPECT_EQ(entries.back().sequence, 200u);
  EXPECT_EQ(skipped, 0u) << "partition 4's tombstones were visited";
}

// The publisher's read: each partition's entries after its own cursor, partitions in the order
// given, one limit for all.
TEST_F(Schema3StoreTest, OutboxReadsFollowACursorPerPartition) {
  auto store = open_store();
  for (int round = 0; round < 3; ++round) {
    CommitBatch batch;
    for (const auto& [product, partition] :
         std::vector<std::pair<std::string, std::int32_t>>{{"apps", 1}, {"web", 4}, {"api", 9}}) {
      batch.outbox.push_back(summary("pp-" + product, product));
      batch.outbox.back().set_version(round + 1);
      batch.product_partitions.emplace(product, partition);
    }
    ASSERT_TRUE(store->commit(batch).ok());
  }
  EXPECT_EQ(store->outbox_next_sequences(),
            (std::map<std::int32_t, std::uint64_t>{{1, 4}, {4, 4}, {9, 4}}));
  auto read = [&](std::vector<OutboxPosition> after, std::size_t max) {
    std::vector<OutboxEntry> entries;
    EXPECT_TRUE(store->read_outbox_after(after, max, &entries).ok());
    std::vector<std::string> out;
    for (const auto& e : entries) {
      out.push_back(std::to_string(e.partition) + ":" + std::to_string(e.sequence) + ":v" +
                    std::to_string(e.version));
    }
    return out;
  };
  EXPECT_EQ(read({{9, 1}, {1, 2}, {4, 3}}, 10),
            (std::vector<std::string>{"9:2:v2", "9:3:v3", "1:3:v3"}));
  EXPECT_EQ(read({{4, 0}, {1, 0}}, 4),
            (std::vector<std::string>{"4:1:v1", "4:2:v2", "4:3:v3", "1:1:v1"}));
  const std::vector<OutboxPosition> done = {{4, 1}, {4, 2}};
  ASSERT_TRUE(store->delete_outbox(done).ok());
  EXPECT_EQ(read({{4, 0}}, 10), (std::vector<std::string>{"4:3:v3"}));
}

}  // namespace
}  // namespace painpoint::store

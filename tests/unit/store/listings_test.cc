// The listing index of pain points per product and the per-product pain point counters
// (since schema version 2): kept by commit(), read by list_active_pain_points(), built on open
// for a version 1 store.

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "raw_rocks.h"
#include "store_dir_test.h"

namespace painpoint::store {
namespace {

class ListingsTest : public StoreDirTest {
 protected:
  static v1::PainPointSummary summary(const std::string& id, const std::string& product,
                                      v1::Status status, std::int64_t version) {
    v1::PainPointSummary s;
    s.set_id(id);
    s.set_product_id(product);
    s.set_status(status);
    s.set_version(version);
    return s;
  }

  static v1::ProductStats stats_of(const Store& store, const std::string& product) {
    for (const auto& stats : store.product_stats()) {
      if (stats.product_id() == product) return stats;
    }
    ADD_FAILURE() << "no statistics for " << product;
    return {};
  }
};

TEST_F(ListingsTest, CountersFollowEveryUpsertAndSurviveReopen) {
  {
    auto store = open_store();
    CommitBatch first;
    first.summaries = {summary("pp-1", "app", v1::STATUS_ACTIVE, 1),
                       summary("pp-2", "app", v1::STATUS_ACTIVE, 1),
                       summary("pp-3", "web", v1::STATUS_ACTIVE, 4)};
    ASSERT_TRUE(store->commit(first).ok());
    EXPECT_EQ(stats_of(*store, "app").active_pain_points(), 2);
    EXPECT_EQ(stats_of(*store, "app").summary_versions(), 2);
    EXPECT_EQ(stats_of(*store, "web").active_pain_points(), 1);

    // pp-2 merges into pp-1, which changes twice in the same batch; web is untouched.
    CommitBatch second;
    second.summaries = {summary("pp-1", "app", v1::STATUS_ACTIVE, 2),
                        summary("pp-2", "app", v1::STATUS_MERGED, 2),
                        summary("pp-1", "app", v1::STATUS_ACTIVE, 3)};
    ASSERT_TRUE(store->commit(second).ok());
    EXPECT_EQ(stats_of(*store, "app").active_pain_points(), 1);
    EXPECT_EQ(stats_of(*store, "app").summary_versions(), 5);
    EXPECT_EQ(stats_of(*store, "web").summary_versions(), 4);
  }
  auto reopened = open_store();
  EXPECT_EQ(stats_of(*reopened, "app").active_pain_points(), 1);
  EXPECT_EQ(stats_of(*reopened, "app").summary_versions(), 5);
  EXPECT_EQ(stats_of(*reopened, "web").active_pain_points(), 1);
}

// Random values with many ties, checked against sorting the full summaries as the API did
// before the index existed: every order, pages of several sizes, merged ones left out.
TEST_F(ListingsTest, EveryOrderAndPageMatchesSortingTheSummaries) {
  auto store = open_store();
  std::mt19937 rng(7);
  CommitBatch batch;
  std::vector<v1::PainPointSummary> active;
  for (int i = 0; i < 120; ++i) {
    const bool merged = i % 7 == 0;
    v1::PainPointSummary s = summary("pp-" + std::to_string(1000 + (i * 37) % 120), "app",
                                     merged ? v1::STATUS_MERGED : v1::STATUS_ACTIVE, 1);
    s.set_severity(static_cast<double>(rng() % 5) / 4.0);
    s.set_event_count(rng() % 6);
    s.set_account_count(rng() % 4);
    s.set_arr_at_risk_cents(static_cast<std::int64_t>(rng() % 3) * 120'000);
    s.set_trend(static_cast<double>(rng() % 5) - 2.0);
    s.mutable_last_seen()->set_seconds(1'800'000'000 + rng() % 4);
    s.mutable_last_seen()->set_nanos(static_cast<std::int32_t>(rng() % 2) * 500'000);
    batch.summaries.push_back(s);
    if (!merged) active.push_back(s);
  }
  batch.summaries.push_back(summary("pp-other", "other", v1::STATUS_ACTIVE, 1));
  ASSERT_TRUE(store->commit(batch).ok());

  auto micros = [](const v1::PainPointSummary& s) {
    return s.last_seen().seconds() * 1'000'000 + s.last_seen().nanos() / 1000;
  };
  using Key = std::tuple<double, std::int64_t>;  // descending value (as a double or int), id
  const std::vector<std::pair<ListingOrder, std::function<Key(const v1::PainPointSummary&)>>>
      orders = {
          {ListingOrder::kSeverity,
           [](const auto& s) {
             return Key{s.severity(), 0};
           }},
          {ListingOrder::kEvents,
           [](const auto& s) {
             return Key{0, s.event_count()};
           }},
          {ListingOrder::kAccounts,
           [](const auto& s) {
             return Key{0, s.account_count()};
           }},
          {ListingOrder::kArr,
           [](const auto& s) {
             return Key{0, s.arr_at_risk_cents()};
           }},
          {ListingOrder::kTrend,
           [](const auto& s) {
             return Key{s.trend(), 0};
           }},
          {ListingOrder::kRecent,
           [&](const auto& s) {
             return Key{0, micros(s)};
           }},
      };
  for (const auto& [order, key_of_order] : orders) {
    const auto& key = key_of_order;  // a variable: Clang 14 cannot capture a structured binding
    std::vector<v1::PainPointSummary> expected = active;
    std::sort(expected.begin(), expected.end(), [&](const auto& a, const auto& b) {
      return std::make_tuple(key(b), a.id()) < std::make_tuple(key(a), b.id());
    });
    for (std::size_t limit : {1u, 7u, 50u, 500u}) {
      std::vector<std::string> got;
      for (std::size_t offset = 0; offset < expected.size() + limit; offset += limit) {
        PainPointPage page;
        ASSERT_TRUE(store->list_active_pain_points("app", order, offset, limit, &page).ok());
        EXPECT_EQ(page.active_total, expected.size());
        EXPECT_LE(page.summaries.size(), limit);
        for (const auto& s : page.summaries) {
          got.push_back(s.id());
          EXPECT_EQ(s.product_id(), "app");
        }
      }
      std::vector<std::string> want;
      for (const auto& s : expected) want.push_back(s.id());
      EXPECT_EQ(got, want) << "order " << static_cast<int>(order) << ", limit " << limit;
    }
  }
}

// A store written by schema version 1 (index values empty, no pain point counters): a read-only
// open refuses it (its keys carry no partition); a read-write open upgrades it to version 2 and
// then to version 3, and lists it from the new listings.
TEST_F(ListingsTest, AVersion1StoreIsRefusedReadOnlyAndUpgradedOnOpen) {
  {
    auto store = open_schema2_store();
    CommitBatch batch;
    batch.summaries = {summary("pp-1", "app", v1::STATUS_ACTIVE, 3),
                       summary("pp-2", "app", v1::STATUS_MERGED, 2),
                       summary("pp-3", "app", v1::STATUS_ACTIVE, 1)};
    batch.summaries[0].set_severity(0.5);
    batch.summaries[2].set_severity(0.9);
    ASSERT_TRUE(store->commit(batch).ok());
  }
  {
    RawRocks raw(dir_);
    ASSERT_TRUE(raw.open());
    ASSERT_TRUE(raw.db->Put({}, "schema_version", std::string("\0\0\0\x01", 4)).ok());
    for (const char* id : {"pp-1", "pp-2", "pp-3"}) {
      ASSERT_TRUE(
          raw.db
              ->Put({}, raw.family("pain_points_by_product"), keys::product_item_key("app", id), "")
              .ok());
    }
    // No product record: version 1 wrote them only for products with events.
    ASSERT_TRUE(raw.db->Delete({}, "product/app").ok());
  }
  auto ids = [](const Store& store) {
    PainPointPage page;
    EXPECT_TRUE(
        store.list_active_pain_points("app", ListingOrder::kSeverity, 0, 10, &page).ok());
    std::vector<std::string> out;
    for (const auto& s : page.summaries) out.push_back(s.id());
    return out;
  };
  const std::vector<std::string> expected = {"pp-3", "pp-1"};
  {
    StoreOptions read_only;
    read_only.read_only = true;
    std::unique_ptr<Store> store;
    const Status s = Store::open(dir_, read_only, &store);
    EXPECT_EQ(s.code, StoreErrc::kSchemaMismatch) << s.to_string();
    EXPECT_NE(s.message.find("read-write once"), std::string::npos) << s.message;
  }
  {
    StoreOptions upgrade;
    upgrade.upgrade_rule = PartitionRule{
        [](std::string_view, std::int32_t count) { return count - 3; },
        [](std::string_view) { return std::optional<StateKeyOwner>(); }, 8};
    auto store = open_store(upgrade);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(ids(*store), expected);
    EXPECT_EQ(stats_of(*store, "app").active_pain_points(), 2);
    EXPECT_EQ(stats_of(*store, "app").summary_versions(), 6);
    std::vector<std::int32_t> partitions;
    ASSERT_TRUE(store->partitions_present(&partitions).ok());
    EXPECT_EQ(partitions, (std::vector<std::int32_t>{5}));
  }
  RawRocks raw(dir_);
  ASSERT_TRUE(raw.open());
  std::string version;
  ASSERT_TRUE(raw.db->Get({}, "schema_version", &version).ok());
  std::string current;
  keys::append_be32(current, kSchemaVersion);
  EXPECT_EQ(version, current) << "upgraded through every version";
  std::string listing;
  ASSERT_TRUE(raw.db
                  ->Get({}, raw.family("pain_points_by_product@p"),
                        keys::partitioned_key(5, keys::product_item_key("app", "pp-3")), &listing)
                  .ok());
  v1::PainPointListing parsed;
  ASSERT_TRUE(parsed.ParseFromString(listing));
  EXPECT_EQ(parsed.status(), v1::STATUS_ACTIVE);
  EXPECT_DOUBLE_EQ(parsed.severity(), 0.9);
}

}  // namespace
}  // namespace painpoint::store

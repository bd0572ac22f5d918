#pragma once

// A schema 2 store written by the current Store::commit(), and the partition rule the
// per-partition layout's tests apply to it: products alpha, beta and gamma in partitions 0, 2 and
// 300.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "partition_assignment.h"
#include "store_dir_test.h"

namespace painpoint::store {

inline partition_assignment::PartitionRule schema2_test_rule() {
  partition_assignment::PartitionRule rule;
  rule.of_product = [](std::string_view product) {
    const std::map<std::string_view, std::int32_t> partitions = {
        {"alpha", 0}, {"beta", 2}, {"gamma", 300}};
    return partitions.at(product);
  };
  // The aggregator's layout (aggregator/src/state_keys.h).
  rule.state_key_owner =
      [](std::string_view key) -> std::optional<partition_assignment::StateKeyOwner> {
    if (key.starts_with("agg-merged/")) {
      return partition_assignment::StateKeyOwner{"", std::string(key.substr(11))};
    }
    if (!key.starts_with("agg/")) return std::nullopt;
    const std::string_view rest = key.substr(4);
    return partition_assignment::StateKeyOwner{std::string(rest.substr(0, rest.find('/'))), ""};
  };
  return rule;
}

class Schema2StoreTest : public StoreDirTest {
 protected:
  static v1::PainPointSummary summary(const std::string& id, const std::string& product) {
    v1::PainPointSummary s;
    s.set_id(id);
    s.set_product_id(product);
    s.set_status(v1::STATUS_ACTIVE);
    s.set_version(1);
    return s;
  }

  // A schema 2 store: three products, a merged pain point with its state key, the outbox, the
  // arrival log (no checkpoint), input offsets of two partitions and an alert.
  void write_schema2_store() {
    StoreOptions options;
    options.legacy_schema2 = true;
    auto store = open_store(options);
    CommitBatch batch;
    const std::vector<std::pair<std::string, std::string>> events = {
        {"e1", "alpha"}, {"e2", "beta"}, {"e3", "alpha"},
        {"e4", "gamma"}, {"e5", "beta"}, {"e6", "alpha"}};
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& [id, product] = events[i];
      batch.events.push_back(make_event(id, product, v1::SOURCE_CUSTOMER,
                                        1'700'000'000 + static_cast<std::int64_t>(i)));
      const std::string pain_point = product == "beta" && id == "e5" ? "pp-b2" : "pp-" + product;
      batch.memberships.push_back({id, product, pain_point});
    }
    batch.summaries = {summary("pp-alpha", "alpha"), summary("pp-beta", "beta"),
                       summary("pp-b2", "beta"), summary("pp-gamma", "gamma")};
    batch.publish_summaries = true;
    batch.aggregator_state = {
        {"agg/alpha/m", "a"}, {"agg/gamma/c/00000001", "g"}, {"agg-merged/pp-b2", "pp-beta"}};
    batch.offsets = {{"painpoint.feedback-by-product", 0, 4},
                     {"painpoint.feedback-by-product", 2, 2}};
    v1::AlertEvent alert;
    alert.set_alert_id("al-1");
    alert.set_product_id("beta");
    batch.alerts = {alert};
    Status s = store->commit(batch);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
};

}  // namespace painpoint::store

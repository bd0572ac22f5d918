// Fired alerts in the store: recorded with the batch that fired them, listed newest first per
// product and in total, and drained through their own outbox; all of it survives a reopen.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "painpoint/store/store.h"
#include "store_dir_test.h"

namespace painpoint::store {
namespace {

class AlertsStoreTest : public StoreDirTest {
 protected:
  void SetUp() override {
    StoreDirTest::SetUp();
    reopen();
  }
  void TearDown() override {
    store_.reset();
    StoreDirTest::TearDown();
  }
  void reopen() {
    store_.reset();
    Status s = Store::open(dir_, {}, &store_);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }

  static v1::AlertEvent alert(const std::string& id, const std::string& product) {
    v1::AlertEvent a;
    a.set_alert_id(id);
    a.set_product_id(product);
    a.set_rule("r");
    return a;
  }

  std::vector<std::string> listed(const std::string& product, std::uint64_t before = 0) {
    std::vector<std::string> ids;
    Status s = store_->scan_alerts(product, before, [&](const StoredAlert& a) {
      ids.push_back(a.alert.alert_id() + "@" + std::to_string(a.sequence));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    return ids;
  }

  bool fired(const std::string& id) {
    bool out = false;
    EXPECT_TRUE(store_->alert_fired(id, &out).ok());
    return out;
  }

  std::unique_ptr<Store> store_;
};

TEST_F(AlertsStoreTest, CommittedAlertsAreFiredListedAndInTheOutbox) {
  EXPECT_FALSE(fired("al-1"));
  EXPECT_EQ(store_->alert_next_sequence(), 1u);
  CommitBatch first;
  first.alerts = {alert("al-1", "app"), alert("al-2", "web")};
  ASSERT_TRUE(store_->commit(first).ok());
  CommitBatch second;
  second.alerts = {alert("al-3", "app")};
  ASSERT_TRUE(store_->commit(second).ok());

  EXPECT_TRUE(fired("al-1"));
  EXPECT_TRUE(fired("al-3"));
  EXPECT_FALSE(fired("al-4"));
  EXPECT_EQ(listed(""), (std::vector<std::string>{"al-3@3", "al-2@2", "al-1@1"}));
  EXPECT_EQ(listed("app"), (std::vector<std::string>{"al-3@3", "al-1@1"}));
  EXPECT_EQ(listed("app", 3), (std::vector<std::string>{"al-1@1"}));
  EXPECT_EQ(listed("ap"), std::vector<std::string>{});
  EXPECT_EQ(listed("web"), (std::vector<std::string>{"al-2@2"}));

  std::vector<StoredAlert> outbox;
  ASSERT_TRUE(store_->read_alert_outbox_after(0, 10, &outbox).ok());
  ASSERT_EQ(outbox.size(), 3u);
  EXPECT_EQ(outbox[0].alert.alert_id(), "al-1");
  EXPECT_EQ(outbox[2].sequence, 3u);
  const std::vector<std::uint64_t> done = {1, 3};
  ASSERT_TRUE(store_->delete_alert_outbox(done).ok());

  reopen();
  EXPECT_EQ(store_->alert_next_sequence(), 4u);
  EXPECT_TRUE(fired("al-2"));
  outbox.clear();
  ASSERT_TRUE(store_->read_alert_outbox_after(0, 10, &outbox).ok());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].alert.alert_id(), "al-2");
  // Deleted from the outbox, still listed.
  EXPECT_EQ(listed("").size(), 3u);
  CommitBatch third;
  third.alerts = {alert("al-4", "app")};
  ASSERT_TRUE(store_->commit(third).ok());
  EXPECT_EQ(listed("app").front(), "al-4@4");
}

TEST_F(AlertsStoreTest, AlertsReadOldestFirstAndWebhookPositionsSurviveAReopen) {
  CommitBatch batch;
  batch.alerts = {alert("al-1", "app"), alert("al-2", "web"), alert("al-3", "app")};
  ASSERT_TRUE(store_->commit(batch).ok());
  std::vector<StoredAlert> read;
  ASSERT_TRUE(store_->read_alerts_after(1, 10, &read).ok());
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].alert.alert_id(), "al-2");
  EXPECT_EQ(read[1].sequence, 3u);
  read.clear();
  ASSERT_TRUE(store_->read_alerts_after(0, 1, &read).ok());
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].alert.alert_id(), "al-1");

  std::optional<std::uint64_t> position;
  ASSERT_TRUE(store_->webhook_position("team", &position).ok());
  EXPECT_FALSE(position);
  ASSERT_TRUE(store_->record_webhook_position("team", 2).ok());
  reopen();
  ASSERT_TRUE(store_->webhook_position("team", &position).ok());
  EXPECT_EQ(position, 2u);
  ASSERT_TRUE(store_->webhook_position("other", &position).ok());
  EXPECT_FALSE(position);
  // Positions live beside the alerts without showing up in their lists.
  EXPECT_EQ(listed("").size(), 3u);
}

}  // namespace
}  // namespace painpoint::store

#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "painpoint/store/store.h"

namespace painpoint::store {

// The set-up the store's suites share: a data directory of its own per test (named after the
// suite and the test, removed before and after it), open_store() (or open_schema2_store()) on it, and make_event().
class StoreDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("painpoint-" + std::string(test->test_suite_name()) + "-" +
            std::to_string(::getpid()) + "-" + test->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> open_store(StoreOptions options = {}) {
    std::unique_ptr<Store> store;
    Status s = Store::open(dir_, options, &store);
    EXPECT_TRUE(s.ok()) << s.to_string();
    return store;
  }
  // A store with schema 2's keys (no partition in them), as written before schema 3.
  std::unique_ptr<Store> open_schema2_store() {
    StoreOptions legacy;
    legacy.legacy_schema2 = true;
    return open_store(legacy);
  }

  static v1::StoredEvent make_event(const std::string& id, const std::string& product,
                                    v1::Source source, std::int64_t seconds,
                                    std::int64_t offset = 0) {
    v1::StoredEvent stored;
    v1::FeedbackEvent* e = stored.mutable_event();
    e->set_event_id(id);
    e->set_product_id(product);
    e->set_source(source);
    e->set_text("text of " + id);
    e->mutable_occurred_at()->set_seconds(seconds);
    stored.set_input_topic("painpoint.feedback-by-product");
    stored.set_input_offset(offset);
    return stored;
  }

  std::filesystem::path dir_;
};

}  // namespace painpoint::store

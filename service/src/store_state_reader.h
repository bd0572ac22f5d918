#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

// The aggregator's lazy state loads, served from the store. A read the store refuses is reported
// as the aggregator reports a record it cannot decode (Aggregator::state_error()): the reader
// keeps the first error in read_error() and from then on reads nothing (get() returns nullopt,
// scan() calls nobody). The product being loaded then lacks its state, so the caller checks
// read_error() before it persists anything the aggregator derived since, and stops instead.
//
// Thread safety: get() and scan() may run on several threads at once (the aggregator's shards).
class StoreStateReader final : public aggregator::StateReader {
 public:
  explicit StoreStateReader(const store::Store& store) : store_(store) {}

  std::optional<std::string> get(std::string_view key) const override {
    if (failed_.load(std::memory_order_acquire)) return std::nullopt;
    std::optional<std::string> value;
    if (store::Status s = store_.get_state(key, &value); !s.ok()) {
      record("read aggregator state: " + s.to_string());
      return std::nullopt;
    }
    return value;
  }

  void scan(std::string_view prefix,
            const std::function<void(std::string_view, std::string_view)>& fn) const override {
    if (failed_.load(std::memory_order_acquire)) return;
    store::Status s = store_.scan_state(prefix, [&](std::string_view k, std::string_view v) {
      fn(k, v);
      return true;
    });
    if (!s.ok()) record("scan aggregator state: " + s.to_string());
  }

  // The first read the store refused (nullopt while there is none).
  [[nodiscard]] std::optional<std::string> read_error() const {
    const std::lock_guard lock(mu_);
    return read_error_;
  }

 private:
  void record(std::string error) const {
    const std::lock_guard lock(mu_);
    if (!read_error_) read_error_ = std::move(error);
    failed_.store(true, std::memory_order_release);
  }

  const store::Store& store_;
  // const reads record the error: StateReader is const.
  mutable std::mutex mu_;
  mutable std::optional<std::string> read_error_;  // guarded by mu_
  mutable std::atomic<bool> failed_{false};
};

}  // namespace painpoint::service

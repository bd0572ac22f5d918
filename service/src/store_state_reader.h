#pragma once

#include <stdexcept>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

// Raised when the store cannot be read while the aggregator loads state: the stage cannot
// continue without it, and the batch in flight is not committed.
class StoreReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The aggregator's lazy state loads, served from the store. Thread safety: as the Store's reads.
class StoreStateReader final : public aggregator::StateReader {
 public:
  explicit StoreStateReader(const store::Store& store) : store_(store) {}

  std::optional<std::string> get(std::string_view key) const override {
    std::optional<std::string> value;
    if (store::Status s = store_.get_state(key, &value); !s.ok()) {
      throw StoreReadError("read aggregator state: " + s.to_string());
    }
    return value;
  }

  void scan(std::string_view prefix,
            const std::function<void(std::string_view, std::string_view)>& fn) const override {
    store::Status s = store_.scan_state(prefix, [&](std::string_view k, std::string_view v) {
      fn(k, v);
      return true;
    });
    if (!s.ok()) throw StoreReadError("scan aggregator state: " + s.to_string());
  }

 private:
  const store::Store& store_;
};

}  // namespace painpoint::service

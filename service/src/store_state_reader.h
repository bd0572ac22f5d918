#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

// The aggregator's lazy state loads, served from the store. A read the store refuses is reported
// as the aggregator reports a record it cannot decode (Aggregator::state_error()): the reader
// keeps the first error in read_error() and from then on reads nothing (get() returns nullopt,
// scan() calls nobody). The product being loaded then lacks its state, so the caller checks
// read_error() before it persists anything the aggregator derived since, and stops instead.
//
// Thread safety: one thread at a time, the one that owns the Aggregator reading through it.
class StoreStateReader final : public aggregator::StateReader {
 public:
  explicit StoreStateReader(const store::Store& store) : store_(store) {}

  std::optional<std::string> get(std::string_view key) const override {
    if (read_error_) return std::nullopt;
    std::optional<std::string> value;
    if (store::Status s = store_.get_state(key, &value); !s.ok()) {
      read_error_ = "read aggregator state: " + s.to_string();
      return std::nullopt;
    }
    return value;
  }

  void scan(std::string_view prefix,
            const std::function<void(std::string_view, std::string_view)>& fn) const override {
    if (read_error_) return;
    store::Status s = store_.scan_state(prefix, [&](std::string_view k, std::string_view v) {
      fn(k, v);
      return true;
    });
    if (!s.ok()) read_error_ = "scan aggregator state: " + s.to_string();
  }

  // The first read the store refused (nullopt while there is none).
  [[nodiscard]] const std::optional<std::string>& read_error() const { return read_error_; }

 private:
  const store::Store& store_;
  mutable std::optional<std::string> read_error_;  // const reads record it: StateReader is const
};

}  // namespace painpoint::service

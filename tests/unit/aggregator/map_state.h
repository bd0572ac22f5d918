#pragma once

// A StateReader over a std::map that applies Changes::state as the store would: the tests'
// stand-in for RocksDB when they restart an Aggregator from its own writes.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/aggregator/aggregator.h"

namespace painpoint::aggregator::testing {

class MapState : public StateReader {
 public:
  std::map<std::string, std::string, std::less<>> kv;
  void apply(const Changes& c) {
    for (const auto& w : c.state) {
      if (w.value) {
        kv[w.key] = *w.value;
      } else {
        kv.erase(w.key);
      }
    }
  }
  std::optional<std::string> get(std::string_view key) const override {
    const auto it = kv.find(key);
    if (it == kv.end()) return std::nullopt;
    return it->second;
  }
  void scan(std::string_view prefix,
            const std::function<void(std::string_view, std::string_view)>& fn) const override {
    for (auto it = kv.lower_bound(prefix); it != kv.end() && it->first.starts_with(prefix); ++it) {
      fn(it->first, it->second);
    }
  }
};

}  // namespace painpoint::aggregator::testing

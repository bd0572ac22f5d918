#pragma once

// Open-addressing hash map for integer keys (linear probing, no erase). The aggregator's hot
// lookups (term statistics, stem cache) hit one cache line instead of a node chain.

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "page_pool.h"
#include "prefetch.h"

namespace painpoint::aggregator {

// SlotAlign (optional) aligns every slot, e.g. to a cache line so that a look-up reads one.
template <typename K, typename V, std::size_t SlotAlign = 1>
class FlatMap {
 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t capacity_bytes() const { return slots_.capacity() * sizeof(Slot); }
  template <typename F>
  void for_each(F&& fn) const {
    for (const auto& s : slots_) {
      if (s.used) fn(s.key, s.value);
    }
  }

  // Starts loading the slot where `key` would be (a hint: lets several independent look-ups
  // overlap their cache misses instead of paying them one after another).
  void prefetch(K key) const {
    if (!slots_.empty()) prefetch_line(&slots_[index(key)]);
  }

  [[nodiscard]] V* find(K key) {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = index(key);; i = (i + 1) & mask_) {
      if (!slots_[i].used) return nullptr;
      if (slots_[i].key == key) return &slots_[i].value;
    }
  }
  [[nodiscard]] const V* find(K key) const { return const_cast<FlatMap*>(this)->find(key); }

  // Returns the value and whether it was inserted (default-constructed).
  std::pair<V*, bool> try_emplace(K key) {
    if ((size_ + 1) * 4 > slots_.size() * 3) grow();
    for (std::size_t i = index(key);; i = (i + 1) & mask_) {
      if (!slots_[i].used) {
        slots_[i].used = true;
        slots_[i].key = key;
        slots_[i].value = V{};
        ++size_;
        return {&slots_[i].value, true};
      }
      if (slots_[i].key == key) return {&slots_[i].value, false};
    }
  }

  void clear() {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

 private:
  struct alignas(std::max({alignof(K), alignof(V), SlotAlign})) Slot {
    K key{};
    bool used = false;
    V value{};
  };

  [[nodiscard]] std::size_t index(K key) const {
    std::uint64_t h = static_cast<std::uint64_t>(key) * 0x9E3779B97F4A7C15ULL;
    return static_cast<std::size_t>(h >> 20) & mask_;
  }

  void grow() {
    PoolVector<Slot> old;
    old.swap(slots_);
    const std::size_t cap = old.empty() ? 64 : old.size() * 2;
    slots_.resize(cap);
    mask_ = cap - 1;
    size_ = 0;
    for (auto& s : old) {
      if (!s.used) continue;
      *try_emplace(s.key).first = std::move(s.value);
    }
  }

  // Large tables (a big product's terms) get huge pages: see page_pool.h.
  PoolVector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace painpoint::aggregator

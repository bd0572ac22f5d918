#pragma once

// When the aggregator stage writes out the aggregator state (a checkpoint): every
// `aggregator.checkpoint_events` events or `aggregator.checkpoint_interval_ms`, spread over
// `aggregator.checkpoint_batches` batches a share of the products at a time, and whole when
// stopping.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace painpoint::service {

struct CheckpointProgress {
  std::uint64_t events = 0;  // added since their products' state was last saved
  std::chrono::steady_clock::duration since_last{};
  // A round already runs: the products it has not saved yet are due in the next batches.
  bool round_in_progress = false;
  bool stopping = false;
};

inline bool checkpoint_due(const CheckpointProgress& progress, std::uint64_t every_events,
                           std::chrono::milliseconds every) {
  if (progress.events == 0 || progress.round_in_progress) return false;
  return progress.stopping || progress.events >= every_events || progress.since_last >= every;
}

// A checkpoint spread over batches (a round): when one is due, the products with events whose
// state is not saved yet are saved a share per batch, each product's whole state at once, so
// that no batch carries the whole state of every product and stalls the stage and the commit.
// The store keeps the other products' events in its arrival log until their share comes.
class CheckpointRounds {
 public:
  struct Share {
    std::vector<std::string> products;  // sorted
    bool completes_round = false;
  };

  explicit CheckpointRounds(std::size_t batches_per_round)
      : batches_per_round_(std::max<std::size_t>(1, batches_per_round)) {}

  // An event of `product` was added in the batch being built (or replayed after a crash).
  void added(std::string_view product) {
    auto it = unsaved_.find(product);
    if (it == unsaved_.end()) it = unsaved_.emplace(std::string(product), 0).first;
    ++it->second;
    ++unsaved_events_;
  }

  // The products whose state the batch being built saves. `due`: a checkpoint is due, so a round
  // starts unless one runs.
  Share next_share(bool due) {
    Share share;
    if (due && waiting_.empty()) start_round();
    if (waiting_.empty()) return share;
    const std::size_t n = std::min(share_size_, waiting_.size());
    share.products.assign(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
    for (const std::string& product : share.products) forget(product);
    share.completes_round = waiting_.empty();
    return share;
  }

  // Every product's state was saved (a whole checkpoint): no round runs any more.
  void saved_all() {
    unsaved_.clear();
    waiting_.clear();
    unsaved_events_ = 0;
  }

  // The products with events added since their state was last saved, sorted.
  [[nodiscard]] std::vector<std::string> unsaved_products() const {
    std::vector<std::string> out;
    out.reserve(unsaved_.size());
    for (const auto& [product, events] : unsaved_) out.push_back(product);
    std::sort(out.begin(), out.end());
    return out;
  }

  [[nodiscard]] bool round_in_progress() const { return !waiting_.empty(); }
  [[nodiscard]] std::uint64_t unsaved_events() const { return unsaved_events_; }

 private:
  void start_round() {
    for (const auto& [product, events] : unsaved_) waiting_.push_back(product);
    std::sort(waiting_.begin(), waiting_.end());
    share_size_ = (waiting_.size() + batches_per_round_ - 1) / batches_per_round_;
  }

  void forget(const std::string& product) {
    const auto it = unsaved_.find(product);
    if (it == unsaved_.end()) return;
    unsaved_events_ -= it->second;
    unsaved_.erase(it);
  }

  std::size_t batches_per_round_;
  std::size_t share_size_ = 0;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  // Events per product added since its state was last saved; called once per event.
  std::unordered_map<std::string, std::uint64_t, Hash, std::equal_to<>> unsaved_;
  std::vector<std::string> waiting_;  // the running round's products not saved yet, in order
  std::uint64_t unsaved_events_ = 0;
};

}  // namespace painpoint::service

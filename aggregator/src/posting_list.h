// Posting lists of the inverted index: per term, the clusters that index it, by weight.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "page_pool.h"

namespace painpoint::aggregator {

struct Posting {
  float w;
  std::uint32_t seq;
};

// Posting lists are ordered by weight (desc), then seq: a pure function of what the clusters
// indexed, so a reload rebuilds exactly the lists an uninterrupted run has.
struct PostingBefore {
  bool operator()(const Posting& a, const Posting& b) const {
    if (a.w != b.w) return a.w > b.w;
    return a.seq < b.seq;
  }
};
// Postings of one term, all of them, in PostingBefore order, as a list of sorted blocks (split
// beyond 2 * kPostingBlock entries) with each block's last posting in a contiguous array: common
// terms collect thousands of clusters, and an update finds its block by a binary search over that
// array and moves at most a block (a red-black tree costs a dozen dependent cache misses and an
// allocation per update; one sorted vector would move thousands of entries).
class PostingBlocks {
 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  // false: already present.
  bool insert(const Posting& key) {
    if (blocks_.empty()) {
      blocks_.emplace_back(1, key);
      lasts_.push_back(key);
      ++size_;
      return true;
    }
    std::size_t b = block_of(key);
    if (b == blocks_.size()) --b;  // after every posting: goes at the end of the last block
    auto& block = blocks_[b];
    const auto pos = std::lower_bound(block.begin(), block.end(), key, PostingBefore{});
    if (pos != block.end() && !PostingBefore{}(key, *pos)) return false;
    block.insert(pos, key);
    lasts_[b] = block.back();
    ++size_;
    if (block.size() > 2 * kPostingBlock) split(b);
    return true;
  }

  // false: not present.
  bool erase(const Posting& key) {
    const std::size_t b = block_of(key);
    if (b == blocks_.size()) return false;
    auto& block = blocks_[b];
    const auto pos = std::lower_bound(block.begin(), block.end(), key, PostingBefore{});
    if (pos == block.end() || PostingBefore{}(key, *pos)) return false;
    block.erase(pos);
    --size_;
    if (block.empty()) {
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(b));
      lasts_.erase(lasts_.begin() + static_cast<std::ptrdiff_t>(b));
    } else {
      lasts_[b] = block.back();
    }
    return true;
  }

  // The first posting after `key` (which need not be present), if any.
  [[nodiscard]] std::optional<Posting> next_after(const Posting& key) const {
    // First block whose last posting comes after key.
    const auto it = std::upper_bound(lasts_.begin(), lasts_.end(), key, PostingBefore{});
    if (it == lasts_.end()) return std::nullopt;
    const auto& block = blocks_[static_cast<std::size_t>(it - lasts_.begin())];
    return *std::upper_bound(block.begin(), block.end(), key, PostingBefore{});
  }
  [[nodiscard]] std::optional<Posting> first() const {
    if (blocks_.empty()) return std::nullopt;
    return blocks_.front().front();
  }
  [[nodiscard]] std::size_t capacity_bytes() const {
    std::size_t n = lasts_.capacity() * sizeof(Posting) + blocks_.capacity() * 24;
    for (const auto& b : blocks_) n += b.capacity() * sizeof(Posting);
    return n;
  }

 private:
  static constexpr std::size_t kPostingBlock = 64;

  // The block that holds `key` or would: the first whose last posting is not before it.
  [[nodiscard]] std::size_t block_of(const Posting& key) const {
    return static_cast<std::size_t>(
        std::lower_bound(lasts_.begin(), lasts_.end(), key, PostingBefore{}) - lasts_.begin());
  }

  void split(std::size_t b) {
    auto& block = blocks_[b];
    PoolVector<Posting> upper(block.begin() + static_cast<std::ptrdiff_t>(kPostingBlock),
                              block.end());
    block.resize(kPostingBlock);
    lasts_[b] = block.back();
    lasts_.insert(lasts_.begin() + static_cast<std::ptrdiff_t>(b) + 1, upper.back());
    blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(b) + 1, std::move(upper));
  }

  PoolVector<PoolVector<Posting>> blocks_;
  PoolVector<Posting> lasts_;  // lasts_[i] == blocks_[i].back()
  std::size_t size_ = 0;
};

// Queries read only the first posting_scan entries, from a contiguous copy of that head kept
// up to date on every update.
struct PostingList {
  // Invariant: head == the first min(scan, all.size()) elements of `all`.
  PostingBlocks all;
  PoolVector<Posting> head;

  void insert(const Posting& key, std::size_t scan) {
    if (!all.insert(key)) return;
    if (head.size() < scan || PostingBefore{}(key, head.back())) {
      head.insert(std::lower_bound(head.begin(), head.end(), key, PostingBefore{}), key);
      if (head.size() > scan) head.pop_back();
    }
  }
  void erase(const Posting& key, std::size_t scan) {
    if (!all.erase(key)) return;
    const auto pos = std::lower_bound(head.begin(), head.end(), key, PostingBefore{});
    if (pos == head.end() || pos->seq != key.seq) return;
    head.erase(pos);
    if (all.size() > head.size() && head.size() < scan) {
      head.push_back(head.empty() ? *all.first() : *all.next_after(head.back()));
    }
  }
};

}  // namespace painpoint::aggregator

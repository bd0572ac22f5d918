#include "painpoint/aggregator/aggregator.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>

#include "flat_map.h"
#include "page_pool.h"
#include "painpoint/aggregator/severity.h"
#include "painpoint/aggregator/text.h"
#include "painpoint/aggregator/word_vectors.h"
#include "painpoint/v1/aggregator_state.pb.h"
#include "phrase_label.h"
#include "prefetch.h"

namespace painpoint::aggregator {
namespace {

constexpr std::int64_t kSecondsPerDay = 86'400;
constexpr std::size_t kExemplarTerms = 16;
constexpr std::size_t kMaxExemplarText = 400;
// DF table pages: 2^kPageBits buckets per state key.
constexpr std::uint32_t kPageBits = 8;

struct TermWeight {
  std::uint32_t term;
  float w;
};

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

// What bounding a candidate's score needs, one fixed-size record per cluster in a contiguous
// array indexed by seq (Product::hot): retrieval's candidates are bounded from these records
// alone (addresses known from the seq, so they are prefetched without pointer chasing), and only
// those whose bound can still win are scored exactly on the full cluster, whose record,
// centroid and dense sum are cache misses once there are thousands of pain points. The bounds
// are upper bounds (rounded up), so the choice is the one a full scoring of every candidate
// makes. Maintenance reads the life-cycle fields here too (whether a pain point is due for a
// near-duplicate check, whether a candidate expired) instead of visiting every cluster record.
constexpr std::size_t kHotTerms = 12;
struct alignas(64) Hot {
  std::uint8_t live = 0;            // 0: no cluster at this seq (never, retired or merged)
  std::uint8_t promoted = 0;        // Cluster::promoted
  std::uint8_t merge_due = 0;       // count >= 2 * merge_checked_count
  std::uint8_t terms = 0;           // used entries of term/w
  float inv_norm = 0;               // 1 / |centroid|, rounded up
  float rest_norm = 0;              // |centroid restricted to the other terms|, rounded up
  float rest_max = 0;               // >= the largest centroid weight of the other terms
  float cohesion = 0;               // cohesion^exponent, rounded up
  float bonus = 0;                  // size bonus, rounded up
  std::int64_t last_event_doc = 0;  // Cluster::last_event_doc
  // Some of the heaviest centroid terms (those at the last full refresh) with their current
  // centroid weights (the same floats as the centroid's, all > 0); unused slots hold kNoTerm
  // and 0. Scanned whole, without branches: a merge walk mispredicts on every step.
  static constexpr std::uint32_t kNoTerm = UINT32_MAX;  // terms are hashed below 2^30
  std::array<std::uint32_t, kHotTerms> term{};
  std::array<float, kHotTerms> w{};
  // The centroid weight of `t` if it is a hot term, else 0.
  [[nodiscard]] float weight_of(std::uint32_t t) const {
    // Hot terms are distinct, so at most one slot matches: OR-ing the bits of the matching
    // weight (mask all ones) and of the others (mask zero) gives exactly that weight, or +0.
    // Unlike a float sum, an integer OR may be evaluated in any order, so the compiler does the
    // twelve comparisons in SIMD lanes instead of a chain of twelve dependent additions: with
    // thousands of pain points an event bounds eight candidates over each of its terms, and
    // that chain was the largest part of the bounding cost.
    std::uint32_t bits = 0;
    for (std::size_t k = 0; k < kHotTerms; ++k) {
      const std::uint32_t match = 0u - static_cast<std::uint32_t>(term[k] == t);
      bits |= std::bit_cast<std::uint32_t>(w[k]) & match;
    }
    return std::bit_cast<float>(bits);
  }
};
static_assert(sizeof(Hot) == 128);

// Exemplar strings live in the pool too: replacing an exemplar (on many events of a young pain
// point) allocates when the new text is longer, and a glibc allocation there would be the one
// that sorts every block the caller freed after the last take_changes() (see take_changes()).
using PoolString = std::basic_string<char, std::char_traits<char>, PoolAllocator<char>>;

struct Exemplar {
  PoolString event_id;
  PoolString text;
  PoolVector<TermWeight> terms;
  float score = 0;
};

struct Account {
  std::uint64_t hash;
  std::int64_t arr;
};

// The record and its vectors live in the PagePool (page_pool.h): huge pages instead of a 4 KiB
// page per allocation somewhere in the heap.
struct Cluster {
  static void* operator new(std::size_t bytes) {
    return PagePool::allocate(bytes, alignof(Cluster));
  }
  static void operator delete(void* p, std::size_t bytes) noexcept {
    PagePool::deallocate(p, bytes, alignof(Cluster));
  }

  // What scoring a candidate reads comes first, so that it spans two adjacent cache lines.
  std::int64_t count = 0;
  double norm2 = 0;
  double dense_norm = 0;
  PoolVector<TermWeight> centroid;  // sorted by term
  PoolVector<float> dense;          // empty without word vectors
  std::uint32_t seq = 0;
  bool promoted = false;
  std::string id;
  PoolVector<TermWeight> indexed;
  PoolVector<Account> accounts;  // sorted by hash
  bool accounts_saturated = false;
  std::int64_t arr = 0;
  std::array<std::int64_t, 4> sources{};
  // Microseconds since the epoch: a summary's last_seen is how old its newest event is, which
  // whole seconds would blur by up to a second.
  std::int64_t first_seen_us = 0;
  std::int64_t last_seen_us = 0;
  std::int64_t day_of_last = 0;
  PoolVector<std::int64_t> daily;
  PoolVector<Exemplar> exemplars;
  // Lowest score in a full exemplar pool, cached so that the usual newcomer (which does not
  // enter the pool) reads no exemplar. Invalid after any change of the pool or its scores.
  float exemplar_floor = 0;
  bool exemplar_floor_valid = false;
  std::int64_t version = 0;
  std::int64_t last_event_doc = 0;
  std::int64_t merge_checked_count = 0;  // size at the last near-duplicate check
  // Exemplars and accounts are persisted under their own key, written only when they change:
  // they are most of a cluster's bytes and change far less often than its counts.
  bool cold_dirty = false;
};

// What a product knows about one term (hashed stem), in one 64-byte slot of its term table:
// the document frequency, where its first surface form and its posting list are, and, while the
// list is short, the list itself. An event looks each of its terms up once (featurize() counts
// it) and retrieval finds the postings in the line that look-up already brought in. With
// thousands of pain points most of an event's terms are rare ones whose lists hold a posting or
// two, and the slot, an index entry and a posting array were three or four cache misses per
// term (a document-frequency slot, a two-line index slot, the posting array) where this is one.
struct Term {
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static constexpr std::uint8_t kLongList = UINT8_MAX;
  static constexpr std::size_t kInline = 5;
  std::uint32_t df = 0;
  std::uint32_t word = kNone;  // index into Product::words: first surface form seen (keywords
                               // are shown as words, not stems); kNone: none yet
  std::uint32_t list = kNone;  // index into Product::lists; kNone: never indexed
  // Whether the term has a document frequency (seen in an event, or loaded): a term that only
  // some cluster indexed has a slot but counts as unseen, exactly like an absent one.
  bool counted = false;
  // head[0, inline_n) is lists[list].head when that holds at most kInline postings (kept in step
  // by sync_inline() on every change of the list); kLongList: read lists[list].head.
  std::uint8_t inline_n = 0;
  std::array<Posting, kInline> head{};
};
static_assert(sizeof(Term) == 56, "with its key, a Term slot is one cache line");

// Human curation of one product (persisted as one record; curation is rare, so rewriting it
// whole on each change is cheap and keeps its bytes a pure function of its content).
struct Curation {
  std::map<std::string, std::string, std::less<>> labels;  // pain point id -> human label
  std::set<std::pair<std::string, std::string>> apart;     // (a, b), a < b: no automatic merge
  // Human merges (from, into) in the order they were made: history for a rebuild to re-apply.
  std::vector<std::pair<std::string, std::string>> merges;
  bool dirty = false;

  static std::pair<std::string, std::string> pair_of(std::string a, std::string b) {
    return a < b ? std::pair{std::move(a), std::move(b)} : std::pair{std::move(b), std::move(a)};
  }
  // Adds a human merge to the history unless it is there already (a rebuild re-applies merges
  // it also carries over). Returns whether it was added.
  bool record_merge(const std::pair<std::string, std::string>& merge) {
    if (std::find(merges.begin(), merges.end(), merge) != merges.end()) return false;
    merges.push_back(merge);
    return true;
  }
  [[nodiscard]] bool renamed(const std::string& id) const { return labels.contains(id); }
  // Maintenance may merge a and b: not a split pair, and not two human-named pain points (they
  // were named apart on purpose).
  [[nodiscard]] bool auto_merge_allowed(const std::string& a, const std::string& b) const {
    if (renamed(a) && renamed(b)) return false;
    return !apart.contains(pair_of(a, b));
  }
  // `from` went into `into`: its label goes, its "kept apart" pairs now hold for the survivor
  // (which holds its events), so a split stays split through later merges.
  void on_merge(const std::string& from, const std::string& into) {
    dirty = labels.erase(from) > 0 || dirty;
    std::vector<std::pair<std::string, std::string>> moved;
    for (auto it = apart.begin(); it != apart.end();) {
      if (it->first == from || it->second == from) {
        const std::string& other = it->first == from ? it->second : it->first;
        if (other != into) moved.push_back(pair_of(other, into));
        it = apart.erase(it);
        dirty = true;
      } else {
        ++it;
      }
    }
    apart.insert(moved.begin(), moved.end());
  }
};

struct Product {
  std::string id;
  std::int64_t doc_count = 0;
  std::int64_t token_count = 0;
  std::uint32_t next_seq = 0;
  std::int64_t since_maintenance = 0;
  std::vector<double> dense_mean_sum;
  std::int64_t latest = 0;
  // Term statistics and the inverted index in one table (see Term). Lists are never removed
  // (an emptied one costs a few bytes).
  FlatMap<std::uint32_t, Term, 64> terms;
  std::vector<std::string> words;                                              // by Term::word
  PoolVector<PostingList> lists;                                               // by Term::list
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> page_buckets;  // page -> buckets
  std::vector<std::unique_ptr<Cluster>> clusters;  // by seq; null once retired or merged
  std::size_t live_promoted = 0;
  std::vector<std::uint32_t> candidates;  // seqs of clusters not yet promoted (may be stale)
  // By seq: where each cluster's centroid and dense sum were last seen, so that a candidate's
  // data can be prefetched without first waiting for its Cluster record. Hints only: a stale
  // one costs a useless prefetch, never a wrong result.
  struct Hint {
    const void* centroid = nullptr;
    std::uint32_t centroid_bytes = 0;
    std::uint32_t accounts = 0;  // count
    const void* dense = nullptr;
    const Account* account_data = nullptr;
    const std::int64_t* daily_last = nullptr;
    const char* id = nullptr;  // copied into the event's membership
  };
  PoolVector<Hint> hints;
  PoolVector<Hot> hot;  // by seq
  void hint(const Cluster& c) {
    if (hints.size() <= c.seq) hints.resize(static_cast<std::size_t>(c.seq) + 1);
    hints[c.seq] = Hint{c.centroid.data(),
                        static_cast<std::uint32_t>(c.centroid.size() * sizeof(TermWeight)),
                        static_cast<std::uint32_t>(c.accounts.size()),
                        c.dense.data(),
                        c.accounts.data(),
                        c.daily.empty() ? nullptr : &c.daily.back(),
                        c.id.data()};
  }
  // Change tracking, two horizons: kDirty clusters publish a summary at the next take_changes();
  // kUnsaved ones (and dirty pages, meta, curation) are written out only when the caller asks
  // for the state (a checkpoint), so a cluster that changes in many batches is written once.
  // Flag vectors instead of ordered sets: no allocation per event; sorted when drained.
  std::vector<std::uint8_t> flags;  // by seq: kDirty | kTouched | kUnsaved
  std::vector<std::uint32_t> dirty_clusters;
  std::vector<std::uint32_t> unsaved_clusters;
  std::vector<std::uint32_t> dirty_pages;
  std::vector<std::uint8_t> page_flags;
  void mark_page(std::uint32_t page) {
    if (page_flags.size() <= page) page_flags.resize(static_cast<std::size_t>(page) + 1, 0);
    if (page_flags[page] != 0) return;
    page_flags[page] = 1;
    dirty_pages.push_back(page);
  }
  std::vector<std::uint32_t> touched_since_maintenance;
  static constexpr std::uint8_t kDirty = 1;
  static constexpr std::uint8_t kTouched = 2;
  static constexpr std::uint8_t kUnsaved = 4;
  std::vector<std::uint32_t>& list_of(std::uint8_t flag) {
    if (flag == kDirty) return dirty_clusters;
    if (flag == kUnsaved) return unsaved_clusters;
    return touched_since_maintenance;
  }
  void mark(std::uint32_t seq, std::uint8_t flag) {
    if (flags.size() <= seq) flags.resize(static_cast<std::size_t>(seq) + 1, 0);
    if ((flags[seq] & flag) != 0) return;
    flags[seq] |= flag;
    list_of(flag).push_back(seq);
  }
  // Cluster `seq` changed (or is gone): republish it and save it at the next checkpoint. The
  // version counts changes rather than publications, so it does not depend on how the caller
  // batches: replaying the same events after a crash gives every summary the same version.
  void changed(std::uint32_t seq) {
    if (seq < clusters.size() && clusters[seq] != nullptr) ++clusters[seq]->version;
    mark(seq, kDirty);
    mark(seq, kUnsaved);
  }
  std::vector<std::uint32_t> drain(std::uint8_t flag) {
    // Copied out rather than swapped: the list keeps its capacity, so the events of the next
    // batch do not grow it again from nothing, which allocated from glibc inside add() (see
    // take_changes() on why add() avoids that).
    auto& list = list_of(flag);
    std::vector<std::uint32_t> out(list.begin(), list.end());
    list.clear();
    std::sort(out.begin(), out.end());
    for (auto seq : out) flags[seq] &= static_cast<std::uint8_t>(~flag);
    return out;
  }
  [[nodiscard]] bool has_unsaved_state() const {
    return !unsaved_clusters.empty() || !dirty_pages.empty() || dirty_meta || curation.dirty;
  }
  bool dirty_meta = false;
  std::uint64_t last_used_generation = 0;
  Curation curation;
};

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 16);
}

std::string hex8(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return std::string(buf, 8);
}

std::string product_prefix(std::string_view product) { return "agg/" + std::string(product) + "/"; }
std::string meta_key(std::string_view product) { return product_prefix(product) + "m"; }
std::string page_key(std::string_view product, std::uint32_t page) {
  return product_prefix(product) + "d/" + hex8(page);
}
std::string cluster_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "c/" + hex8(seq);
}
std::string cold_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "x/" + hex8(seq);
}
std::string merged_key(std::string_view id) { return "agg-merged/" + std::string(id); }
std::string curation_key(std::string_view product) { return product_prefix(product) + "k"; }

double sparse_dot(std::span<const TermWeight> a, std::span<const TermWeight> b) {
  // Both sorted by term; the shorter one drives binary searches into the longer one.
  const auto& small = a.size() <= b.size() ? a : b;
  const auto& large = a.size() <= b.size() ? b : a;
  double dot = 0;
  const TermWeight* first = large.data();
  std::size_t len = large.size();
  for (const auto& tw : small) {
    // lower_bound without branches on the comparison (they mispredict half of the time): the
    // same position, found with conditional moves.
    while (len > 0) {
      const std::size_t half = len / 2;
      const bool less = first[half].term < tw.term;
      first += less ? half + 1 : 0;
      len = less ? len - half - 1 : half;
    }
    len = static_cast<std::size_t>(large.data() + large.size() - first);
    if (len == 0) break;
    if (first->term == tw.term) dot += static_cast<double>(tw.w) * static_cast<double>(first->w);
  }
  return dot;
}

// a[k] += weight * v[k] for k < n: an event's dense features, once per token. Four lanes at a
// time, out of line and with restrict, so that -O2 uses packed arithmetic (inlined, or as a plain
// loop, it stayed scalar). Each element gets the same operations in the same order, so the sums
// are bit-identical to the plain loop's.
[[gnu::noinline]] void accumulate_scaled(double* __restrict a, std::size_t n, double weight,
                                         const float* __restrict v) {
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    a[k] += weight * static_cast<double>(v[k]);
    a[k + 1] += weight * static_cast<double>(v[k + 1]);
    a[k + 2] += weight * static_cast<double>(v[k + 2]);
    a[k + 3] += weight * static_cast<double>(v[k + 3]);
  }
  for (; k < n; ++k) a[k] += weight * static_cast<double>(v[k]);
}

double norm2_of(std::span<const TermWeight> v) {
  double n = 0;
  for (const auto& tw : v) n += static_cast<double>(tw.w) * static_cast<double>(tw.w);
  return n;
}

double dense_norm_of(std::span<const float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(n);
}

std::int64_t seconds_of(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

// Timestamps are normalized (0 <= nanos < 1e9), so this is exact for times before 1970 too.
std::int64_t micros_of(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1'000'000 + ts.nanos() / 1'000;
}

std::int64_t seconds_floor(std::int64_t micros) {
  return micros >= 0 ? micros / 1'000'000 : -((-micros + 999'999) / 1'000'000);
}

std::int64_t day_of(std::int64_t unix_s) {
  return unix_s >= 0 ? unix_s / kSecondsPerDay : -((-unix_s + kSecondsPerDay - 1) / kSecondsPerDay);
}

google::protobuf::Timestamp ts_of_micros(std::int64_t micros) {
  google::protobuf::Timestamp ts;
  const std::int64_t seconds = seconds_floor(micros);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<std::int32_t>((micros - seconds * 1'000'000) * 1'000));
  return ts;
}

// Truncates at a UTF-8 boundary.
// Length of the longest prefix of at most `max` bytes that ends at a UTF-8 boundary.
std::size_t clip_length(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

template <typename Out>
void top_terms_into(std::span<const TermWeight> v, std::size_t k, Out& out) {
  out.assign(v.begin(), v.end());
  auto heavier = [](const TermWeight& a, const TermWeight& b) {
    return a.w != b.w ? a.w > b.w : a.term < b.term;
  };
  if (out.size() > k) {
    // The order is total (terms are distinct), so selecting the k heaviest and sorting only them
    // gives exactly what partial_sort would, without its heap operations over every term.
    if (k == 0) {
      out.clear();
      return;
    }
    std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k - 1), out.end(),
                     heavier);
    out.resize(k);
    std::sort(out.begin(), out.end(), heavier);
  } else {
    std::sort(out.begin(), out.end(), heavier);
  }
}

std::vector<TermWeight> top_terms(std::span<const TermWeight> v, std::size_t k) {
  std::vector<TermWeight> out;
  top_terms_into(v, k, out);
  return out;
}

}  // namespace

struct Aggregator::Impl {
  ClusterConfig cfg;
  const StateReader* reader;
  std::uint32_t mask;
  std::map<std::string, std::unique_ptr<Product>, std::less<>> products;
  std::unordered_map<std::string, std::string> merged;  // id -> merged_into (not yet evicted)
  std::vector<StateWrite> pending_writes;               // merged records
  std::vector<v1::PainPointSummary> pending_summaries;  // final records of merged pain points
  std::vector<Membership> memberships;
  std::uint64_t generation = 0;

  // Scratch buffers reused by every event (no per-event heap churn once warm).
  Tokenizer tokenizer;
  Stemmer stemmer;
  Tokens tokens;
  std::vector<std::uint32_t> buckets;
  std::vector<TermWeight> vec;
  std::vector<TermWeight> merged_scratch;
  std::vector<TermWeight> truncate_scratch;
  std::vector<float> dense;
  std::vector<double> dense_acc;
  std::vector<float> acc;
  std::vector<std::uint32_t> touched;
  std::vector<std::uint32_t> top_seqs;
  std::vector<float> top_scores;  // acc of top_seqs while retrieve() selects them
  // The candidate with the best approximate score in the last retrieve() (UINT32_MAX: none):
  // usually the one an event joins, so its data is requested before anything else.
  std::uint32_t retrieved_best = UINT32_MAX;
  std::vector<TermWeight> query_scratch;
  std::vector<std::span<const Posting>> heads;
  std::vector<TermWeight> index_scratch;
  std::vector<TermWeight> hot_scratch;
  std::vector<std::uint32_t> positions;
  bool centroid_truncated = false;  // set by add_to_centroid when it dropped terms
  struct Bounded {
    double bound;
    std::uint32_t seq;
  };
  std::vector<Bounded> bounded;
  std::string key_scratch;
  std::vector<std::uint32_t> token_df;
  // word -> hashed stem. Stemming dominates featurization and the vocabulary is Zipfian;
  // cleared when full, which cannot change results (it only caches a pure function).
  // The word's vector rides along: the vectors' own table is large and node-based, so a
  // lookup there costs cache misses that this (already needed) probe does not.
  struct WordInfo {
    std::uint32_t bucket = 0;
    const float* vector = nullptr;
  };
  FlatMap<std::uint64_t, WordInfo> stem_cache;  // keyed by a 64-bit hash of the word
  PhraseLabeler phrase_labeler;
  std::vector<const float*> token_vectors;
  std::vector<std::uint64_t> word_keys;

  // size_bonus * ln(n) for n = 0 .. min(size_bonus_cap, 4096): the joining score needs it for
  // every candidate scored, and the logarithm was a visible part of that.
  std::vector<double> size_bonus_by_count;

  Impl(ClusterConfig c, const StateReader* r)
      : cfg(c), reader(r), mask((1u << std::clamp<std::uint32_t>(c.hash_bits, 8, 30)) - 1) {
    const std::uint32_t tabulated = std::min<std::uint32_t>(cfg.size_bonus_cap, 4096);
    size_bonus_by_count.resize(static_cast<std::size_t>(tabulated) + 1);
    for (std::uint32_t n = 0; n <= tabulated; ++n) {
      size_bonus_by_count[n] = cfg.size_bonus * std::log(static_cast<double>(n));
    }
  }

  // The size bonus of a cluster of `count` events (the same value as computing it).
  [[nodiscard]] double size_bonus_of(std::int64_t count) const {
    const std::int64_t n = std::min<std::int64_t>(count, cfg.size_bonus_cap);
    if (n >= 0 && static_cast<std::size_t>(n) < size_bonus_by_count.size()) {
      return size_bonus_by_count[static_cast<std::size_t>(n)];
    }
    return cfg.size_bonus * std::log(static_cast<double>(n));
  }

  [[nodiscard]] std::uint32_t dims() const {
    return cfg.word_vectors != nullptr ? cfg.word_vectors->dims() : 0;
  }

  Product& product(const std::string& id) {
    auto it = products.find(id);
    if (it == products.end()) {
      auto p = std::make_unique<Product>();
      p->id = id;
      p->dense_mean_sum.assign(dims(), 0.0);
      load(*p);
      it = products.emplace(id, std::move(p)).first;
    }
    it->second->last_used_generation = generation;
    return *it->second;
  }

  // ---------------------------------------------------------------- features
  std::uint32_t bucket_of(std::string_view word) { return word_info(word).bucket; }

  WordInfo word_info(std::string_view word) { return word_info(word, fnv1a64(word)); }

  WordInfo word_info(std::string_view word, std::uint64_t key) {
    if (const auto* hit = stem_cache.find(key)) return *hit;
    if (stem_cache.size() >= 200'000) stem_cache.clear();
    WordInfo info;
    info.bucket = static_cast<std::uint32_t>(fnv1a64(stemmer.stem(word))) & mask;
    if (cfg.word_vectors != nullptr) info.vector = cfg.word_vectors->find(word);
    *stem_cache.try_emplace(key).first = info;
    return info;
  }

  void featurize(Product& p, const std::string& text) {
    tokenizer.tokenize(text, tokens);
    buckets.clear();
    token_vectors.clear();
    // Each token costs a stem-cache and a DF-table look-up, cache misses once the vocabulary
    // outgrows the caches: request every slot first so that the misses overlap.
    word_keys.clear();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      word_keys.push_back(fnv1a64(tokens[i]));
      stem_cache.prefetch(word_keys.back());
    }
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const WordInfo info = word_info(tokens[i], word_keys[i]);
      buckets.push_back(info.bucket);
      token_vectors.push_back(info.vector);
      p.terms.prefetch(info.bucket);
    }
    ++p.doc_count;
    p.token_count += static_cast<std::int64_t>(tokens.size());
    p.dirty_meta = true;
    // Term frequencies: sort a copy of (bucket, position) to count without a map.
    vec.clear();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      vec.push_back(TermWeight{buckets[i], static_cast<float>(i)});
    }
    std::sort(vec.begin(), vec.end(), [](const TermWeight& a, const TermWeight& b) {
      return a.term != b.term ? a.term < b.term : a.w < b.w;
    });
    std::size_t out = 0;
    const double n = static_cast<double>(p.doc_count);
    for (std::size_t i = 0; i < vec.size();) {
      std::size_t j = i;
      while (j < vec.size() && vec[j].term == vec[i].term) ++j;
      const std::uint32_t term = vec[i].term;
      Term& e = *p.terms.try_emplace(term).first;
      if (!e.counted) {
        e.counted = true;
        p.page_buckets[term >> kPageBits].push_back(term);
      }
      ++e.df;
      if (const auto word = tokens[static_cast<std::size_t>(vec[i].w)];
          e.word == Term::kNone && !word.empty()) {
        e.word = static_cast<std::uint32_t>(p.words.size());
        p.words.emplace_back(word);
      }
      p.mark_page(term >> kPageBits);
      const double tf = 1.0 + std::log(static_cast<double>(j - i));
      // Smoothed IDF (as scikit-learn's smooth_idf): the +1 keeps shared terms meaningful while
      // a product has seen only a handful of events.
      const double idf = std::log((n + 1.0) / (static_cast<double>(e.df) + 1.0)) + 1.0;
      vec[out++] = TermWeight{term, static_cast<float>(tf * std::max(idf, 0.01))};
      i = j;
    }
    vec.resize(out);
    const double norm = std::sqrt(norm2_of(vec));
    if (norm > 0) {
      for (auto& tw : vec) tw.w = static_cast<float>(tw.w / norm);
    }
    featurize_dense(p);
  }

  void featurize_dense(Product& p) {
    const std::uint32_t d = dims();
    dense.clear();
    if (d == 0) return;
    dense_acc.assign(d, 0.0);
    bool any = false;
    const double total = static_cast<double>(std::max<std::int64_t>(p.token_count, 1));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const float* v = token_vectors[i];
      if (v == nullptr) continue;
      const double prob = static_cast<double>(p.terms.find(buckets[i])->df) / total;
      const double weight = cfg.sif_a / (cfg.sif_a + prob);
      accumulate_scaled(dense_acc.data(), dense_acc.size(), weight, v);
      any = true;
    }
    dense.assign(d, 0.0f);
    if (!any) return;
    double norm = 0;
    for (double x : dense_acc) norm += x * x;
    norm = std::sqrt(norm);
    if (norm == 0) return;
    // Centre on the product's running mean: GloVe averages share a large common direction
    // that otherwise makes every pair of sentences look similar.
    const double inv_docs = 1.0 / static_cast<double>(p.doc_count);
    double cnorm = 0;
    for (std::uint32_t k = 0; k < d; ++k) {
      const double unit = dense_acc[k] / norm;
      p.dense_mean_sum[k] += unit;
      dense_acc[k] = unit - p.dense_mean_sum[k] * inv_docs;
      cnorm += dense_acc[k] * dense_acc[k];
    }
    cnorm = std::sqrt(cnorm);
    if (cnorm == 0) return;
    for (std::uint32_t k = 0; k < d; ++k) dense[k] = static_cast<float>(dense_acc[k] / cnorm);
  }

  // ---------------------------------------------------------------- similarity
  // Blended similarity of an event to cluster `c`, or nullopt as soon as an upper bound shows
  // it cannot exceed `floor` (skips the dense dot product for hopeless candidates; the result
  // is the same as computing everything).
  [[nodiscard]] std::optional<double> similarity_to(const Cluster& c, std::span<const TermWeight> v,
                                                    std::span<const float> dv, double floor) const {
    double s = c.norm2 > 0 ? sparse_dot(v, c.centroid) / std::sqrt(c.norm2) : 0.0;
    double cohesion = 1.0;
    if (cfg.cohesion_exponent > 0 && c.count > 1) {
      // |sum of unit vectors| / n: 1 for identical members, lower for broad clusters.
      const double coh = std::sqrt(c.norm2) / static_cast<double>(c.count);
      cohesion = std::pow(std::min(1.0, coh), cfg.cohesion_exponent);
    }
    const bool blend = !dv.empty() && !c.dense.empty() && c.dense_norm > 0;
    const double bound = (blend ? cfg.sparse_weight * s + (1.0 - cfg.sparse_weight) : s) * cohesion;
    if (bound < floor) return std::nullopt;
    if (blend) {
      double dd = 0;
      for (std::size_t k = 0; k < dv.size(); ++k) {
        dd += static_cast<double>(dv[k]) * static_cast<double>(c.dense[k]);
      }
      s = cfg.sparse_weight * s + (1.0 - cfg.sparse_weight) * dd / c.dense_norm;
    }
    return s * cohesion;
  }

  [[nodiscard]] double cluster_similarity(const Cluster& a, const Cluster& b) const {
    double s = (a.norm2 > 0 && b.norm2 > 0)
                   ? sparse_dot(a.centroid, b.centroid) / std::sqrt(a.norm2 * b.norm2)
                   : 0.0;
    if (!a.dense.empty() && !b.dense.empty() && a.dense_norm > 0 && b.dense_norm > 0) {
      double dd = 0;
      for (std::size_t k = 0; k < a.dense.size(); ++k) {
        dd += static_cast<double>(a.dense[k]) * static_cast<double>(b.dense[k]);
      }
      s = cfg.sparse_weight * s + (1.0 - cfg.sparse_weight) * dd / (a.dense_norm * b.dense_norm);
    }
    return s;
  }

  // Approximate scores from the inverted index; leaves candidate seqs in `touched`.
  void retrieve(Product& p, std::span<const TermWeight> query, std::uint32_t exclude) {
    if (acc.size() < p.next_seq) acc.resize(p.next_seq, 0.0f);
    touched.clear();
    top_terms_into(query, cfg.query_terms, query_scratch);
    // Look every list up, then touch the heads of long ones: independent misses overlap instead
    // of each look-up waiting for the previous list's scan. (Short lists are in the term's slot,
    // which featurize() has just read for an event's terms.)
    heads.clear();
    for (const auto& tw : query_scratch) {
      const auto head = head_of(p, tw.term);
      heads.push_back(head);
      if (head.size() > Term::kInline) prefetch_bytes(head.data(), head.size() * sizeof(Posting));
    }
    // A candidate is new when its score is still 0 (a contribution is > 0). Written without a
    // branch (the slot is always written, the count moves only for a new one): whether a
    // posting's cluster was already seen is a coin toss with thousands of clusters, and a
    // mispredicted branch per posting cost more than the rest of the loop.
    std::size_t postings = 0;
    for (const auto& head : heads) postings += head.size();
    touched.resize(postings);
    std::size_t found = 0;
    for (std::size_t q = 0; q < query_scratch.size(); ++q) {
      const auto& tw = query_scratch[q];
      for (const Posting& posting : heads[q]) {
        const std::uint32_t seq = posting.seq;
        if (seq == exclude) continue;
        const float before = acc[seq];
        touched[found] = seq;
        found += static_cast<std::size_t>(before == 0.0f);
        acc[seq] = before + (tw.w * posting.w + 1e-9f);
      }
    }
    touched.resize(found);
    auto better = [&](std::uint32_t a, std::uint32_t b) {
      return acc[a] != acc[b] ? acc[a] > acc[b] : a < b;
    };
    if (touched.size() > cfg.rerank) {
      // One pass keeps the best `rerank` (score, seq) pairs in a small array sorted by
      // `better`, a total order, so this keeps exactly the set a sort would. Thousands of
      // clusters put a few hundred distinct candidates here and most fall below the last kept
      // pair: that test reads one score and compares it with the pair held in registers.
      const std::size_t keep = cfg.rerank;
      top_scores.resize(keep + 1);
      top_seqs.resize(keep + 1);
      std::size_t n = 0;
      for (std::uint32_t seq : touched) {
        const float score = acc[seq];
        acc[seq] = 0.0f;  // reset while the line is at hand (the next query starts from zero)
        if (n == keep) {
          const float last = top_scores[n - 1];
          if (!(score > last || (score == last && seq < top_seqs[n - 1]))) continue;
          --n;
        }
        std::size_t i = n;
        for (; i > 0; --i) {
          const float s = top_scores[i - 1];
          if (!(score > s || (score == s && seq < top_seqs[i - 1]))) break;
          top_scores[i] = s;
          top_seqs[i] = top_seqs[i - 1];
        }
        top_scores[i] = score;
        top_seqs[i] = seq;
        ++n;
      }
      top_seqs.resize(n);
      touched.swap(top_seqs);
      retrieved_best = touched.front();
    } else {
      retrieved_best = UINT32_MAX;
      for (std::uint32_t seq : touched) {
        if (retrieved_best == UINT32_MAX || better(seq, retrieved_best)) retrieved_best = seq;
      }
      for (std::uint32_t seq : touched) acc[seq] = 0.0f;
    }
    std::sort(touched.begin(), touched.end());
  }

  // The candidates' hot records, requested together so that their misses overlap.
  void prefetch_hot(const Product& p) const {
    for (std::uint32_t seq : touched) {
      if (seq < p.hot.size()) prefetch_bytes(&p.hot[seq], sizeof(Hot));
    }
  }

  // A candidate about to be scored exactly (the cluster records are scattered over the heap:
  // with thousands of pain points each is a cache miss): its record, centroid and dense sum,
  // requested together through the per-seq hints instead of one pointer after another.
  void prefetch_cluster(const Product& p, std::uint32_t seq) const {
    if (const Cluster* c = p.clusters[seq].get()) prefetch_bytes(c, sizeof(Cluster));
    if (seq < p.hints.size()) {
      const auto& h = p.hints[seq];
      prefetch_bytes(h.centroid, h.centroid_bytes);
      if (h.dense != nullptr) {
        prefetch_bytes(h.dense, static_cast<std::size_t>(dims()) * sizeof(float));
      }
      // What absorbing an event into it reads next: the top of the account search and today.
      if (h.accounts > 0) {
        prefetch_line(h.account_data + h.accounts / 2);
        prefetch_line(h.account_data + h.accounts / 4);
        prefetch_line(h.account_data + h.accounts * 3 / 4);
      }
      if (h.daily_last != nullptr) prefetch_line(h.daily_last);
      if (h.id != nullptr) prefetch_line(h.id);
    }
  }

  // Every cache line that [data, data + bytes) touches (from the line `data` starts in: an
  // unaligned range of n * 64 bytes spans n + 1 lines).
  static void prefetch_bytes(const void* data, std::size_t bytes) {
    const auto first = reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{63};
    const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
    for (auto line = first; line < end; line += 64) {
      prefetch_line(reinterpret_cast<const void*>(line));
    }
  }

  // ---------------------------------------------------------------- hot records
  // A non-negative bound rounded up past float rounding.
  static float round_up(double x) { return static_cast<float>(x * (1.0 + 1e-5) + 1e-7); }

  Hot& hot_of(Product& p, std::uint32_t seq) {
    if (p.hot.size() <= seq) p.hot.resize(static_cast<std::size_t>(seq) + 1);
    return p.hot[seq];
  }

  // Chooses the hot terms anew (the heaviest of the centroid) and rebuilds the record.
  void refresh_hot(Product& p, const Cluster& c) {
    Hot& h = hot_of(p, c.seq);
    top_terms_into(c.centroid, kHotTerms + 1, hot_scratch);
    h.rest_max = 0;
    if (hot_scratch.size() > kHotTerms) {
      h.rest_max = hot_scratch[kHotTerms].w;
      hot_scratch.resize(kHotTerms);
    }
    h.terms = static_cast<std::uint8_t>(hot_scratch.size());
    for (std::size_t i = 0; i < kHotTerms; ++i) {
      h.term[i] = i < hot_scratch.size() ? hot_scratch[i].term : Hot::kNoTerm;
      h.w[i] = i < hot_scratch.size() ? hot_scratch[i].w : 0.0f;
    }
    finish_hot(h, c);
  }

  // After `v` was added to c's centroid (without dropping terms): the hot weights follow the
  // centroid's (the same float sums; adding 0 leaves a float as it is); any other term grew by
  // at most the event's largest weight among them, which keeps rest_max an upper bound until the
  // next refresh (at the reindexing schedule) tightens it.
  void update_hot(Product& p, const Cluster& c, std::span<const TermWeight> v) {
    if (centroid_truncated || p.hot.size() <= c.seq || p.hot[c.seq].live == 0) {
      refresh_hot(p, c);
      return;
    }
    Hot& h = p.hot[c.seq];
    float grew = 0;
    for (const auto& tw : v) {
      bool hot = false;
      for (std::size_t k = 0; k < kHotTerms; ++k) {
        const bool match = h.term[k] == tw.term;
        h.w[k] = h.w[k] + tw.w * static_cast<float>(match);
        hot = hot || match;
      }
      grew = std::max(grew, tw.w * static_cast<float>(!hot));
    }
    h.rest_max = round_up(static_cast<double>(h.rest_max) + static_cast<double>(grew));
    finish_hot(h, c);
  }

  void finish_hot(Hot& h, const Cluster& c) const {
    h.live = 1;
    h.promoted = c.promoted ? 1 : 0;
    h.merge_due = c.count >= 2 * c.merge_checked_count ? 1 : 0;
    h.last_event_doc = c.last_event_doc;
    double kept2 = 0;
    for (std::size_t i = 0; i < h.terms; ++i) {
      kept2 += static_cast<double>(h.w[i]) * static_cast<double>(h.w[i]);
    }
    // By difference; the relative slack covers the cancellation.
    h.rest_norm = round_up(std::sqrt(std::max(0.0, c.norm2 - kept2) + 1e-6 * c.norm2));
    h.inv_norm = c.norm2 > 0 ? round_up(1.0 / std::sqrt(c.norm2)) : 0.0f;
    double cohesion = 1.0;
    if (cfg.cohesion_exponent > 0 && c.count > 1) {
      const double coh = std::min(1.0, std::sqrt(c.norm2) / static_cast<double>(c.count));
      // pow() costs as much as the rest of this update; the default exponent is a square root.
      cohesion =
          cfg.cohesion_exponent == 0.5 ? std::sqrt(coh) : std::pow(coh, cfg.cohesion_exponent);
    }
    h.cohesion = round_up(cohesion);
    h.bonus = round_up(
        std::max(0.0, cfg.size_bonus * std::log(static_cast<double>(std::clamp<std::int64_t>(
                                           c.count, 1, cfg.size_bonus_cap)))));
  }

  // Rounding slack of the bounds: they must never fall below the exact score they bound.
  static constexpr double kBoundSlack = 1e-6;

  // Upper bound of  v . centroid / |centroid|  from the hot record: exact products for the hot
  // terms, for the others the smaller of Cauchy-Schwarz and (sum of v's weights) x (largest
  // weight). Dividing by |v| is the caller's part.
  [[nodiscard]] static double sparse_bound(const Hot& h, std::span<const TermWeight> v) {
    double dot = 0;
    double rest2 = 0;
    double rest1 = 0;
    for (const auto& tw : v) {
      const double hw = h.weight_of(tw.term);
      const double x = tw.w;
      const double other = static_cast<double>(hw <= 0);
      dot += x * hw;
      rest2 += other * x * x;
      rest1 += other * x;
    }
    const double other = std::min(std::sqrt(rest2) * static_cast<double>(h.rest_norm),
                                  rest1 * static_cast<double>(h.rest_max));
    return (dot + other) * (1.0 + kBoundSlack) * static_cast<double>(h.inv_norm);
  }

  // An upper bound of  similarity + size bonus  of the current event (vec, dense) to the
  // cluster at `seq`, from its hot record alone (sparse_bound; the dense cosine counts as 1).
  [[nodiscard]] double upper_bound(const Product& p, std::uint32_t seq) const {
    const Hot& h = p.hot[seq];
    double s = sparse_bound(h, vec) + kBoundSlack;
    if (!dense.empty()) s = cfg.sparse_weight * s + (1.0 - cfg.sparse_weight);
    return s * static_cast<double>(h.cohesion) + static_cast<double>(h.bonus) + kBoundSlack;
  }

  // An upper bound of cluster_similarity(c, cluster at `seq`) from the other's hot record
  // (maintenance's near-duplicate check; the dense cosine counts as 1).
  [[nodiscard]] double merge_bound(const Product& p, const Cluster& c, std::uint32_t seq) const {
    const Hot& h = p.hot[seq];
    if (c.norm2 <= 0) return (dims() > 0 ? 1.0 - cfg.sparse_weight : 0.0) + kBoundSlack;
    const double s = sparse_bound(h, c.centroid) / std::sqrt(c.norm2) + kBoundSlack;
    // Blended or not (that depends on both dense sums), neither exceeds the larger of the two.
    return dims() > 0 ? std::max(s, cfg.sparse_weight * s + (1.0 - cfg.sparse_weight)) : s;
  }

  // ---------------------------------------------------------------- index
  // The postings retrieval reads for `term` (its list's head), empty when none.
  static std::span<const Posting> head_of(const Product& p, std::uint32_t term) {
    const Term* t = p.terms.find(term);
    if (t == nullptr || t->list == Term::kNone) return {};
    if (t->inline_n != Term::kLongList) return {t->head.data(), t->inline_n};
    return p.lists[t->list].head;
  }

  // Keeps the copy of a short list's head in the term's slot equal to the list's head.
  static void sync_inline(Term& t, const PostingList& list) {
    if (list.head.size() > Term::kInline) {
      t.inline_n = Term::kLongList;
      return;
    }
    std::copy(list.head.begin(), list.head.end(), t.head.begin());
    t.inline_n = static_cast<std::uint8_t>(list.head.size());
  }

  void unindex(Product& p, Cluster& c) {
    for (const auto& tw : c.indexed) {
      Term* t = p.terms.find(tw.term);
      if (t == nullptr || t->list == Term::kNone) continue;
      PostingList& list = p.lists[t->list];
      list.erase(Posting{tw.w, c.seq}, cfg.posting_scan);
      sync_inline(*t, list);
    }
    c.indexed.clear();
  }

  void insert_postings(Product& p, const Cluster& c) {
    for (const auto& tw : c.indexed) {
      Term& t = *p.terms.try_emplace(tw.term).first;
      if (t.list == Term::kNone) {
        t.list = static_cast<std::uint32_t>(p.lists.size());
        p.lists.emplace_back();
      }
      PostingList& list = p.lists[t.list];
      list.insert(Posting{tw.w, c.seq}, cfg.posting_scan);
      sync_inline(t, list);
    }
  }

  // The term's statistics if the product counted it (seen in an event or loaded), else null.
  static const Term* counted_term(const Product& p, std::uint32_t term) {
    const Term* t = p.terms.find(term);
    return t != nullptr && t->counted ? t : nullptr;
  }

  // The first surface form of a counted term, empty when none was recorded.
  static std::string_view word_of(const Product& p, const Term& t) {
    return t.word == Term::kNone ? std::string_view{} : std::string_view{p.words[t.word]};
  }

  void reindex(Product& p, Cluster& c) {
    const double norm = std::sqrt(c.norm2);
    top_terms_into(c.centroid, cfg.indexed_terms, index_scratch);
    for (auto& tw : index_scratch) tw.w = norm > 0 ? static_cast<float>(tw.w / norm) : 0.0f;
    // Terms with a small share of the centroid add little to retrieval but make posting lists
    // long and reindexing busy (the top-weighted term is always kept).
    while (index_scratch.size() > 1 &&
           index_scratch.back().w < static_cast<float>(cfg.min_indexed_weight)) {
      index_scratch.pop_back();
    }
    // Same terms in the same order with weights within 10%: the postings stay as they are
    // (posting weights only rank candidates for the exact rescoring).
    if (index_scratch.size() == c.indexed.size()) {
      bool same = true;
      for (std::size_t i = 0; i < index_scratch.size() && same; ++i) {
        same = index_scratch[i].term == c.indexed[i].term &&
               std::abs(index_scratch[i].w - c.indexed[i].w) <= 0.1f * c.indexed[i].w;
      }
      if (same) return;
    }
    unindex(p, c);
    if (norm <= 0) return;
    c.indexed.assign(index_scratch.begin(), index_scratch.end());
    insert_postings(p, c);
  }

  static bool reindex_due(std::int64_t count) {
    return count <= 4 || (count & (count - 1)) == 0 || count % 16 == 0;
  }

  // ---------------------------------------------------------------- cluster updates
  void add_to_centroid(Cluster& c, std::span<const TermWeight> v) {
    centroid_truncated = false;
    if (add_in_place(c, v)) return;
    merged_scratch.clear();
    auto a = c.centroid.begin();
    auto b = v.begin();
    while (a != c.centroid.end() || b != v.end()) {
      if (b == v.end() || (a != c.centroid.end() && a->term < b->term)) {
        merged_scratch.push_back(*a++);
      } else if (a == c.centroid.end() || b->term < a->term) {
        merged_scratch.push_back(*b++);
      } else {
        merged_scratch.push_back(TermWeight{a->term, a->w + b->w});
        ++a;
        ++b;
      }
    }
    if (merged_scratch.size() > cfg.centroid_terms) {
      centroid_truncated = true;
      // Keep the heaviest terms (ties: lower term) so the centroid stays bounded. The order is
      // total, so the k-th heaviest (selected on a copy) separates exactly the set that sorting
      // would keep; filtering the merge by it keeps that set in term order, with no sort.
      auto heavier = [](const TermWeight& x, const TermWeight& y) {
        return x.w != y.w ? x.w > y.w : x.term < y.term;
      };
      const auto k = static_cast<std::ptrdiff_t>(cfg.centroid_terms);
      truncate_scratch.assign(merged_scratch.begin(), merged_scratch.end());
      std::nth_element(truncate_scratch.begin(), truncate_scratch.begin() + k - 1,
                       truncate_scratch.end(), heavier);
      const TermWeight kth = truncate_scratch[static_cast<std::size_t>(k - 1)];
      std::erase_if(merged_scratch, [&](const TermWeight& x) { return heavier(kth, x); });
    }
    c.centroid.assign(merged_scratch.begin(), merged_scratch.end());
    c.norm2 = norm2_of(c.centroid);
  }

  // The usual case: every term of `v` is already in the centroid. Adds in place (the same sums
  // as the merge) and keeps the cluster's buffer, instead of trading it for the scratch buffer,
  // which scattered centroids over the heap and made each absorb write to a cold buffer.
  // One linear walk (predictable branches, unlike binary searches) records where each term is.
  bool add_in_place(Cluster& c, std::span<const TermWeight> v) {
    positions.clear();
    std::size_t i = 0;
    for (const auto& tw : v) {
      while (i < c.centroid.size() && c.centroid[i].term < tw.term) ++i;
      if (i == c.centroid.size() || c.centroid[i].term != tw.term) return false;
      positions.push_back(static_cast<std::uint32_t>(i));
    }
    for (std::size_t k = 0; k < v.size(); ++k) {
      c.centroid[positions[k]].w = c.centroid[positions[k]].w + v[k].w;
    }
    c.norm2 = norm2_of(c.centroid);
    return true;
  }

  void add_dense(Cluster& c, std::span<const float> dv) {
    if (dv.empty()) return;
    if (c.dense.empty()) c.dense.assign(dv.size(), 0.0f);
    for (std::size_t k = 0; k < dv.size(); ++k) c.dense[k] += dv[k];
    c.dense_norm = dense_norm_of(c.dense);
  }

  void add_day(Cluster& c, std::int64_t day, std::int64_t n) {
    const auto w = static_cast<std::int64_t>(cfg.daily_window_days);
    if (c.daily.empty()) {
      c.daily.assign(static_cast<std::size_t>(w), 0);
      c.day_of_last = day;
    }
    if (day > c.day_of_last) {
      const std::int64_t shift = day - c.day_of_last;
      if (shift >= w) {
        std::fill(c.daily.begin(), c.daily.end(), 0);
      } else {
        std::rotate(c.daily.begin(), c.daily.begin() + shift, c.daily.end());
        std::fill(c.daily.end() - shift, c.daily.end(), 0);
      }
      c.day_of_last = day;
    }
    const std::int64_t idx = w - 1 - (c.day_of_last - day);
    if (idx >= 0) c.daily[static_cast<std::size_t>(idx)] += n;
  }

  void add_account(Cluster& c, std::uint64_t hash, std::int64_t arr) {
    auto it = std::lower_bound(c.accounts.begin(), c.accounts.end(), hash,
                               [](const Account& a, std::uint64_t h) { return a.hash < h; });
    if (it != c.accounts.end() && it->hash == hash) {
      // ARR is a property of the account: keep the latest known non-zero figure.
      if (arr > 0 && arr != it->arr) {
        c.arr += arr - it->arr;
        it->arr = arr;
        c.cold_dirty = true;
      }
      return;
    }
    if (c.accounts.size() >= cfg.max_accounts) {
      c.cold_dirty = c.cold_dirty || !c.accounts_saturated;
      c.accounts_saturated = true;
      return;
    }
    c.accounts.insert(it, Account{hash, arr});
    c.arr += arr;
    c.cold_dirty = true;
  }

  void offer_exemplar(Cluster& c, const v1::FeedbackEvent& e, double score) {
    const std::size_t cap = cfg.exemplars + 2;
    // Fills the slot in place: a replaced exemplar's buffers are reused (young pain points
    // replace exemplars on most events, and allocations there were a large part of an event's
    // cost).
    auto fill = [&](Exemplar& x) {
      x.event_id.assign(e.event_id().data(), e.event_id().size());
      x.text.assign(e.text().data(), clip_length(e.text(), kMaxExemplarText));
      top_terms_into(vec, kExemplarTerms, x.terms);
      std::sort(x.terms.begin(), x.terms.end(),
                [](const TermWeight& a, const TermWeight& b) { return a.term < b.term; });
      x.score = static_cast<float>(score);
    };
    if (c.exemplars.size() < cap) {
      if (c.exemplars.capacity() < cap) c.exemplars.reserve(cap);
      fill(c.exemplars.emplace_back());
      c.cold_dirty = true;
      c.exemplar_floor_valid = false;
      return;
    }
    // Only rescore the pool when the newcomer could plausibly enter it.
    if (!c.exemplar_floor_valid) {
      c.exemplar_floor = c.exemplars[worst_exemplar(c)].score;
      c.exemplar_floor_valid = true;
    }
    if (score <= c.exemplar_floor) return;
    rescore_exemplars(c);
    const std::size_t worst = worst_exemplar(c);
    if (score > c.exemplars[worst].score) fill(c.exemplars[worst]);
  }

  static std::size_t worst_exemplar(const Cluster& c) {
    std::size_t worst = 0;
    for (std::size_t i = 0; i < c.exemplars.size(); ++i) {
      if (c.exemplars[i].score < c.exemplars[worst].score) worst = i;
    }
    return worst;
  }

  static void rescore_exemplars(Cluster& c) {
    c.cold_dirty = true;
    c.exemplar_floor_valid = false;
    const double norm = std::sqrt(c.norm2);
    for (auto& x : c.exemplars) {
      x.score = norm > 0 ? static_cast<float>(sparse_dot(x.terms, c.centroid) / norm) : 0.0f;
    }
  }

  Cluster& open_cluster(Product& p, const v1::FeedbackEvent& e) {
    auto c = std::make_unique<Cluster>();
    c->seq = p.next_seq++;
    c->id = "pp-" + hex16(fnv1a64(p.id + '\x1f' + e.event_id()));
    c->first_seen_us = micros_of(e.occurred_at());
    c->last_seen_us = c->first_seen_us;
    p.candidates.push_back(c->seq);
    p.clusters.push_back(std::move(c));
    return *p.clusters.back();
  }

  void absorb_event(Product& p, Cluster& c, const v1::FeedbackEvent& e, double score) {
    add_to_centroid(c, vec);
    add_dense(c, dense);
    ++c.count;
    c.last_event_doc = p.doc_count;
    const std::int64_t t_us = micros_of(e.occurred_at());
    const std::int64_t t = seconds_floor(t_us);
    c.first_seen_us = std::min(c.first_seen_us, t_us);
    c.last_seen_us = std::max(c.last_seen_us, t_us);
    add_day(c, day_of(t), 1);
    const auto src = static_cast<std::size_t>(e.source());
    if (src < c.sources.size()) ++c.sources[src];
    if (!e.account_id().empty()) add_account(c, fnv1a64(e.account_id()), e.account_arr_cents());
    offer_exemplar(c, e, score);
    if (!c.promoted && c.count >= cfg.min_support) {
      c.promoted = true;
      ++p.live_promoted;
    }
    if (reindex_due(c.count)) {
      reindex(p, c);
      refresh_hot(p, c);
    } else {
      update_hot(p, c, vec);
    }
    p.hint(c);
    p.changed(c.seq);
    // Maintenance checks only pain points that doubled since their last check (merge_due), so
    // only those need its mark: with thousands of pain points nearly every event touches
    // another one, and visiting each touched one at maintenance cost a cache miss per event.
    // (load() and settle_touched() mark every cluster that grew, a superset: maintenance skips
    // the others, so what it does is the same.)
    if (c.promoted && c.count >= 2 * c.merge_checked_count) p.mark(c.seq, Product::kTouched);
  }

  std::string add(const v1::FeedbackEvent& e) {
    Product& p = product(e.product_id());
    p.latest = std::max(p.latest, seconds_of(e.occurred_at()));
    featurize(p, e.text());
    retrieve(p, vec, UINT32_MAX);
    // Bound every candidate from its hot record, then score exactly, highest bound first, only
    // those whose bound still reaches the threshold and the best score so far. The choice is the
    // full scoring's: the highest score, ties to the lower seq.
    if (retrieved_best != UINT32_MAX) prefetch_cluster(p, retrieved_best);
    prefetch_hot(p);
    bounded.clear();
    for (std::uint32_t seq : touched) {
      if (seq < p.hot.size() && p.hot[seq].live != 0) bounded.push_back({upper_bound(p, seq), seq});
    }
    std::sort(bounded.begin(), bounded.end(), [](const Bounded& a, const Bounded& b) {
      return a.bound != b.bound ? a.bound > b.bound : a.seq < b.seq;
    });
    if (!bounded.empty() && bounded.front().seq != retrieved_best) {
      prefetch_cluster(p, bounded.front().seq);
    }
    Cluster* best = nullptr;
    double best_score = -1e9;
    double best_sim = 0;
    for (std::size_t i = 0; i < bounded.size(); ++i) {
      if (bounded[i].bound < std::max(cfg.join_threshold, best_score)) break;
      if (i + 1 < bounded.size()) prefetch_cluster(p, bounded[i + 1].seq);
      Cluster* c = p.clusters[bounded[i].seq].get();
      const double bonus = size_bonus_of(c->count);
      // Skips the dense part when the sparse part already rules the candidate out.
      const double floor = std::max(cfg.join_threshold, best_score) - bonus - 1e-9;
      const auto sim_or = similarity_to(*c, vec, dense, floor);
      if (!sim_or) continue;
      const double sim = *sim_or;
      const double score = sim + bonus;
      if (score > best_score || (score == best_score && c->seq < best->seq)) {
        best_score = score;
        best_sim = sim;
        best = c;
      }
    }
    if (best == nullptr || best_score < cfg.join_threshold) {
      best = &open_cluster(p, e);
      best_sim = 1.0;
    }
    absorb_event(p, *best, e, best_sim);
    memberships.push_back(Membership{e.event_id(), p.id, best->id});
    std::string id = best->id;
    if (++p.since_maintenance >= cfg.maintenance_interval) maintain(p);
    return id;
  }

  // ---------------------------------------------------------------- maintenance
  // Runs every maintenance_interval events of a product (counted in events, not batches, so
  // that the result does not depend on how the caller batches).
  void maintain(Product& p) {
    p.since_maintenance = 0;
    p.dirty_meta = true;
    // Merge: each pain point that grew since the last run looks for near-duplicates among
    // the clusters sharing its heaviest terms; the younger one goes into the older one.
    const std::vector<std::uint32_t> grown = p.drain(Product::kTouched);
    for (std::uint32_t seq : grown) {
      // The hot record says whether the check below would skip it, without visiting the record.
      if (seq >= p.hot.size()) continue;
      if (const Hot& h = p.hot[seq]; h.live == 0 || h.promoted == 0 || h.merge_due == 0) continue;
      Cluster* c = p.clusters[seq].get();
      // Re-check a pain point only once it has doubled since its last check: its centroid
      // barely moves in between, and this keeps maintenance O(log n) per pain point.
      if (c == nullptr || !c->promoted || c->count < 2 * c->merge_checked_count) continue;
      c->merge_checked_count = c->count;
      p.hot[seq].merge_due = c->count == 0 ? 1 : 0;
      p.changed(seq);
      retrieve(p, c->centroid, seq);
      Cluster* target = nullptr;
      double best = cfg.merge_threshold;
      for (std::uint32_t other : touched) {
        // Most candidates only share common terms: ruled out from their hot records, without
        // touching their (cold) clusters.
        if (other >= p.hot.size() || p.hot[other].live == 0 || p.hot[other].promoted == 0) continue;
        if (merge_bound(p, *c, other) < best) continue;
        Cluster* o = p.clusters[other].get();
        if (o == nullptr || !o->promoted) continue;
        if (!p.curation.auto_merge_allowed(c->id, o->id)) continue;
        const double s = cluster_similarity(*c, *o);
        if (s >= best) {
          best = s;
          target = o;
        }
      }
      if (target == nullptr) continue;
      Cluster* older = target->seq < c->seq ? target : c;
      Cluster* younger = target->seq < c->seq ? c : target;
      // A human-named pain point survives (keeps its id and label) even when it is the younger.
      if (p.curation.renamed(younger->id)) std::swap(older, younger);
      merge(p, *older, *younger);
    }
    // Retire candidates that never gathered support (only candidates are visited: touching
    // every pain point here would cost a cache miss each).
    std::size_t kept = 0;
    for (std::size_t i = 0; i < p.candidates.size(); ++i) {
      const std::uint32_t seq = p.candidates[i];
      // From the hot record: live and promoted mirror the cluster's, so only expiring
      // candidates are visited.
      if (seq >= p.hot.size() || p.hot[seq].live == 0 || p.hot[seq].promoted != 0) continue;
      if (p.doc_count - p.hot[seq].last_event_doc >
          static_cast<std::int64_t>(cfg.candidate_ttl_events)) {
        auto& slot = p.clusters[seq];
        unindex(p, *slot);
        p.changed(seq);
        p.hot[seq].live = 0;
        slot.reset();
        continue;
      }
      p.candidates[kept++] = seq;
    }
    p.candidates.resize(kept);
  }

  void merge(Product& p, Cluster& into, Cluster& from) {
    // The absorbed pain point's final record (built before its evidence moves) points to its
    // survivor.
    v1::PainPointSummary fin;
    ++from.version;  // the final record supersedes the last published one
    fill_summary(p, from, fin);
    fin.set_status(v1::STATUS_MERGED);
    fin.set_merged_into(into.id);
    pending_summaries.push_back(std::move(fin));
    unindex(p, from);
    add_to_centroid(into, from.centroid);
    if (!from.dense.empty()) add_dense(into, from.dense);
    into.count += from.count;
    into.last_event_doc = std::max(into.last_event_doc, from.last_event_doc);
    into.first_seen_us = std::min(into.first_seen_us, from.first_seen_us);
    into.last_seen_us = std::max(into.last_seen_us, from.last_seen_us);
    for (std::size_t i = 0; i < from.daily.size(); ++i) {
      const std::int64_t day =
          from.day_of_last - static_cast<std::int64_t>(from.daily.size() - 1 - i);
      if (from.daily[i] != 0) add_day(into, day, from.daily[i]);
    }
    for (std::size_t s = 0; s < into.sources.size(); ++s) into.sources[s] += from.sources[s];
    for (const auto& a : from.accounts) add_account(into, a.hash, a.arr);
    into.accounts_saturated = into.accounts_saturated || from.accounts_saturated;
    for (auto& x : from.exemplars) into.exemplars.push_back(std::move(x));
    rescore_exemplars(into);
    std::stable_sort(into.exemplars.begin(), into.exemplars.end(),
                     [](const Exemplar& a, const Exemplar& b) { return a.score > b.score; });
    if (into.exemplars.size() > cfg.exemplars + 2) into.exemplars.resize(cfg.exemplars + 2);
    reindex(p, into);
    refresh_hot(p, into);
    p.changed(into.seq);
    p.mark(into.seq, Product::kTouched);

    merged[from.id] = into.id;
    v1::AggMerged rec;
    rec.set_id(from.id);
    rec.set_merged_into(into.id);
    pending_writes.push_back(StateWrite{merged_key(from.id), rec.SerializeAsString()});
    --p.live_promoted;
    p.changed(from.seq);
    p.curation.on_merge(from.id, into.id);
    p.hot[from.seq].live = 0;
    p.clusters[from.seq].reset();
  }

  // ---------------------------------------------------------------- summaries
  // Publishes the current state of `c` into `s`. The medoid is the
  // exemplar closest to the current centroid; scores are recomputed here without touching the
  // persisted ones.
  void fill_summary(const Product& p, Cluster& c, v1::PainPointSummary& s) {
    const double cnorm = std::sqrt(c.norm2);
    std::vector<std::pair<double, const Exemplar*>> ranked;
    for (const auto& x : c.exemplars) {
      ranked.emplace_back(cnorm > 0 ? sparse_dot(x.terms, c.centroid) / cnorm : 0.0, &x);
    }
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second->event_id < b.second->event_id;
    });
    std::vector<const Exemplar*> ex;
    for (const auto& r : ranked) ex.push_back(r.second);
    // c-TF-IDF: the cluster's term mass times ln(1 + N / df); document frequency stands in for
    // the class frequency of BERTopic's formula, which keeps it incremental.
    std::vector<TermWeight> scored;
    const double n = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
    for (const auto& tw : c.centroid) {
      const Term* e = counted_term(p, tw.term);
      if (e == nullptr || word_of(p, *e).empty() || word_of(p, *e).front() == '_') continue;
      const double score = static_cast<double>(tw.w) * std::log(1.0 + n / e->df);
      scored.push_back(TermWeight{tw.term, static_cast<float>(score)});
    }
    scored = top_terms(scored, cfg.keywords);

    s.Clear();
    s.set_id(c.id);
    s.set_product_id(p.id);
    s.set_status(v1::STATUS_ACTIVE);
    s.set_version(c.version);
    for (const auto& tw : scored)
      s.add_keywords(std::string(word_of(p, *counted_term(p, tw.term))));
    // Label: a phrase of the exemplars close to the centroid (phrase_label.h), under the same
    // term weights as featurize(); without one, the top three keywords in the order the medoid
    // uses them.
    std::vector<std::string_view> texts;
    for (const Exemplar* x : ex) texts.emplace_back(x->text.data(), x->text.size());
    std::vector<std::uint32_t> top;
    for (std::size_t k = 0; k < scored.size() && k < 3; ++k) top.push_back(scored[k].term);
    std::string label = phrase_labeler.label(texts, top, [&](std::string_view token) {
      PhraseTerm t{bucket_of(token), 0.0, 0.0};
      const Term* e = counted_term(p, t.term);
      const double df = e != nullptr ? static_cast<double>(e->df) : 1.0;
      t.idf = std::max(std::log((n + 1.0) / (df + 1.0)) + 1.0, 0.01);
      const auto it = std::lower_bound(
          c.centroid.begin(), c.centroid.end(), t.term,
          [](const TermWeight& tw, std::uint32_t term) { return tw.term < term; });
      if (it != c.centroid.end() && it->term == t.term && cnorm > 0) t.centroid = it->w / cnorm;
      return t;
    });
    std::vector<std::pair<std::size_t, std::string>> words;
    if (!ex.empty() && label.empty()) {
      tokenizer.tokenize(ex.front()->text, tokens);
    } else {
      tokens.clear();
    }
    for (std::size_t k = 0; k < scored.size() && k < 3 && label.empty(); ++k) {
      std::size_t pos = SIZE_MAX - 3 + k;
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (bucket_of(tokens[i]) == scored[k].term) {
          pos = i;
          break;
        }
      }
      words.emplace_back(pos, word_of(p, *counted_term(p, scored[k].term)));
    }
    std::sort(words.begin(), words.end());
    for (const auto& w : words) {
      if (!label.empty()) label += ' ';
      label += w.second;
    }
    s.set_label(label);
    if (const auto it = p.curation.labels.find(c.id); it != p.curation.labels.end()) {
      s.set_label(it->second);
    }
    for (std::size_t i = 0; i < ex.size() && i < cfg.exemplars; ++i) {
      auto* out = s.add_exemplars();
      out->set_event_id(ex[i]->event_id.data(), ex[i]->event_id.size());
      out->set_text(ex[i]->text.data(), ex[i]->text.size());
    }
    s.set_event_count(c.count);
    s.set_account_count(static_cast<std::int64_t>(c.accounts.size()));
    for (std::size_t src = 0; src < c.sources.size(); ++src) {
      if (c.sources[src] == 0) continue;
      auto* sc = s.add_source_counts();
      sc->set_source(static_cast<v1::Source>(src));
      sc->set_count(c.sources[src]);
    }
    s.set_arr_at_risk_cents(c.arr);
    *s.mutable_first_seen() = ts_of_micros(c.first_seen_us);
    *s.mutable_last_seen() = ts_of_micros(c.last_seen_us);
    // The window ends on the day of last_seen.
    const std::int64_t last_day = day_of(seconds_floor(c.last_seen_us));
    const auto w = static_cast<std::int64_t>(c.daily.size());
    for (std::int64_t i = 0; i < w; ++i) {
      const std::int64_t day = last_day - (w - 1 - i);
      const std::int64_t idx = w - 1 - (c.day_of_last - day);
      s.add_daily_counts(idx >= 0 && idx < w ? c.daily[static_cast<std::size_t>(idx)] : 0);
    }
    const double trend = trend_of(std::span<const std::int64_t>(
        s.daily_counts().data(), static_cast<std::size_t>(s.daily_counts_size())));
    s.set_trend(trend);
    SeverityInputs in;
    in.event_count = c.count;
    in.account_count = s.account_count();
    in.arr_at_risk_cents = c.arr;
    in.trend = trend;
    in.days_since_last_seen =
        static_cast<double>(p.latest - seconds_floor(c.last_seen_us)) / kSecondsPerDay;
    in.half_life_days = static_cast<double>(cfg.severity_half_life.count()) / 24.0;
    s.set_severity(severity(in));
  }

  // ---------------------------------------------------------------- persistence
  static v1::AggCluster to_proto(const Cluster& c) {
    v1::AggCluster m;
    m.set_seq(c.seq);
    m.set_id(c.id);
    m.set_promoted(c.promoted);
    m.set_count(c.count);
    for (const auto& tw : c.centroid) {
      m.add_term(tw.term);
      m.add_weight(tw.w);
    }
    for (float x : c.dense) m.add_dense_sum(x);
    for (const auto& tw : c.indexed) {
      m.add_indexed_term(tw.term);
      m.add_indexed_weight(tw.w);
    }
    m.set_arr_at_risk_cents(c.arr);
    for (auto s : c.sources) m.add_source_count(s);
    m.set_first_seen_unix_s(seconds_floor(c.first_seen_us));
    m.set_last_seen_unix_s(seconds_floor(c.last_seen_us));
    m.set_first_seen_micros(c.first_seen_us);
    m.set_last_seen_micros(c.last_seen_us);
    m.set_day_of_last(c.day_of_last);
    for (auto d : c.daily) m.add_daily(d);
    m.set_version(c.version);
    m.set_last_event_doc(c.last_event_doc);
    m.set_merge_checked_count(c.merge_checked_count);
    return m;
  }

  static v1::AggCluster cold_to_proto(const Cluster& c) {
    v1::AggCluster m;
    m.set_seq(c.seq);
    for (const auto& a : c.accounts) {
      m.add_account(a.hash);
      m.add_account_arr_cents(a.arr);
    }
    m.set_accounts_saturated(c.accounts_saturated);
    for (const auto& x : c.exemplars) {
      auto* e = m.add_exemplar();
      e->set_event_id(x.event_id.data(), x.event_id.size());
      e->set_text(x.text.data(), x.text.size());
      for (const auto& tw : x.terms) {
        e->add_term(tw.term);
        e->add_weight(tw.w);
      }
      e->set_score(x.score);
    }
    return m;
  }

  static void cold_from_proto(const v1::AggCluster& m, Cluster& c) {
    for (int i = 0; i < m.account_size() && i < m.account_arr_cents_size(); ++i) {
      c.accounts.push_back(Account{m.account(i), m.account_arr_cents(i)});
    }
    c.accounts_saturated = m.accounts_saturated();
    for (const auto& e : m.exemplar()) {
      Exemplar x;
      x.event_id.assign(e.event_id().data(), e.event_id().size());
      x.text.assign(e.text().data(), e.text().size());
      for (int i = 0; i < e.term_size() && i < e.weight_size(); ++i) {
        x.terms.push_back(TermWeight{e.term(i), e.weight(i)});
      }
      x.score = e.score();
      c.exemplars.push_back(std::move(x));
    }
  }

  static std::unique_ptr<Cluster> from_proto(const v1::AggCluster& m) {
    auto c = std::make_unique<Cluster>();
    c->seq = m.seq();
    c->id = m.id();
    c->promoted = m.promoted();
    c->count = m.count();
    for (int i = 0; i < m.term_size() && i < m.weight_size(); ++i) {
      c->centroid.push_back(TermWeight{m.term(i), m.weight(i)});
    }
    c->norm2 = norm2_of(c->centroid);
    c->dense.assign(m.dense_sum().begin(), m.dense_sum().end());
    c->dense_norm = dense_norm_of(c->dense);
    for (int i = 0; i < m.indexed_term_size() && i < m.indexed_weight_size(); ++i) {
      c->indexed.push_back(TermWeight{m.indexed_term(i), m.indexed_weight(i)});
    }
    c->arr = m.arr_at_risk_cents();
    for (int i = 0; i < m.source_count_size() && i < 4; ++i) {
      c->sources[static_cast<std::size_t>(i)] = m.source_count(i);
    }
    // State written before the microsecond fields existed has whole seconds only.
    c->first_seen_us =
        m.has_first_seen_micros() ? m.first_seen_micros() : m.first_seen_unix_s() * 1'000'000;
    c->last_seen_us =
        m.has_last_seen_micros() ? m.last_seen_micros() : m.last_seen_unix_s() * 1'000'000;
    c->day_of_last = m.day_of_last();
    c->daily.assign(m.daily().begin(), m.daily().end());
    c->version = m.version();
    c->last_event_doc = m.last_event_doc();
    c->merge_checked_count = m.merge_checked_count();
    return c;
  }

  void load(Product& p) {
    if (reader == nullptr) return;
    const auto meta = reader->get(meta_key(p.id));
    if (!meta) return;
    v1::AggProductState m;
    if (!m.ParseFromString(*meta)) return;
    p.doc_count = m.doc_count();
    p.token_count = m.token_count();
    p.next_seq = m.next_seq();
    p.since_maintenance = m.events_since_maintenance();
    p.latest = m.latest_unix_s();
    if (m.dense_mean_sum_size() == static_cast<int>(dims())) {
      p.dense_mean_sum.assign(m.dense_mean_sum().begin(), m.dense_mean_sum().end());
    }
    reader->scan(product_prefix(p.id) + "d/", [&](std::string_view, std::string_view value) {
      v1::AggDfPage page;
      if (!page.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
      for (int i = 0; i < page.bucket_size() && i < page.df_size() && i < page.word_size(); ++i) {
        Term& t = *p.terms.try_emplace(page.bucket(i)).first;
        t.df = page.df(i);
        t.counted = true;
        t.word = Term::kNone;
        if (!page.word(i).empty()) {
          t.word = static_cast<std::uint32_t>(p.words.size());
          p.words.push_back(page.word(i));
        }
        p.page_buckets[page.bucket(i) >> kPageBits].push_back(page.bucket(i));
      }
    });
    p.clusters.resize(p.next_seq);
    reader->scan(product_prefix(p.id) + "c/", [&](std::string_view, std::string_view value) {
      v1::AggCluster c;
      if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
      if (c.seq() >= p.next_seq) return;
      p.clusters[c.seq()] = from_proto(c);
    });
    reader->scan(product_prefix(p.id) + "x/", [&](std::string_view, std::string_view value) {
      v1::AggCluster c;
      if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) return;
      if (c.seq() >= p.next_seq || p.clusters[c.seq()] == nullptr) return;
      cold_from_proto(c, *p.clusters[c.seq()]);
    });
    // Posting order is (weight, seq): inserting in any order rebuilds the same lists.
    for (auto& c : p.clusters) {
      if (c == nullptr) continue;
      insert_postings(p, *c);
      refresh_hot(p, *c);
      if (c->promoted) {
        ++p.live_promoted;
      } else {
        p.candidates.push_back(c->seq);
      }
    }
    // Which pain points grew since the last maintenance is derivable: those whose
    // last_event_doc falls after it.
    const std::int64_t since = p.doc_count - p.since_maintenance;
    for (auto& c : p.clusters) {
      if (c != nullptr && c->last_event_doc > since) p.mark(c->seq, Product::kTouched);
    }
    load_curation(p);
  }

  void flush(Product& p, Changes& out, StateOutput state) {
    for (std::uint32_t seq : p.drain(Product::kDirty)) {
      Cluster* c = p.clusters[seq].get();
      if (c == nullptr || !c->promoted) continue;
      out.summaries.emplace_back();
      fill_summary(p, *c, out.summaries.back());
    }
    if (state == StateOutput::kDefer) return;
    flush_curation(p, out);
    for (std::uint32_t seq : p.drain(Product::kUnsaved)) {
      Cluster* c = p.clusters[seq].get();
      if (c == nullptr) {
        out.state.push_back(StateWrite{cluster_key(p.id, seq), std::nullopt});
        out.state.push_back(StateWrite{cold_key(p.id, seq), std::nullopt});
        continue;
      }
      out.state.push_back(StateWrite{cluster_key(p.id, seq), to_proto(*c).SerializeAsString()});
      if (c->cold_dirty) {
        out.state.push_back(StateWrite{cold_key(p.id, seq), cold_to_proto(*c).SerializeAsString()});
        c->cold_dirty = false;
      }
    }
    std::sort(p.dirty_pages.begin(), p.dirty_pages.end());
    for (std::uint32_t page : p.dirty_pages) {
      p.page_flags[page] = 0;
      // Collect the page's buckets in bucket order (deterministic bytes).
      v1::AggDfPage m;
      auto& keys = p.page_buckets[page];
      std::sort(keys.begin(), keys.end());
      for (std::uint32_t b : keys) {
        const Term& e = *counted_term(p, b);
        m.add_bucket(b);
        m.add_df(e.df);
        m.add_word(std::string(word_of(p, e)));
      }
      out.state.push_back(StateWrite{page_key(p.id, page), m.SerializeAsString()});
    }
    p.dirty_pages.clear();
    if (p.dirty_meta) {
      v1::AggProductState m;
      m.set_product_id(p.id);
      m.set_doc_count(p.doc_count);
      m.set_token_count(p.token_count);
      m.set_next_seq(p.next_seq);
      m.set_events_since_maintenance(p.since_maintenance);
      for (double x : p.dense_mean_sum) m.add_dense_mean_sum(x);
      m.set_latest_unix_s(p.latest);
      out.state.push_back(StateWrite{meta_key(p.id), m.SerializeAsString()});
      p.dirty_meta = false;
    }
  }

  Changes take_changes(StateOutput state) {
    Changes out;
    out.memberships = std::move(memberships);
    memberships.clear();
    // Room for a batch like this one, reserved here rather than grown by doubling in the next
    // batch's add()s. Besides the copies, the doubling was where glibc did its deferred work:
    // it sorts the blocks freed after a drain (the caller's changes: thousands of summaries and
    // state values when events spread over thousands of pain points) into its bins only when a
    // later allocation misses its caches, and that allocation was add()'s. With this and the
    // exemplar strings in the pool, add() allocates from glibc only the membership's and the
    // returned id (small blocks served from glibc's caches), so that work is done by the next
    // drain's own allocations instead (measured: BM_AddEvent vs BM_AddEventWithFlush). Capped:
    // a caller that drains once after a whole replay would otherwise keep room for all of it.
    memberships.reserve(std::min<std::size_t>(out.memberships.size(), 1 << 16));
    out.summaries = std::move(pending_summaries);
    pending_summaries.clear();
    if (state == StateOutput::kInclude) {
      out.state = std::move(pending_writes);
      pending_writes.clear();
    }
    for (auto& [id, p] : products) flush(*p, out, state);
    ++generation;
    return out;
  }

  // ---------------------------------------------------------------- curation
  void load_curation(Product& p) {
    const auto rec = reader->get(curation_key(p.id));
    if (!rec) return;
    v1::AggCuration m;
    if (!m.ParseFromString(*rec)) return;
    for (const auto& l : m.label()) p.curation.labels[l.id()] = l.label();
    for (const auto& a : m.apart()) p.curation.apart.insert(Curation::pair_of(a.a(), a.b()));
    for (const auto& x : m.merge()) p.curation.merges.emplace_back(x.from(), x.into());
  }

  static void flush_curation(Product& p, Changes& out) {
    if (!p.curation.dirty) return;
    p.curation.dirty = false;
    v1::AggCuration m;
    for (const auto& [id, label] : p.curation.labels) {
      auto* l = m.add_label();
      l->set_id(id);
      l->set_label(label);
    }
    for (const auto& [a, b] : p.curation.apart) {
      auto* x = m.add_apart();
      x->set_a(a);
      x->set_b(b);
    }
    for (const auto& [from, into] : p.curation.merges) {
      auto* x = m.add_merge();
      x->set_from(from);
      x->set_into(into);
    }
    out.state.push_back(StateWrite{curation_key(p.id), m.SerializeAsString()});
  }

  // Linear in the product's clusters: curation runs at human pace, and an id index would cost
  // memory on the hot path for nothing.
  static Cluster* find_pain_point(Product& p, std::string_view id) {
    for (auto& c : p.clusters) {
      if (c != nullptr && c->promoted && c->id == id) return c.get();
    }
    return nullptr;
  }

  // Leaves the "grew since the last maintenance" mark as load() would derive it from
  // last_event_doc, so that a restart right after a curation continues exactly.
  static void settle_touched(Product& p, const Cluster& c) {
    const bool derived = c.last_event_doc > p.doc_count - p.since_maintenance;
    const bool marked = c.seq < p.flags.size() && (p.flags[c.seq] & Product::kTouched) != 0;
    if (derived && !marked) p.mark(c.seq, Product::kTouched);
    if (!derived && marked) {
      std::erase(p.touched_since_maintenance, c.seq);
      p.flags[c.seq] &= static_cast<std::uint8_t>(~Product::kTouched);
    }
  }

  static CurationOutcome failure(CurationOutcome::Code code, std::string message) {
    CurationOutcome out;
    out.code = code;
    out.message = std::move(message);
    return out;
  }

  static CurationOutcome not_found(std::string_view id) {
    return failure(CurationOutcome::Code::kNotFound, "no active pain point " + std::string(id));
  }

  static CurationOutcome success(std::string id) {
    CurationOutcome out;
    out.id = std::move(id);
    return out;
  }

  CurationOutcome curate_merge(std::string_view product_id, std::string_view from_id,
                               std::string_view into_id) {
    if (from_id == into_id) {
      return failure(CurationOutcome::Code::kConflict, "cannot merge a pain point into itself");
    }
    Product& p = product(std::string(product_id));
    Cluster* from = find_pain_point(p, from_id);
    if (from == nullptr) return not_found(from_id);
    Cluster* into = find_pain_point(p, into_id);
    if (into == nullptr) return not_found(into_id);
    p.curation.record_merge({std::string(from_id), std::string(into_id)});
    p.curation.dirty = true;
    merge(p, *into, *from);
    settle_touched(p, *into);
    return success(std::string(into_id));
  }

  static bool valid_label(std::string_view label) {
    if (label.size() > kMaxLabelBytes) return false;
    // UTF-8 well-formedness (the summary is protobuf: invalid UTF-8 would not serialize) and no
    // control characters (labels end up in dashboards and terminals).
    for (std::size_t i = 0; i < label.size();) {
      const auto b = static_cast<unsigned char>(label[i]);
      if (b < 0x20 || b == 0x7f) return false;
      std::size_t n = 0;
      std::uint32_t cp = 0;
      if (b < 0x80) {
        n = 1;
        cp = b;
      } else if ((b & 0xE0) == 0xC0) {
        n = 2;
        cp = b & 0x1Fu;
      } else if ((b & 0xF0) == 0xE0) {
        n = 3;
        cp = b & 0x0Fu;
      } else if ((b & 0xF8) == 0xF0) {
        n = 4;
        cp = b & 0x07u;
      } else {
        return false;
      }
      if (i + n > label.size()) return false;
      for (std::size_t k = 1; k < n; ++k) {
        const auto cb = static_cast<unsigned char>(label[i + k]);
        if ((cb & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cb & 0x3Fu);
      }
      static constexpr std::array<std::uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      if (cp >= 0x80 && cp < 0xA0) return false;  // C1 controls
      i += n;
    }
    return true;
  }

  CurationOutcome curate_rename(std::string_view product_id, std::string_view id,
                                std::string_view label) {
    if (!valid_label(label)) {
      return failure(CurationOutcome::Code::kInvalid,
                     "label must be at most " + std::to_string(kMaxLabelBytes) +
                         " bytes of UTF-8 without control characters");
    }
    Product& p = product(std::string(product_id));
    Cluster* c = find_pain_point(p, id);
    if (c == nullptr) return not_found(id);
    if (label.empty()) {
      p.curation.labels.erase(c->id);
    } else {
      p.curation.labels[c->id] = std::string(label);
    }
    p.curation.dirty = true;
    p.changed(c->seq);  // republish with the new label
    return success(c->id);
  }

  // Features of an event that the product already counted, under its current statistics and
  // without counting it again: what a split subtracts. Mirrors featurize()/featurize_dense()
  // read-only; IDF and the dense centring have moved on since the event was added, so this
  // approximates its original contribution (both are unit vectors, so the mass is right).
  void refeaturize(const Product& p, const std::string& text) {
    tokenizer.tokenize(text, tokens);
    buckets.clear();
    for (std::size_t i = 0; i < tokens.size(); ++i) buckets.push_back(bucket_of(tokens[i]));
    std::vector<std::uint32_t> sorted = buckets;
    std::sort(sorted.begin(), sorted.end());
    vec.clear();
    const double n = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      const Term* e = counted_term(p, sorted[i]);
      const double df = e != nullptr ? static_cast<double>(e->df) : 1.0;
      const double tf = 1.0 + std::log(static_cast<double>(j - i));
      const double idf = std::log((n + 1.0) / (df + 1.0)) + 1.0;
      vec.push_back(TermWeight{sorted[i], static_cast<float>(tf * std::max(idf, 0.01))});
      i = j;
    }
    const double norm = std::sqrt(norm2_of(vec));
    if (norm > 0) {
      for (auto& tw : vec) tw.w = static_cast<float>(tw.w / norm);
    }
    const std::uint32_t d = dims();
    dense.clear();
    if (d == 0) return;
    dense.assign(d, 0.0f);
    dense_acc.assign(d, 0.0);
    const double total = static_cast<double>(std::max<std::int64_t>(p.token_count, 1));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const float* v = cfg.word_vectors->find(tokens[i]);
      const Term* e = counted_term(p, buckets[i]);
      if (v == nullptr || e == nullptr) continue;
      const double weight = cfg.sif_a / (cfg.sif_a + static_cast<double>(e->df) / total);
      for (std::uint32_t k = 0; k < d; ++k) dense_acc[k] += weight * static_cast<double>(v[k]);
    }
    double unorm = 0;
    for (double x : dense_acc) unorm += x * x;
    unorm = std::sqrt(unorm);
    if (unorm == 0) return;
    double cnorm = 0;
    for (std::uint32_t k = 0; k < d; ++k) {
      dense_acc[k] = dense_acc[k] / unorm - p.dense_mean_sum[k] / n;
      cnorm += dense_acc[k] * dense_acc[k];
    }
    cnorm = std::sqrt(cnorm);
    if (cnorm == 0) return;
    for (std::uint32_t k = 0; k < d; ++k) dense[k] = static_cast<float>(dense_acc[k] / cnorm);
  }

  // Takes the current `vec`/`dense` (one event's features) out of `c`'s centroid and dense sum.
  void subtract_features(Cluster& c) {
    merged_scratch.clear();
    auto b = vec.begin();
    for (const auto& tw : c.centroid) {
      while (b != vec.end() && b->term < tw.term) ++b;
      float w = tw.w;
      if (b != vec.end() && b->term == tw.term) w -= b->w;
      // Float residue of a term only the removed event had is not evidence.
      if (w > 1e-4f) merged_scratch.push_back(TermWeight{tw.term, w});
    }
    c.centroid.assign(merged_scratch.begin(), merged_scratch.end());
    c.norm2 = norm2_of(c.centroid);
    if (!dense.empty() && c.dense.size() == dense.size()) {
      for (std::size_t k = 0; k < dense.size(); ++k) c.dense[k] -= dense[k];
      c.dense_norm = dense_norm_of(c.dense);
    }
  }

  CurationOutcome curate_split(std::string_view product_id, std::string_view id,
                               std::span<const v1::FeedbackEvent> events) {
    if (events.empty()) return failure(CurationOutcome::Code::kInvalid, "no events to split off");
    std::set<std::string_view> ids;
    for (const auto& e : events) {
      if (e.product_id() != product_id) {
        return failure(CurationOutcome::Code::kInvalid,
                       "event " + e.event_id() + " belongs to another product");
      }
      if (!ids.insert(e.event_id()).second) {
        return failure(CurationOutcome::Code::kInvalid, "event " + e.event_id() + " repeated");
      }
    }
    Product& p = product(std::string(product_id));
    Cluster* src = find_pain_point(p, id);
    if (src == nullptr) return not_found(id);
    if (static_cast<std::int64_t>(events.size()) >= src->count) {
      return failure(CurationOutcome::Code::kConflict,
                     "a split must leave events behind (rename the pain point instead)");
    }

    auto fresh = std::make_unique<Cluster>();
    fresh->seq = p.next_seq++;
    // Unique per product (seq is), a pure function of the history, and never the id of a
    // cluster opened by an event (those hash product + '\x1f' + event id).
    fresh->id = "pp-" + hex16(fnv1a64(p.id + "\x1esplit\x1e" + std::to_string(fresh->seq)));
    fresh->first_seen_us = micros_of(events.front().occurred_at());
    fresh->last_seen_us = fresh->first_seen_us;
    p.clusters.push_back(std::move(fresh));
    Cluster& out = *p.clusters.back();
    p.dirty_meta = true;

    const auto w = static_cast<std::int64_t>(src->daily.size());
    for (const auto& e : events) {
      refeaturize(p, e.text());
      subtract_features(*src);
      --src->count;
      const auto s = static_cast<std::size_t>(e.source());
      if (s < src->sources.size() && src->sources[s] > 0) --src->sources[s];
      const std::int64_t idx = w - 1 - (src->day_of_last - day_of(seconds_of(e.occurred_at())));
      if (idx >= 0 && idx < w && src->daily[static_cast<std::size_t>(idx)] > 0) {
        --src->daily[static_cast<std::size_t>(idx)];
      }
      absorb_event(p, out, e, 1.0);
      memberships.push_back(Membership{e.event_id(), p.id, out.id});
    }
    // A human decided this is a pain point, whatever its size.
    if (!out.promoted) {
      out.promoted = true;
      ++p.live_promoted;
    }
    std::erase_if(src->exemplars, [&](const Exemplar& x) { return ids.contains(x.event_id); });
    rescore_exemplars(*src);
    rescore_exemplars(out);
    reindex(p, *src);
    reindex(p, out);
    refresh_hot(p, *src);
    refresh_hot(p, out);
    p.changed(src->seq);
    settle_touched(p, out);
    p.curation.apart.insert(Curation::pair_of(src->id, out.id));
    p.curation.dirty = true;
    return success(out.id);
  }

  // ---------------------------------------------------------------- succession (replay)
  CurationOutcome succeed(std::string_view product_id, const StateReader* previous,
                          const Succession& s) {
    using Code = CurationOutcome::Code;
    std::map<std::string, const Succession::Rename*, std::less<>> by_from;
    for (const auto& r : s.renames) {
      if (r.from.empty() || r.to.empty()) return failure(Code::kInvalid, "empty id in a rename");
      if (!by_from.emplace(r.from, &r).second) {
        return failure(Code::kInvalid, "id renamed twice: " + r.from);
      }
    }
    Product& p = product(std::string(product_id));
    // Validate everything before changing anything.
    std::set<std::string, std::less<>> live;  // ids after the renames
    std::size_t found = 0;
    for (const auto& c : p.clusters) {
      if (c == nullptr) continue;
      const auto it = by_from.find(c->id);
      if (it != by_from.end()) ++found;
      const std::string& id = it != by_from.end() ? it->second->to : c->id;
      if (!live.insert(id).second) {
        return failure(Code::kConflict, "two live clusters would have the id " + id);
      }
    }
    if (found != by_from.size()) {
      for (const auto& [from, r] : by_from) {
        bool exists = false;
        for (const auto& c : p.clusters) exists = exists || (c != nullptr && c->id == from);
        if (!exists) return failure(Code::kNotFound, "no live cluster " + from);
      }
    }
    for (const auto& [from, into] : s.merged_into) {
      if (live.contains(from)) return failure(Code::kConflict, from + " is live, not merged");
      if (!live.contains(into)) return failure(Code::kNotFound, "no live cluster " + into);
    }
    for (const auto& id : s.retired) {
      if (live.contains(id)) return failure(Code::kConflict, id + " is live, not retired");
    }
    for (const auto& [a, b] : s.keep_apart) {
      if (!live.contains(a) || !live.contains(b)) {
        return failure(Code::kNotFound,
                       "keep apart: no live cluster " + (live.contains(a) ? b : a));
      }
    }

    std::unordered_map<std::string, std::string> renamed;  // from -> to
    for (auto& c : p.clusters) {
      if (c == nullptr) continue;
      const auto it = by_from.find(c->id);
      if (it == by_from.end()) continue;
      renamed.emplace(c->id, it->second->to);
      c->id = it->second->to;
      c->version = std::max(c->version, it->second->min_version);
      p.changed(c->seq);
    }
    auto follow = [&](const std::string& id) -> const std::string& {
      const auto it = renamed.find(id);
      return it == renamed.end() ? id : it->second;
    };
    for (auto& m : memberships) {
      if (m.product_id == p.id) m.pain_point_id = follow(m.pain_point_id);
    }
    // Merge records: a live or retired id has none; survivors follow their renames.
    std::set<std::string, std::less<>> forget(live.begin(), live.end());
    forget.insert(s.retired.begin(), s.retired.end());
    for (auto& [from, into] : merged) into = follow(into);
    std::erase_if(merged, [&](const auto& entry) { return forget.contains(entry.first); });
    std::vector<StateWrite> writes;
    for (auto& w : pending_writes) {
      v1::AggMerged rec;
      if (w.value && rec.ParseFromString(*w.value)) {
        if (forget.contains(rec.id())) continue;
        rec.set_merged_into(follow(rec.merged_into()));
        w.value = rec.SerializeAsString();
      }
      writes.push_back(std::move(w));
    }
    pending_writes = std::move(writes);
    // Final records of clusters merged away in this product: one whose id lives on is not final.
    std::erase_if(pending_summaries, [&](const v1::PainPointSummary& x) {
      return x.product_id() == p.id && live.contains(x.id());
    });
    for (auto& x : pending_summaries) {
      if (x.product_id() == p.id) x.set_merged_into(follow(x.merged_into()));
    }
    for (const auto& [from, to] : renamed) {
      pending_writes.push_back(StateWrite{merged_key(to), std::nullopt});
    }
    for (const auto& id : s.retired) {
      pending_writes.push_back(StateWrite{merged_key(id), std::nullopt});
    }
    for (const auto& [from, into] : s.merged_into) {
      merged[from] = into;
      v1::AggMerged rec;
      rec.set_id(from);
      rec.set_merged_into(into);
      pending_writes.push_back(StateWrite{merged_key(from), rec.SerializeAsString()});
    }

    // Curated facts follow the renames.
    Curation& cur = p.curation;
    if (!renamed.empty()) {
      std::map<std::string, std::string, std::less<>> labels;
      for (auto& [id, label] : cur.labels) labels[follow(id)] = std::move(label);
      cur.labels = std::move(labels);
      std::set<std::pair<std::string, std::string>> apart;
      for (const auto& [a, b] : cur.apart) apart.insert(Curation::pair_of(follow(a), follow(b)));
      cur.apart = std::move(apart);
      for (auto& [from, into] : cur.merges) {
        from = follow(from);
        into = follow(into);
      }
      cur.dirty = true;
    }
    for (const auto& [a, b] : s.keep_apart) {
      cur.dirty = cur.apart.insert(Curation::pair_of(a, b)).second || cur.dirty;
    }
    for (const auto& merge : s.human_merges) cur.dirty = cur.record_merge(merge) || cur.dirty;

    // Sequence numbers continue after the previous state's (split ids derive from them).
    if (previous != nullptr) {
      if (const auto meta = previous->get(meta_key(p.id))) {
        v1::AggProductState m;
        if (m.ParseFromString(*meta) && m.next_seq() > p.next_seq) {
          p.next_seq = m.next_seq();
          p.clusters.resize(p.next_seq);
          p.dirty_meta = true;
        }
      }
    }
    return success(std::string(product_id));
  }
};

std::string product_state_prefix(std::string_view product_id) { return product_prefix(product_id); }

CurationRecord read_curation(const StateReader& state, std::string_view product_id) {
  CurationRecord out;
  const auto rec = state.get(curation_key(product_id));
  v1::AggCuration m;
  if (!rec || !m.ParseFromString(*rec)) return out;
  for (const auto& l : m.label()) out.labels.emplace_back(l.id(), l.label());
  for (const auto& a : m.apart()) out.apart.emplace_back(a.a(), a.b());
  for (const auto& x : m.merge()) out.merges.emplace_back(x.from(), x.into());
  return out;
}

Aggregator::Aggregator(ClusterConfig config, const StateReader* state)
    : impl_(std::make_unique<Impl>(config, state)) {}

Aggregator::~Aggregator() = default;

std::string Aggregator::add(const v1::FeedbackEvent& event) { return impl_->add(event); }

Changes Aggregator::take_changes(StateOutput state) { return impl_->take_changes(state); }

CurationOutcome Aggregator::merge(std::string_view product_id, std::string_view from,
                                  std::string_view into) {
  return impl_->curate_merge(product_id, from, into);
}

CurationOutcome Aggregator::rename(std::string_view product_id, std::string_view id,
                                   std::string_view label) {
  return impl_->curate_rename(product_id, id, label);
}

CurationOutcome Aggregator::split(std::string_view product_id, std::string_view id,
                                  std::span<const v1::FeedbackEvent> events) {
  return impl_->curate_split(product_id, id, events);
}

CurationOutcome Aggregator::succeed(std::string_view product_id, const StateReader* previous,
                                    const Succession& succession) {
  return impl_->succeed(product_id, previous, succession);
}

std::string Aggregator::resolve(std::string_view id) const {
  std::string cur(id);
  for (int hops = 0; hops < 1000; ++hops) {
    const auto it = impl_->merged.find(cur);
    if (it != impl_->merged.end()) {
      cur = it->second;
      continue;
    }
    if (impl_->reader == nullptr) break;
    const auto rec = impl_->reader->get(merged_key(cur));
    if (!rec) break;
    v1::AggMerged m;
    if (!m.ParseFromString(*rec) || m.merged_into().empty()) break;
    cur = m.merged_into();
  }
  return cur;
}

void Aggregator::evict_idle() {
  // Products unused during the last evict_idle interval go; their state is in the store. A
  // product whose state was not written out yet stays: reloading it would lose those changes.
  for (auto it = impl_->products.begin(); it != impl_->products.end();) {
    if (it->second->last_used_generation + 1 < impl_->generation &&
        !it->second->has_unsaved_state()) {
      it = impl_->products.erase(it);
    } else {
      ++it;
    }
  }
  if (impl_->pending_writes.empty()) impl_->merged.clear();
}

namespace {
template <typename String>
std::size_t string_heap(const String& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}
}  // namespace

Aggregator::MemoryStats Aggregator::memory_stats() const {
  MemoryStats m;
  for (const auto& [id, p] : impl_->products) {
    ++m.products;
    m.bytes += sizeof(Product) + p->terms.capacity_bytes() +
               p->words.capacity() * sizeof(std::string) +
               p->lists.capacity() * sizeof(PostingList) + p->clusters.capacity() * sizeof(void*) +
               p->flags.capacity() + p->candidates.capacity() * 4 +
               p->dense_mean_sum.capacity() * 8 + p->hints.capacity() * sizeof(Product::Hint);
    for (const auto& w : p->words) m.bytes += string_heap(w);
    for (const auto& l : p->lists) {
      m.bytes += l.all.capacity_bytes() + l.head.capacity() * sizeof(Posting);
    }
    for (const auto& [page, list] : p->page_buckets) m.bytes += 32 + list.capacity() * 4;
    for (const auto& c : p->clusters) {
      if (c == nullptr) continue;
      ++m.clusters;
      m.bytes += sizeof(Cluster) + string_heap(c->id) + c->centroid.capacity() * 8 +
                 c->dense.capacity() * 4 + c->indexed.capacity() * 8 +
                 c->accounts.capacity() * sizeof(Account) + c->daily.capacity() * 8 +
                 c->exemplars.capacity() * sizeof(Exemplar);
      for (const auto& x : c->exemplars) {
        m.bytes += string_heap(x.event_id) + string_heap(x.text) + x.terms.capacity() * 8;
      }
    }
  }
  return m;
}

std::size_t Aggregator::active_pain_points() const {
  std::size_t n = 0;
  for (const auto& [id, p] : impl_->products) n += p->live_promoted;
  return n;
}

}  // namespace painpoint::aggregator

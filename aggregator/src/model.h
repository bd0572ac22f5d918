// The clustering state's types: a cluster's hot record and full record, a product's term table
// entry, its curation and the product itself (aggregator/README.md says what each holds).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "flat_map.h"
#include "page_pool.h"
#include "phrase_label.h"
#include "posting_list.h"
#include "term_vector.h"

namespace painpoint::aggregator {

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
  // The text as the labeler reads it (PhraseLabeler::analyze), kept so that a pain point's label
  // does not split and tokenize the same texts again in every batch. Derived from `text` alone
  // and not persisted: valid once `analysed` is set, reset whenever the text changes.
  bool analysed = false;
  PoolVector<PhraseWord> label_words;
  PoolVector<std::uint32_t> label_terms;
};

struct Account {
  std::uint64_t hash;
  std::int64_t arr;
};

// One member of a cluster's sample (semantic mode): what moving the event to another cluster at
// maintenance needs, its vector in the stored form (pack_embedding), so that a restarted or
// rebuilt aggregator moves it exactly as the running one did.
struct Member {
  std::uint64_t hash = 0;  // fnv1a64 of the event id: the sample keeps the smallest
  PoolString event_id;
  PoolString text;
  std::int32_t source = 0;
  std::int64_t occurred_us = 0;
  PoolString vector;
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
  // Semantic mode: the members with the smallest event-id hashes (at most sample_members),
  // sorted by (hash, event id), persisted under a key of their own when they change.
  PoolVector<Member> sample;
  bool sample_dirty = false;
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
  [[nodiscard]] bool merged_into_by_human(const std::string& id) const {
    return std::any_of(merges.begin(), merges.end(), [&](const auto& m) { return m.second == id; });
  }
  // Maintenance may split `id` in two: a human neither named it nor merged another into it (a
  // human decided what it holds).
  [[nodiscard]] bool auto_split_allowed(const std::string& id) const {
    return !renamed(id) && !merged_into_by_human(id);
  }
  // Whether a human split `id` off another pain point or another off it (the pair is kept apart).
  [[nodiscard]] bool split_by_human(const std::string& id) const {
    return std::any_of(apart.begin(), apart.end(),
                       [&](const auto& pair) { return pair.first == id || pair.second == id; });
  }
  // Which of two pain points an automatic merge keeps: the human-named one, else one a human
  // merged into or split (people refer to those by their ids), else the older. Higher wins.
  [[nodiscard]] int survival_rank(const std::string& id) const {
    if (renamed(id)) return 2;
    return merged_into_by_human(id) || split_by_human(id) ? 1 : 0;
  }
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
  std::uint32_t move_cursor = 0;  // the seq the next move step starts at (move_budget)
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

// The term's statistics if the product counted it (seen in an event or loaded), else null.
inline const Term* counted_term(const Product& p, std::uint32_t term) {
  const Term* t = p.terms.find(term);
  return t != nullptr && t->counted ? t : nullptr;
}

// The first surface form of a counted term, empty when none was recorded.
inline std::string_view word_of(const Product& p, const Term& t) {
  return t.word == Term::kNone ? std::string_view{} : std::string_view{p.words[t.word]};
}

// Mean cosine between two distinct members of `c` (its dense vectors are unit length and
// `dense` is their sum).
inline double dense_cohesion(const Cluster& c) {
  return mean_pairwise_cosine(c.dense_norm * c.dense_norm, static_cast<double>(c.count));
}

// Mean cosine between a member of `a` and a member of `b`.
inline double dense_cross(const Cluster& a, const Cluster& b) {
  return dot_lanes(a.dense.data(), b.dense.data(), a.dense.size()) /
         (static_cast<double>(a.count) * static_cast<double>(b.count));
}

}  // namespace painpoint::aggregator

// The hot path: add() and what it calls per event (retrieval, the hot records' bounds, the
// inverted index and the cluster updates), in one translation unit so that they inline as one.
#include <algorithm>
#include <bit>
#include <cmath>
#include <span>
#include <utility>

#include "aggregator_impl.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"
#include "painpoint/base/utf8.h"
#include "prefetch.h"
#include "state_keys.h"

namespace painpoint::aggregator {
namespace {

constexpr std::size_t kExemplarTerms = 16;
constexpr std::size_t kMaxExemplarText = 400;

// Every cache line that [data, data + bytes) touches (from the line `data` starts in: an
// unaligned range of n * 64 bytes spans n + 1 lines).
void prefetch_bytes(const void* data, std::size_t bytes) {
  const auto first = reinterpret_cast<std::uintptr_t>(data) & ~std::uintptr_t{63};
  const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
  for (auto line = first; line < end; line += 64) {
    prefetch_line(reinterpret_cast<const void*>(line));
  }
}

// A non-negative bound rounded up past float rounding.
float round_up(double x) { return static_cast<float>(x * (1.0 + 1e-5) + 1e-7); }

// Rounding slack of the bounds: they must never fall below the exact score they bound.
constexpr double kBoundSlack = 1e-6;

// Upper bound of  v . centroid / |centroid|  from the hot record: exact products for the hot
// terms, for the others the smaller of Cauchy-Schwarz and (sum of v's weights) x (largest
// weight). Dividing by |v| is the caller's part.
double sparse_bound(const Hot& h, std::span<const TermWeight> v) {
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

// The postings retrieval reads for `term` (its list's head), empty when none.
std::span<const Posting> head_of(const Product& p, std::uint32_t term) {
  const Term* t = p.terms.find(term);
  if (t == nullptr || t->list == Term::kNone) return {};
  if (t->inline_n != Term::kLongList) return {t->head.data(), t->inline_n};
  return p.lists[t->list].head;
}

// Keeps the copy of a short list's head in the term's slot equal to the list's head.
void sync_inline(Term& t, const PostingList& list) {
  if (list.head.size() > Term::kInline) {
    t.inline_n = Term::kLongList;
    return;
  }
  std::copy(list.head.begin(), list.head.end(), t.head.begin());
  t.inline_n = static_cast<std::uint8_t>(list.head.size());
}

bool reindex_due(std::int64_t count) {
  return count <= 4 || (count & (count - 1)) == 0 || count % 16 == 0;
}

std::size_t worst_exemplar(const Cluster& c) {
  std::size_t worst = 0;
  for (std::size_t i = 0; i < c.exemplars.size(); ++i) {
    if (c.exemplars[i].score < c.exemplars[worst].score) worst = i;
  }
  return worst;
}

}  // namespace

Aggregator::Aggregator(ClusterConfig config, const StateReader* state)
    : impl_(std::make_unique<Impl>(config, state)) {}

Aggregator::~Aggregator() = default;

std::string Aggregator::add(const v1::FeedbackEvent& event, std::span<const float> embedding,
                            const AnalyzedText* analysis) {
  impl_->event_analysis = analysis;
  std::string id = impl_->add_event(event, embedding);
  impl_->event_analysis = nullptr;  // taken by featurize() already, unless add_event() threw
  return id;
}

Product& Aggregator::Impl::product(const std::string& id) {
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

std::string Aggregator::Impl::add_event(const v1::FeedbackEvent& e,
                                        std::span<const float> embedding) {
  if (!semantic()) return add(e);
  event_embedding = embedding;
  std::string id = add_semantic(e);
  event_embedding = {};
  return id;
}

std::string Aggregator::Impl::add(const v1::FeedbackEvent& e) {
  Product& p = product(e.product_id());
  p.latest = std::max(p.latest, base::seconds_of(e.occurred_at()));
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
  return place_event(p, e, best_score >= cfg.join_threshold ? best : nullptr, best_sim);
}

// Adds `e` to `best`, or to a new candidate when `best` is null, and does what every added event
// shares: its membership, and maintenance when it is due.
std::string Aggregator::Impl::place_event(Product& p, const v1::FeedbackEvent& e, Cluster* best,
                                          double score) {
  if (best == nullptr) {
    best = &open_cluster(p, e);
    score = 1.0;
  }
  absorb_event(p, *best, e, score);
  offer_member(*best, e);
  memberships.push_back(Membership{e.event_id(), p.id, best->id});
  std::string id = best->id;
  if (++p.since_maintenance >= cfg.maintenance_interval) maintain(p);
  return id;
}

// Semantic mode: the event joins the cluster whose members it resembles most on average, in
// units of the product's background similarity (semantic.cc, aggregator/README.md).
std::string Aggregator::Impl::add_semantic(const v1::FeedbackEvent& e) {
  Product& p = product(e.product_id());
  p.latest = std::max(p.latest, base::seconds_of(e.occurred_at()));
  featurize(p, e.text());
  const double b = background_similarity(p);
  const double threshold = semantic_bar(b, cfg.semantic_join);
  const double prior = cfg.semantic_prior;
  Cluster* best = nullptr;
  double best_score = -std::numeric_limits<double>::infinity();
  if (!dense.empty()) {
    // Every live cluster is scored: the dot products cost far less than encoding the event.
    for (const auto& slot : p.clusters) {
      const Cluster* c = slot.get();
      if (c == nullptr || c->count == 0 || c->dense.size() != dense.size()) continue;
      const double members = static_cast<double>(c->count);
      // (sum of cosines to the members + prior * b) / (members + prior)
      const double score =
          (dot_lanes(dense.data(), c->dense.data(), dense.size()) + prior * b) /
          (members + prior);
      if (score > best_score) {
        best_score = score;
        best = slot.get();
      }
    }
  }
  return place_event(p, e, best_score >= threshold ? best : nullptr, best_score);
}

// ---------------------------------------------------------------- retrieval
// Blended similarity of an event to cluster `c`, or nullopt as soon as an upper bound shows
// it cannot exceed `floor` (skips the dense dot product for hopeless candidates; the result
// is the same as computing everything).
inline std::optional<double> Aggregator::Impl::similarity_to(const Cluster& c,
                                                             std::span<const TermWeight> v,
                                                             std::span<const float> dv,
                                                             double floor) const {
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

// Approximate scores from the inverted index; leaves candidate seqs in `touched`.
void Aggregator::Impl::retrieve(Product& p, std::span<const TermWeight> query,
                                std::uint32_t exclude) {
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
inline void Aggregator::Impl::prefetch_hot(const Product& p) const {
  for (std::uint32_t seq : touched) {
    if (seq < p.hot.size()) prefetch_bytes(&p.hot[seq], sizeof(Hot));
  }
}

// A candidate about to be scored exactly (the cluster records are scattered over the heap:
// with thousands of pain points each is a cache miss): its record, centroid and dense sum,
// requested together through the per-seq hints instead of one pointer after another.
inline void Aggregator::Impl::prefetch_cluster(const Product& p, std::uint32_t seq) const {
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

// ---------------------------------------------------------------- hot records and bounds
inline Hot& Aggregator::Impl::hot_of(Product& p, std::uint32_t seq) {
  if (p.hot.size() <= seq) p.hot.resize(static_cast<std::size_t>(seq) + 1);
  return p.hot[seq];
}

// Chooses the hot terms anew (the heaviest of the centroid) and rebuilds the record.
void Aggregator::Impl::refresh_hot(Product& p, const Cluster& c) {
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
inline void Aggregator::Impl::update_hot(Product& p, const Cluster& c,
                                         std::span<const TermWeight> v) {
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

inline void Aggregator::Impl::finish_hot(Hot& h, const Cluster& c) const {
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
    cohesion = cfg.cohesion_exponent == 0.5 ? std::sqrt(coh) : std::pow(coh, cfg.cohesion_exponent);
  }
  h.cohesion = round_up(cohesion);
  h.bonus =
      round_up(std::max(0.0, cfg.size_bonus * std::log(static_cast<double>(std::clamp<std::int64_t>(
                                                  c.count, 1, cfg.size_bonus_cap)))));
}

// An upper bound of  similarity + size bonus  of the current event (vec, dense) to the
// cluster at `seq`, from its hot record alone (sparse_bound; the dense cosine counts as 1).
inline double Aggregator::Impl::upper_bound(const Product& p, std::uint32_t seq) const {
  const Hot& h = p.hot[seq];
  double s = sparse_bound(h, vec) + kBoundSlack;
  if (!dense.empty()) s = cfg.sparse_weight * s + (1.0 - cfg.sparse_weight);
  return s * static_cast<double>(h.cohesion) + static_cast<double>(h.bonus) + kBoundSlack;
}

// An upper bound of cluster_similarity(c, cluster at `seq`) from the other's hot record
// (maintenance's near-duplicate check; the dense cosine counts as 1).
double Aggregator::Impl::merge_bound(const Product& p, const Cluster& c, std::uint32_t seq) const {
  const Hot& h = p.hot[seq];
  if (c.norm2 <= 0) return (dims() > 0 ? 1.0 - cfg.sparse_weight : 0.0) + kBoundSlack;
  const double s = sparse_bound(h, c.centroid) / std::sqrt(c.norm2) + kBoundSlack;
  // Blended or not (that depends on both dense sums), neither exceeds the larger of the two.
  return dims() > 0 ? std::max(s, cfg.sparse_weight * s + (1.0 - cfg.sparse_weight)) : s;
}

// ---------------------------------------------------------------- index
void Aggregator::Impl::unindex(Product& p, Cluster& c) {
  for (const auto& tw : c.indexed) {
    Term* t = p.terms.find(tw.term);
    if (t == nullptr || t->list == Term::kNone) continue;
    PostingList& list = p.lists[t->list];
    list.erase(Posting{tw.w, c.seq}, cfg.posting_scan);
    sync_inline(*t, list);
  }
  c.indexed.clear();
}

void Aggregator::Impl::insert_postings(Product& p, const Cluster& c) {
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

void Aggregator::Impl::reindex(Product& p, Cluster& c) {
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

// ---------------------------------------------------------------- cluster updates
void Aggregator::Impl::add_to_centroid(Cluster& c, std::span<const TermWeight> v) {
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
inline bool Aggregator::Impl::add_in_place(Cluster& c, std::span<const TermWeight> v) {
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

void Aggregator::Impl::add_dense(Cluster& c, std::span<const float> dv) {
  if (dv.empty()) return;
  if (c.dense.empty()) c.dense.assign(dv.size(), 0.0f);
  for (std::size_t k = 0; k < dv.size(); ++k) c.dense[k] += dv[k];
  c.dense_norm = dense_norm_of(c.dense);
}

void Aggregator::Impl::add_day(Cluster& c, std::int64_t day, std::int64_t n) {
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

void Aggregator::Impl::add_account(Cluster& c, std::uint64_t hash, std::int64_t arr) {
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

inline void Aggregator::Impl::offer_exemplar(Cluster& c, const v1::FeedbackEvent& e, double score) {
  const std::size_t cap = cfg.exemplars + 2;
  // Fills the slot in place: a replaced exemplar's buffers are reused (young pain points
  // replace exemplars on most events, and allocations there were a large part of an event's
  // cost).
  auto fill = [&](Exemplar& x) {
    x.event_id.assign(e.event_id().data(), e.event_id().size());
    x.text.assign(e.text().data(), base::utf8_prefix_length(e.text(), kMaxExemplarText));
    x.analysed = false;
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

void Aggregator::Impl::rescore_exemplars(Cluster& c) {
  c.cold_dirty = true;
  c.exemplar_floor_valid = false;
  const double norm = std::sqrt(c.norm2);
  for (auto& x : c.exemplars) {
    x.score = norm > 0 ? static_cast<float>(sparse_dot(x.terms, c.centroid) / norm) : 0.0f;
  }
}

inline Cluster& Aggregator::Impl::open_cluster(Product& p, const v1::FeedbackEvent& e) {
  auto c = std::make_unique<Cluster>();
  c->seq = p.next_seq++;
  c->id = "pp-" + base::hex_u64(fnv1a64(p.id + '\x1f' + e.event_id()));
  c->first_seen_us = base::micros_of(e.occurred_at());
  c->last_seen_us = c->first_seen_us;
  p.candidates.push_back(c->seq);
  p.clusters.push_back(std::move(c));
  return *p.clusters.back();
}

void Aggregator::Impl::absorb_event(Product& p, Cluster& c, const v1::FeedbackEvent& e,
                                    double score) {
  add_to_centroid(c, vec);
  add_dense(c, dense);
  ++c.count;
  c.last_event_doc = p.doc_count;
  const std::int64_t t_us = base::micros_of(e.occurred_at());
  const std::int64_t t = base::seconds_floor(t_us);
  c.first_seen_us = std::min(c.first_seen_us, t_us);
  c.last_seen_us = std::max(c.last_seen_us, t_us);
  add_day(c, base::day_of(t), 1);
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

}  // namespace painpoint::aggregator

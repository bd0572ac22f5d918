// Maintenance: near-duplicate pain points merge (the younger into the older), in semantic mode
// sampled members move to their nearest pain point (moves.cc), and candidates that never
// gathered support expire (aggregator/README.md, "Maintenance").
#include <algorithm>
#include <cmath>
#include <utility>

#include "aggregator_impl.h"
#include "painpoint/v1/aggregator_state.pb.h"
#include "state_keys.h"

namespace painpoint::aggregator {

// Runs every maintenance_interval events of a product (counted in events, not batches, so
// that the result does not depend on how the caller batches).
void Aggregator::Impl::maintain(Product& p) {
  p.since_maintenance = 0;
  p.dirty_meta = true;
  merge_near_duplicates(p);
  move_members(p);
  retire_expired_candidates(p);
}

// Each pain point that grew since the last run looks for near-duplicates among the clusters
// sharing its heaviest terms; the younger one goes into the older one.
inline void Aggregator::Impl::merge_near_duplicates(Product& p) {
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
    Cluster* target = semantic() ? semantic_merge_target(p, *c) : sparse_merge_target(p, *c);
    if (target == nullptr) {
      // A pain point that merges with nothing may instead be two (semantic mode only).
      split_broad(p, *c);
      continue;
    }
    Cluster* older = target->seq < c->seq ? target : c;
    Cluster* younger = target->seq < c->seq ? c : target;
    // A curated pain point survives (keeps its id and label) even when it is the younger.
    if (p.curation.survival_rank(younger->id) > p.curation.survival_rank(older->id)) {
      std::swap(older, younger);
    }
    merge(p, *older, *younger);
  }
}

// The near-duplicate of `c` among the clusters sharing its heaviest terms, if any.
Cluster* Aggregator::Impl::sparse_merge_target(Product& p, const Cluster& c) {
  const std::uint32_t seq = c.seq;
  retrieve(p, c.centroid, seq);
  Cluster* target = nullptr;
  double best = cfg.merge_threshold;
  for (std::uint32_t other : touched) {
    // Most candidates only share common terms: ruled out from their hot records, without
    // touching their (cold) clusters.
    if (other >= p.hot.size() || p.hot[other].live == 0 || p.hot[other].promoted == 0) continue;
    if (merge_bound(p, c, other) < best) continue;
    Cluster* o = p.clusters[other].get();
    if (o == nullptr || !o->promoted) continue;
    if (!p.curation.auto_merge_allowed(c.id, o->id)) continue;
    const double s = cluster_similarity(c, *o);
    if (s >= best && !dense_apart(c, *o)) {
      best = s;
      target = o;
    }
  }
  return target;
}

// Static mode: whether the members of `a` and `b` resemble each other (dense part) much less
// than the looser of the two resembles itself, so that a merge would mix two groups.
bool Aggregator::Impl::dense_apart(const Cluster& a, const Cluster& b) const {
  if (cfg.static_merge_ratio <= 0 || a.count < 2 || b.count < 2) return false;
  if (a.dense.empty() || a.dense.size() != b.dense.size()) return false;
  const double within = std::min(dense_cohesion(a), dense_cohesion(b));
  return dense_cross(a, b) < cfg.static_merge_ratio * within;
}

// Retires candidates that never gathered support (only candidates are visited: touching every
// pain point here would cost a cache miss each).
inline void Aggregator::Impl::retire_expired_candidates(Product& p) {
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

inline double Aggregator::Impl::cluster_similarity(const Cluster& a, const Cluster& b) const {
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

void Aggregator::Impl::merge(Product& p, Cluster& into, Cluster& from) {
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
  for (auto& m : from.sample) insert_member(into, std::move(m));
  reindex(p, into);
  refresh_hot(p, into);
  p.changed(into.seq);
  p.mark(into.seq, Product::kTouched);

  merged[from.id] = into.id;
  v1::AggMerged rec;
  rec.set_id(from.id);
  rec.set_merged_into(into.id);
  pending_writes.push_back(StateWrite{merged_key(from.id), rec.SerializeAsString(), p.id});
  --p.live_promoted;
  p.changed(from.seq);
  p.curation.on_merge(from.id, into.id);
  p.hot[from.seq].live = 0;
  p.clusters[from.seq].reset();
}

}  // namespace painpoint::aggregator

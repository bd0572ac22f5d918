// Semantic mode: each cluster's member sample, and the moves of its members at maintenance.
// Every sampled member goes to the cluster whose vector sum it is nearest to by cosine, one
// k-means step seeded by the online clusters (aggregator/README.md, "Late moves").
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator_impl.h"
#include "painpoint/aggregator/encoder.h"
#include "painpoint/base/time.h"
#include "term_vector.h"

namespace painpoint::aggregator {
namespace {

// The sample's order: by hash, then by event id (two ids with one hash stay distinct).
bool member_before(std::uint64_t hash, std::string_view id, const Member& m) {
  return hash != m.hash ? hash < m.hash : id < std::string_view(m.event_id);
}

// The targets of one step: the live pain points with a vector sum, as unit vectors, fixed for
// the whole step (a k-means step assigns every member against the same centroids).
struct Targets {
  std::vector<std::uint32_t> seq;
  std::vector<float> unit;  // seq.size() rows of dims floats
  std::vector<double> norm;   // |S| of each
  std::vector<double> count;  // members of each
  std::unordered_map<std::string_view, std::size_t> by_id;
};

Targets targets_of(const Product& p, std::uint32_t d) {
  Targets t;
  for (const auto& slot : p.clusters) {
    const Cluster* c = slot.get();
    if (c == nullptr || !c->promoted || c->count <= 0 || c->dense.size() != d ||
        c->dense_norm <= 0) {
      continue;
    }
    t.by_id.emplace(c->id, t.seq.size());
    t.seq.push_back(c->seq);
    t.norm.push_back(c->dense_norm);
    t.count.push_back(static_cast<double>(c->count));
    for (float x : c->dense) t.unit.push_back(static_cast<float>(x / c->dense_norm));
  }
  return t;
}

// Per target: whether curation keeps it apart from `c` (a split pair stays split).
std::vector<std::uint8_t> barred_for(const Product& p, const Cluster& c, const Targets& t) {
  std::vector<std::uint8_t> barred(t.seq.size(), 0);
  for (const auto& [a, b] : p.curation.apart) {
    if (a != c.id && b != c.id) continue;
    const auto it = t.by_id.find(a == c.id ? b : a);
    if (it != t.by_id.end()) barred[it->second] = 1;
  }
  return barred;
}

}  // namespace

// Keeps the event in `c`'s sample when its id hash is among the sample_members smallest: the
// sample does not depend on how the caller batched the events. The vector is kept as stored.
void Aggregator::Impl::offer_member(Cluster& c, const v1::FeedbackEvent& e) {
  if (!semantic() || cfg.sample_members == 0 || dense.empty() || dense.size() != dims()) return;
  const std::uint64_t hash = fnv1a64(e.event_id());
  const bool full = c.sample.size() >= cfg.sample_members;
  if (full && !member_before(hash, e.event_id(), c.sample.back())) return;
  Member m;
  m.hash = hash;
  m.event_id.assign(e.event_id().data(), e.event_id().size());
  m.text.assign(e.text().data(), e.text().size());
  m.source = static_cast<std::int32_t>(e.source());
  m.occurred_us = base::micros_of(e.occurred_at());
  const std::string packed = pack_embedding(dense);
  m.vector.assign(packed.data(), packed.size());
  insert_member(c, std::move(m));
}

void Aggregator::Impl::insert_member(Cluster& c, Member m) const {
  const auto it = std::lower_bound(c.sample.begin(), c.sample.end(), m,
                                   [](const Member& a, const Member& b) {
                                     return member_before(a.hash, a.event_id, b);
                                   });
  if (it != c.sample.end() && it->hash == m.hash && it->event_id == m.event_id) return;
  c.sample.insert(it, std::move(m));
  if (c.sample.size() > cfg.sample_members) c.sample.pop_back();
  c.sample_dirty = true;
}

// Plans every move against the clusters as they are, then applies them. A member stays where
// it is unless a pain point is strictly nearer than the rest of its own cluster; it never goes
// to a pain point curation keeps apart from its own, and a human-named pain point is never
// emptied by moves.
void Aggregator::Impl::move_members(Product& p) {
  if (!semantic() || cfg.sample_members == 0) return;
  const std::uint32_t d = dims();
  const Targets t = targets_of(p, d);
  if (t.seq.empty()) return;
  // A member goes only where it could have joined as a new event (the join rule of
  // add_semantic): a one-off remark stays on its own instead of diluting its nearest pain point.
  const double b = background_similarity(p);
  const double join = semantic_bar(b, cfg.semantic_join);
  const double prior = cfg.semantic_prior;
  std::vector<Move> moves;
  std::vector<float> v(d);
  // Whole clusters from the cursor on, until move_budget members were weighed (0: no bound).
  const std::size_t n = p.clusters.size();
  const std::size_t start = p.move_cursor < n ? p.move_cursor : 0;
  const std::size_t budget = cfg.move_budget == 0 ? n * cfg.sample_members : cfg.move_budget;
  std::size_t weighed = 0;
  std::size_t visited = 0;
  for (; visited < n && weighed < budget; ++visited) {
    const Cluster* c = p.clusters[(start + visited) % n].get();
    if (c == nullptr || c->sample.empty() || c->dense.size() != d || c->dense_norm <= 0) continue;
    weighed += c->sample.size();
    const std::vector<std::uint8_t> barred = barred_for(p, *c, t);
    const std::size_t first = moves.size();
    for (std::size_t i = 0; i < c->sample.size(); ++i) {
      if (!unpack_embedding(c->sample[i].vector, v)) continue;
      // Its own cluster is judged without it (S - v): counting the member in its own sum keeps
      // every small cluster together however loose it is, a singleton above all.
      const double vs = dot_lanes(v.data(), c->dense.data(), d);
      const double vv = dot_lanes(v.data(), v.data(), d);
      const double rest = c->dense_norm * c->dense_norm - 2 * vs + vv;
      double best =
          rest > 1e-6 ? (vs - vv) / std::sqrt(rest) : -std::numeric_limits<double>::infinity();
      std::size_t to = t.seq.size();
      for (std::size_t j = 0; j < t.seq.size(); ++j) {
        if (t.seq[j] == c->seq || barred[j] != 0) continue;
        const double s = dot_lanes(v.data(), t.unit.data() + j * d, d);
        if (s > best) {
          best = s;
          to = j;
        }
      }
      if (to == t.seq.size()) continue;
      if ((best * t.norm[to] + prior * b) / (t.count[to] + prior) < join) continue;
      moves.push_back(Move{c->seq, static_cast<std::uint32_t>(i), t.seq[to]});
    }
    const auto leaving = static_cast<std::int64_t>(moves.size() - first);
    if (leaving >= c->count && c->promoted && p.curation.renamed(c->id)) moves.resize(first);
  }
  if (n > 0) p.move_cursor = static_cast<std::uint32_t>((start + visited) % n);
  apply_moves(p, moves);
}

void Aggregator::Impl::apply_moves(Product& p, std::span<const Move> moves) {
  if (moves.empty()) return;
  // The moving members leave their samples first: a cluster may lose members and receive others.
  std::vector<Member> moving(moves.size());
  for (std::size_t k = 0; k < moves.size();) {
    Cluster& src = *p.clusters[moves[k].from];
    std::vector<std::uint8_t> leaves(src.sample.size(), 0);
    std::size_t end = k;
    for (; end < moves.size() && moves[end].from == moves[k].from; ++end) {
      moving[end] = std::move(src.sample[moves[end].member]);
      leaves[moves[end].member] = 1;
    }
    std::size_t kept = 0;
    for (std::size_t i = 0; i < src.sample.size(); ++i) {
      if (leaves[i] != 0) continue;
      if (kept != i) src.sample[kept] = std::move(src.sample[i]);
      ++kept;
    }
    src.sample.erase(src.sample.begin() + static_cast<std::ptrdiff_t>(kept), src.sample.end());
    src.sample_dirty = true;
    k = end;
  }
  std::vector<std::string> ids(moves.size());
  std::vector<float> v(dims());
  for (std::size_t k = 0; k < moves.size(); ++k) {
    ids[k].assign(moving[k].event_id.data(), moving[k].event_id.size());
    move_one(p, *p.clusters[moves[k].from], *p.clusters[moves[k].to], std::move(moving[k]), v);
  }
  for (std::size_t k = 0; k < moves.size();) {
    std::size_t end = k;
    while (end < moves.size() && moves[end].from == moves[k].from) ++end;
    finish_source(p, *p.clusters[moves[k].from], moves.subspan(k, end - k),
                  std::span<const std::string>(ids).subspan(k, end - k));
    k = end;
  }
  std::vector<std::uint32_t> receivers;
  for (const auto& m : moves) receivers.push_back(m.to);
  std::sort(receivers.begin(), receivers.end());
  receivers.erase(std::unique(receivers.begin(), receivers.end()), receivers.end());
  for (std::uint32_t seq : receivers) {
    Cluster* c = p.clusters[seq].get();
    if (c == nullptr) continue;
    rescore_exemplars(*c);
    settle_touched(p, *c);
  }
}

// One member's evidence leaves `from` (as a human split takes it) and joins `to` as an event
// would; its pending membership, if any, names `to` instead.
void Aggregator::Impl::move_one(Product& p, Cluster& from, Cluster& to, Member m,
                                std::vector<float>& v) {
  if (!unpack_embedding(m.vector, v)) return;
  const std::string text(m.text.data(), m.text.size());
  event_embedding = v;
  refeaturize(p, text);
  event_embedding = {};
  subtract_features(from);
  remove_event_stats(from, m.source, base::seconds_floor(m.occurred_us));
  v1::FeedbackEvent e;
  e.set_event_id(m.event_id.data(), m.event_id.size());
  e.set_product_id(p.id);
  e.set_text(text);
  e.set_source(static_cast<v1::Source>(m.source));
  *e.mutable_occurred_at() = base::timestamp_of_micros(m.occurred_us);
  // Scored as add() scores a joining event: its mean cosine to the members.
  const double score = to.count > 0 ? dot_lanes(dense.data(), to.dense.data(), dense.size()) /
                                          static_cast<double>(to.count)
                                    : 1.0;
  absorb_event(p, to, e, score);
  record_move(p, e.event_id(), to.id);
  insert_member(to, std::move(m));
}

// After its members left: a candidate left empty retires; a pain point left empty goes, like a
// merge, into the pain point most of its members went to (ties: the older); any other source
// drops the moved exemplars and is republished.
void Aggregator::Impl::finish_source(Product& p, Cluster& c, std::span<const Move> moves,
                                     std::span<const std::string> moved_ids) {
  const std::set<std::string_view> ids(moved_ids.begin(), moved_ids.end());
  std::erase_if(c.exemplars, [&](const Exemplar& x) { return ids.contains(x.event_id); });
  if (c.count <= 0 && !c.promoted) {
    unindex(p, c);
    p.changed(c.seq);
    p.hot[c.seq].live = 0;
    p.clusters[c.seq].reset();
    return;
  }
  if (c.count <= 0) {
    std::map<std::uint32_t, std::size_t> votes;
    for (const auto& m : moves) ++votes[m.to];
    std::uint32_t into = votes.begin()->first;
    for (const auto& [seq, n] : votes) {
      if (n > votes[into]) into = seq;
    }
    merge(p, *p.clusters[into], c);
    return;
  }
  rescore_exemplars(c);
  reindex(p, c);
  refresh_hot(p, c);
  p.hint(c);
  p.changed(c.seq);
  settle_touched(p, c);
}

// The event's membership in this batch names `id`: rewritten in place when the event already
// has one pending (joined or moved since the last take_changes()), else added. One membership
// per event per batch keeps the store's per-pain-point index right and lets a replay read the
// final grouping from its memberships in event order.
void Aggregator::Impl::record_move(const Product& p, const std::string& event_id,
                                   const std::string& id) {
  for (; membership_indexed < memberships.size(); ++membership_indexed) {
    membership_at[fnv1a64(memberships[membership_indexed].event_id)] = membership_indexed;
  }
  const auto it = membership_at.find(fnv1a64(event_id));
  if (it != membership_at.end()) {
    Membership& m = memberships[it->second];
    if (m.event_id == event_id && m.product_id == p.id) {
      m.pain_point_id = id;
      return;
    }
  }
  memberships.push_back(Membership{event_id, p.id, id});
}

}  // namespace painpoint::aggregator

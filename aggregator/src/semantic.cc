// Semantic mode (ClusterConfig::encoder == kSemantic): events carry a sentence encoder's vector,
// and assignment and merges are decided on those vectors, in units of the product's own
// background similarity (aggregator/README.md, "Semantic mode"). The sparse features are still
// kept: keywords, labels and exemplars come from them.
#include <algorithm>
#include <cmath>
#include <limits>

#include "aggregator_impl.h"
#include "term_vector.h"

namespace painpoint::aggregator {
// The event's vector becomes `dense` as it is (unit length, not centred: the decisions below
// measure against the background instead). kCount: it joins the product's running sum.
template <bool kCount>
void Aggregator::Impl::semantic_dense(Product& p) {
  dense.clear();
  const std::uint32_t d = dims();
  if (event_embedding.size() != d) return;
  dense.assign(event_embedding.begin(), event_embedding.end());
  if constexpr (kCount) {
    for (std::uint32_t k = 0; k < d; ++k) p.dense_mean_sum[k] += static_cast<double>(dense[k]);
  }
}

template void Aggregator::Impl::semantic_dense<true>(Product& p);
template void Aggregator::Impl::semantic_dense<false>(Product& p);

// The product's background: the mean cosine between two of its events that are not in the same
// pain point (candidates included; an event in none counts as its own). With S the sum of the
// product's n unit vectors and S_c, n_c those of cluster c, that is
//   (|S|^2 - sum |S_c|^2 - u) / (n^2 - sum n_c^2 - u),  u = n - sum n_c (events in no cluster).
// Pairs within a pain point are left out because a product with a few large themes would
// otherwise count its own paraphrases as background. Until there are kMinCrossPairs such pairs it
// is the mean over all pairs, (|S|^2 - n) / (n (n - 1)). Zero until there are two events.
double Aggregator::Impl::background_similarity(const Product& p) const {
  constexpr double kMinCrossPairs = 2000;
  const auto n = static_cast<double>(p.doc_count);
  if (n < 2 || p.dense_mean_sum.empty()) return 0.0;
  double s2 = 0;
  for (double x : p.dense_mean_sum) s2 += x * x;
  double within = 0;     // sum |S_c|^2
  double clustered = 0;  // sum n_c
  double pairs = 0;      // sum n_c^2
  for (const auto& slot : p.clusters) {
    const Cluster* c = slot.get();
    if (c == nullptr || c->count == 0 || c->dense.size() != p.dense_mean_sum.size()) continue;
    const auto members = static_cast<double>(c->count);
    within += c->dense_norm * c->dense_norm;
    clustered += members;
    pairs += members * members;
  }
  const double alone = std::max(n - clustered, 0.0);
  const double cross_pairs = n * n - pairs - alone;
  if (cross_pairs >= kMinCrossPairs) {
    return std::clamp((s2 - within - alone) / cross_pairs, 0.0, 1.0);
  }
  return std::clamp(mean_pairwise_cosine(s2, n), 0.0, 1.0);
}

// Two groups repeat one phrasing when either's members' mean cosine to each other reaches
// b + semantic_repeat * (1 - b); such groups merge at semantic_join, others at semantic_merge.
double Aggregator::Impl::semantic_merge_bar(double b, double within_a, double within_b) const {
  const double repeat = cfg.semantic_repeat < 1.0 ? semantic_bar(b, cfg.semantic_repeat)
                                                  : std::numeric_limits<double>::infinity();
  const bool repeated = within_a >= repeat || within_b >= repeat;
  return semantic_bar(b, repeated ? cfg.semantic_join : cfg.semantic_merge);
}

// The pain point `c` should merge with: the one whose members it resembles most on average, if
// that mean cosine reaches the merge bar and curation allows the merge.
Cluster* Aggregator::Impl::semantic_merge_target(Product& p, const Cluster& c) {
  if (c.dense.empty() || c.count == 0) return nullptr;
  const double b = background_similarity(p);
  const double c_within = c.count >= 2 ? dense_cohesion(c) : -1.0;
  double best = -1.0;
  Cluster* target = nullptr;
  for (const auto& slot : p.clusters) {
    Cluster* o = slot.get();
    if (o == nullptr || o == &c || !o->promoted || o->count == 0) continue;
    if (o->dense.size() != c.dense.size()) continue;
    const double cross = dense_cross(c, *o);
    if (cross <= best) continue;
    const double o_within = o->count >= 2 ? dense_cohesion(*o) : -1.0;
    if (cross >= semantic_merge_bar(b, c_within, o_within) &&
        p.curation.auto_merge_allowed(c.id, o->id)) {
      best = cross;
      target = o;
    }
  }
  return target;
}

}  // namespace painpoint::aggregator

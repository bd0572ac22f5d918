// Semantic mode, when semantic_split > 0: a pain point whose sampled members form two groups that
// resemble each other much less than themselves splits; the larger group keeps the id
// (aggregator/README.md, "Automatic split").
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "aggregator_impl.h"
#include "painpoint/aggregator/encoder.h"
#include "term_vector.h"

namespace painpoint::aggregator {
namespace {

// Two groups of a sample: for each member, whether it is in group 1, and the groups' vector
// sums and sizes.
struct TwoGroups {
  std::vector<std::uint8_t> side;
  std::vector<double> sum[2];
  double n[2] = {0, 0};
};

// Index of the member least similar to `ref` (ties: the lower index).
std::size_t farthest_from(const std::vector<float>& vs, std::size_t m, std::size_t d,
                          const float* ref) {
  std::size_t far = 0;
  double low = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < m; ++i) {
    const double s = dot_lanes(vs.data() + i * d, ref, d);
    if (s < low) {
      low = s;
      far = i;
    }
  }
  return far;
}

// Spherical 2-means over the m unit vectors in `vs`, seeded by the member farthest from the
// centroid and the member farthest from that one: deterministic for a given sample.
TwoGroups two_means(const std::vector<float>& vs, std::size_t m, std::size_t d,
                    std::span<const float> centroid) {
  constexpr int kRounds = 10;
  TwoGroups g;
  g.side.assign(m, 0);
  std::vector<float> seed[2];
  const std::size_t a = farthest_from(vs, m, d, centroid.data());
  seed[1].assign(vs.begin() + static_cast<std::ptrdiff_t>(a * d),
                 vs.begin() + static_cast<std::ptrdiff_t>((a + 1) * d));
  const std::size_t b = farthest_from(vs, m, d, seed[1].data());
  seed[0].assign(vs.begin() + static_cast<std::ptrdiff_t>(b * d),
                 vs.begin() + static_cast<std::ptrdiff_t>((b + 1) * d));
  for (int round = 0; round < kRounds; ++round) {
    bool changed = round == 0;
    for (std::size_t i = 0; i < m; ++i) {
      const float* v = vs.data() + i * d;
      const auto s = static_cast<std::uint8_t>(dot_lanes(v, seed[1].data(), d) >
                                                dot_lanes(v, seed[0].data(), d));
      changed = changed || s != g.side[i];
      g.side[i] = s;
    }
    for (int k = 0; k < 2; ++k) {
      g.sum[k].assign(d, 0.0);
      g.n[k] = 0;
    }
    for (std::size_t i = 0; i < m; ++i) {
      const float* v = vs.data() + i * d;
      for (std::size_t j = 0; j < d; ++j) g.sum[g.side[i]][j] += static_cast<double>(v[j]);
      g.n[g.side[i]] += 1;
    }
    if (!changed || g.n[0] == 0 || g.n[1] == 0) break;
    for (int k = 0; k < 2; ++k) {
      for (std::size_t j = 0; j < d; ++j) seed[k][j] = static_cast<float>(g.sum[k][j] / g.n[k]);
    }
  }
  return g;
}

// Whether a phrasing repeated on one side of the cut and one repeated on the other would merge
// by the repeated-phrasing rule: a member's phrasing is the members at cosine >= `repeat` to it
// (itself included), counted when it holds `least` members whose mean cosine to each other
// reaches `repeat`; two phrasings merge when their mean cosine reaches `join`.
bool cuts_repeated_phrasings(const std::vector<float>& vs, std::size_t m, std::size_t d,
                             const TwoGroups& g, double repeat, double join, std::size_t least) {
  // Each pair's cosine once (dot_lanes is symmetric to the bit).
  std::vector<double> gram(m * m);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t k = i + 1; k < m; ++k) {
      gram[i * m + k] = gram[k * m + i] = dot_lanes(vs.data() + i * d, vs.data() + k * d, d);
    }
  }
  std::vector<double> sums[2];
  std::vector<double> sizes[2];
  std::vector<double> s(d);
  for (std::size_t i = 0; i < m; ++i) {
    std::fill(s.begin(), s.end(), 0.0);
    double n = 0;
    for (std::size_t k = 0; k < m; ++k) {
      const float* vk = vs.data() + k * d;
      if (k != i && gram[i * m + k] < repeat) continue;
      for (std::size_t j = 0; j < d; ++j) s[j] += static_cast<double>(vk[j]);
      n += 1;
    }
    if (n < static_cast<double>(least)) continue;
    double s2 = 0;
    for (std::size_t j = 0; j < d; ++j) s2 += s[j] * s[j];
    if (mean_pairwise_cosine(s2, n) < repeat) continue;
    sums[g.side[i]].insert(sums[g.side[i]].end(), s.begin(), s.end());
    sizes[g.side[i]].push_back(n);
  }
  for (std::size_t a = 0; a < sizes[0].size(); ++a) {
    for (std::size_t b = 0; b < sizes[1].size(); ++b) {
      double cross = 0;
      for (std::size_t j = 0; j < d; ++j) cross += sums[0][a * d + j] * sums[1][b * d + j];
      if (cross / (sizes[0][a] * sizes[1][b]) >= join) return true;
    }
  }
  return false;
}

}  // namespace

// Splits `c` when its sample falls into two groups, each of at least a tenth of the sample and
// min_support members, that resemble each other less than semantic_split times as much as the
// looser group resembles itself, both measured above the product's background b. Relative to
// the groups' own cohesion, so that a broad theme whose halves are both loose stays whole while
// two tight themes that happen to be near each other come apart. Only sampled members can move
// (their vectors are kept); a member outside the sample stays in `c`.
void Aggregator::Impl::split_broad(Product& p, Cluster& c) {
  if (!semantic() || cfg.semantic_split <= 0 || !c.promoted) return;
  if (!p.curation.auto_split_allowed(c.id)) return;
  const std::size_t m = c.sample.size();
  const std::size_t least = std::max<std::size_t>({cfg.min_support, m / 10, cfg.semantic_split_min});
  if (m < 2 * least || c.dense.size() != dims() || c.dense_norm <= 0) return;
  const std::size_t d = dims();
  std::vector<float> vs(m * d);
  std::vector<float> v(d);
  for (std::size_t i = 0; i < m; ++i) {
    if (!unpack_embedding(c.sample[i].vector, v)) return;
    std::copy(v.begin(), v.end(), vs.begin() + static_cast<std::ptrdiff_t>(i * d));
  }
  const TwoGroups g = two_means(vs, m, d, c.dense);
  if (g.n[0] < static_cast<double>(least) || g.n[1] < static_cast<double>(least)) return;
  const double b = background_similarity(p);
  // Mean cosines: between the groups, and within each.
  double cross = 0;
  for (std::size_t j = 0; j < d; ++j) cross += g.sum[0][j] * g.sum[1][j];
  cross /= g.n[0] * g.n[1];
  double within[2];
  for (int k = 0; k < 2; ++k) {
    double s2 = 0;
    for (std::size_t j = 0; j < d; ++j) s2 += g.sum[k][j] * g.sum[k][j];
    within[k] = mean_pairwise_cosine(s2, g.n[k]);
  }
  // Above the background, relative to the looser group; and never a split that the merge rule
  // would undo at the next maintenance.
  const double looser = std::min(within[0], within[1]) - b;
  if (looser <= 0 || cross - b >= cfg.semantic_split * looser) return;
  if (cross >= semantic_merge_bar(b, within[0], within[1])) return;
  if (cfg.semantic_repeat < 1.0 &&
      cuts_repeated_phrasings(vs, m, d, g, semantic_bar(b, cfg.semantic_repeat),
                              semantic_bar(b, cfg.semantic_join), least)) {
    return;
  }
  // The smaller group leaves (ties: group 1, the one seeded by the outlier).
  const std::uint8_t leaving = g.n[1] <= g.n[0] ? 1 : 0;
  std::size_t first = 0;
  while (g.side[first] != leaving) ++first;
  const std::uint32_t to = open_split_cluster(p, c.sample[first].occurred_us).seq;
  p.candidates.push_back(to);
  std::vector<Move> moves;
  for (std::size_t i = 0; i < m; ++i) {
    if (g.side[i] == leaving) moves.push_back(Move{c.seq, static_cast<std::uint32_t>(i), to});
  }
  apply_moves(p, moves);
}

}  // namespace painpoint::aggregator

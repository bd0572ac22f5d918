#include "id_inheritance.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <unordered_map>

namespace painpoint::service {

InheritanceResult match_inheritance(const InheritanceInput& in) {
  constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();
  const std::size_t n_old = in.old_groups.size();
  const std::size_t n_new = in.new_groups.size();
  std::vector<std::int64_t> old_size(n_old, 0), new_size(n_new, 0);
  std::vector<std::size_t> old_first(n_old, kNever), new_first(n_new, kNever);
  std::unordered_map<std::uint64_t, std::int64_t> overlap;  // (old << 32 | new) -> |A ∩ B|
  for (std::size_t i = 0; i < in.events.size(); ++i) {
    const auto& e = in.events[i];
    ++new_size[e.new_group];
    new_first[e.new_group] = std::min(new_first[e.new_group], i);
    if (!e.old_group) continue;
    ++old_size[*e.old_group];
    old_first[*e.old_group] = std::min(old_first[*e.old_group], i);
    ++overlap[(std::uint64_t{*e.old_group} << 32) | e.new_group];
  }

  struct Pair {
    double jaccard;
    std::int64_t common;
    std::uint32_t old_group;
    std::uint32_t new_group;
  };
  std::vector<Pair> pairs;
  // Largest share of each old group in one new group (for MERGED).
  std::vector<std::pair<std::int64_t, std::uint32_t>> best_share(n_old, {0, 0});
  for (const auto& [key, common] : overlap) {
    const auto o = static_cast<std::uint32_t>(key >> 32);
    const auto n = static_cast<std::uint32_t>(key & 0xffffffffu);
    auto& best = best_share[o];
    if (common > best.first || (common == best.first && new_first[n] < new_first[best.second])) {
      best = {common, n};
    }
    if (in.old_groups[o].published && !in.new_groups[n].published) continue;
    const double jaccard =
        static_cast<double>(common) / static_cast<double>(old_size[o] + new_size[n] - common);
    if (jaccard >= in.threshold) pairs.push_back({jaccard, common, o, n});
  }
  std::sort(pairs.begin(), pairs.end(), [&](const Pair& a, const Pair& b) {
    return std::tuple(-a.jaccard, -a.common, old_first[a.old_group], new_first[a.new_group]) <
           std::tuple(-b.jaccard, -b.common, old_first[b.old_group], new_first[b.new_group]);
  });

  InheritanceResult out;
  out.old_fates.resize(n_old);
  out.heir_of.resize(n_new);
  std::vector<bool> old_taken(n_old, false);
  for (const Pair& p : pairs) {
    if (old_taken[p.old_group] || out.heir_of[p.new_group]) continue;
    old_taken[p.old_group] = true;
    out.heir_of[p.new_group] = p.old_group;
    out.old_fates[p.old_group] = {OldFate::Kind::kInherited, p.new_group, p.jaccard};
  }
  for (std::uint32_t o = 0; o < n_old; ++o) {
    if (old_taken[o]) continue;
    OldFate& fate = out.old_fates[o];
    if (!in.old_groups[o].published) {
      fate.kind = OldFate::Kind::kDropped;
      continue;
    }
    const auto [common, n] = best_share[o];
    if (old_size[o] > 0 && 2 * common > old_size[o] && in.new_groups[n].published) {
      fate = {OldFate::Kind::kMerged, n,
              static_cast<double>(common) / static_cast<double>(old_size[o])};
    } else {
      fate.kind = OldFate::Kind::kRetired;
    }
  }
  return out;
}

}  // namespace painpoint::service

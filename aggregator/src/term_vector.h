// Sparse term vectors (sorted by term) and the arithmetic every part of the aggregator shares.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace painpoint::aggregator {

struct TermWeight {
  std::uint32_t term;
  float w;
};

inline double sparse_dot(std::span<const TermWeight> a, std::span<const TermWeight> b) {
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

inline double norm2_of(std::span<const TermWeight> v) {
  double n = 0;
  for (const auto& tw : v) n += static_cast<double>(tw.w) * static_cast<double>(tw.w);
  return n;
}

inline double dense_norm_of(std::span<const float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * static_cast<double>(x);
  return std::sqrt(n);
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

inline std::vector<TermWeight> top_terms(std::span<const TermWeight> v, std::size_t k) {
  std::vector<TermWeight> out;
  top_terms_into(v, k, out);
  return out;
}

// The mean cosine between two distinct members of a group of n unit vectors whose sum has
// squared length `sum_norm2`: that counts every ordered pair once, the n self-pairs included.
inline double mean_pairwise_cosine(double sum_norm2, double n) {
  return (sum_norm2 - n) / (n * (n - 1));
}

// Dot product with a fixed summation order (eight lanes, then the lanes in order), so that the
// compiler may vectorize it and the result is the same on every run and every machine.
inline double dot_lanes(const float* a, const float* b, std::size_t n) {
  constexpr std::size_t kLanes = 8;
  float lane[kLanes] = {};
  std::size_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) lane[j] += a[k + j] * b[k + j];
  }
  double sum = 0;
  for (std::size_t j = 0; j < kLanes; ++j) sum += static_cast<double>(lane[j]);
  for (; k < n; ++k) sum += static_cast<double>(a[k]) * static_cast<double>(b[k]);
  return sum;
}

}  // namespace painpoint::aggregator

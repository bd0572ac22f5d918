#pragma once

// The tests' sentence vectors are scaled to unit length, as the encoder's are.

#include <cmath>
#include <vector>

namespace painpoint::aggregator::testing {

inline std::vector<float> unit(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += static_cast<double>(x) * x;
  n = std::sqrt(n);
  for (float& x : v) x = static_cast<float>(x / n);
  return v;
}

}  // namespace painpoint::aggregator::testing

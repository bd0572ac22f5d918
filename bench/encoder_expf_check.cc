// Checks that the encoder's SIMD softmax exponential (vexpf_nonpositive in
// aggregator/src/encoder_kernels_impl.h) gives the bits of the C library's expf for every float
// x <= 0 (2^31 values, -0 to -inf; ~20 s). Not part of the build; run it after a glibc upgrade:
//   g++ -std=c++20 -O2 -march=x86-64-v4 -mavx512bf16 -Iaggregator/src \
//       bench/encoder_expf_check.cc -o /tmp/expf_check && /tmp/expf_check
// Exits 1 when a value differs (then the encoder's vectors differ from what std::exp gave).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "encoder_kernels_impl.h"

int main() {
  using painpoint::aggregator::encoder::vexpf_nonpositive;
  unsigned long bad = 0;
  unsigned long n = 0;
  alignas(32) float in[8];
  alignas(32) float out[8];
  for (std::uint64_t u = 0x80000000U; u <= 0xff800000U; u += 8) {
    for (int i = 0; i < 8; ++i) {
      std::uint32_t bits = static_cast<std::uint32_t>(u + i);
      if (bits > 0xff800000U) bits = 0xff800000U;
      std::memcpy(&in[i], &bits, 4);
    }
    _mm256_store_ps(out, vexpf_nonpositive(_mm256_load_ps(in)));
    for (int i = 0; i < 8; ++i) {
      const float expected = std::exp(in[i]);
      ++n;
      if (std::memcmp(&expected, &out[i], 4) != 0) {
        if (bad < 5) std::printf("x = %a: expf %a, simd %a\n", in[i], expected, out[i]);
        ++bad;
      }
    }
  }
  std::printf("%lu of %lu differ\n", bad, n);
  return bad == 0 ? 0 : 1;
}

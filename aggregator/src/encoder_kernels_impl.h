// The encoder's forward pass for one instruction set; included by encoder_kernels_sse2.cc,
// encoder_kernels_avx2.cc and encoder_kernels_avx512.cc, which are compiled with different
// target flags. Everything here has internal linkage (see encoder_kernels.h).
//
// Determinism: each output of a dense layer is acc = 0; acc = fma(x[k], w[k], acc) for k in
// order; acc + bias, in one SIMD lane, whichever row-group kernel computes the row. Attention,
// pooling and normalization work on one sequence or one row at a time. So a text's vector does
// not depend on what else is in the chunk.

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "encoder_kernels.h"

namespace painpoint::aggregator::encoder {
namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr std::size_t kLanes = 16;
constexpr std::size_t kFp32RowsPerGroup = 8;
inline Vec vzero() { return _mm512_setzero_ps(); }
inline Vec vload(const float* p) { return _mm512_load_ps(p); }
inline Vec vbroadcast(float x) { return _mm512_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec vadd(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline void vstore(float* p, Vec v) { _mm512_store_ps(p, v); }
inline Vec vmul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec vdiv(Vec a, Vec b) { return _mm512_div_ps(a, b); }
inline Vec vmin(Vec a, Vec b) { return _mm512_min_ps(a, b); }
inline Vec vmax(Vec a, Vec b) { return _mm512_max_ps(a, b); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr std::size_t kLanes = 8;
constexpr std::size_t kFp32RowsPerGroup = 6;
inline Vec vzero() { return _mm256_setzero_ps(); }
inline Vec vload(const float* p) { return _mm256_load_ps(p); }
inline Vec vbroadcast(float x) { return _mm256_set1_ps(x); }
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec vadd(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline void vstore(float* p, Vec v) { _mm256_store_ps(p, v); }
inline Vec vmul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec vdiv(Vec a, Vec b) { return _mm256_div_ps(a, b); }
inline Vec vmin(Vec a, Vec b) { return _mm256_min_ps(a, b); }
inline Vec vmax(Vec a, Vec b) { return _mm256_max_ps(a, b); }
#else
using Vec = __m128;
constexpr std::size_t kLanes = 4;
constexpr std::size_t kFp32RowsPerGroup = 4;
inline Vec vzero() { return _mm_setzero_ps(); }
inline Vec vload(const float* p) { return _mm_load_ps(p); }
inline Vec vbroadcast(float x) { return _mm_set1_ps(x); }
// No FMA on plain x86-64: multiply, round, add.
inline Vec vfma(Vec a, Vec b, Vec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
inline Vec vadd(Vec a, Vec b) { return _mm_add_ps(a, b); }
inline void vstore(float* p, Vec v) { _mm_store_ps(p, v); }
inline Vec vmul(Vec a, Vec b) { return _mm_mul_ps(a, b); }
inline Vec vdiv(Vec a, Vec b) { return _mm_div_ps(a, b); }
inline Vec vmin(Vec a, Vec b) { return _mm_min_ps(a, b); }
inline Vec vmax(Vec a, Vec b) { return _mm_max_ps(a, b); }
#endif

#if !defined(__AVX512BF16__)
// Outputs per packed panel: two vectors, so a row group keeps 2 * kRowsPerGroup accumulators.
constexpr std::size_t kPanel = 2 * kLanes;
constexpr std::size_t kRowsPerGroup = kFp32RowsPerGroup;

// out[p][k][j] = w[p * kPanel + j][k]: panel p holds outputs [p * kPanel, (p + 1) * kPanel).
void pack(const float* w, std::size_t n, std::size_t k, float* out) {
  for (std::size_t p = 0; p < n / kPanel; ++p) {
    for (std::size_t kk = 0; kk < k; ++kk) {
      for (std::size_t j = 0; j < kPanel; ++j) {
        out[(p * k + kk) * kPanel + j] = w[(p * kPanel + j) * k + kk];
      }
    }
  }
}

// y[r][0..kPanel) = x[r] . panel + b for R rows; the per-output operations do not depend on R.
template <std::size_t R>
inline void dense_rows(const float* x, std::size_t k, const float* panel, const float* b, float* y,
                       std::size_t ldy) {
  // The row loops are unrolled so that the accumulators live in registers.
  Vec acc[R][2];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = vzero();
  for (std::size_t kk = 0; kk < k; ++kk) {
    const Vec w0 = vload(panel + kk * kPanel);
    const Vec w1 = vload(panel + kk * kPanel + kLanes);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      const Vec xv = vbroadcast(x[r * k + kk]);
      acc[r][0] = vfma(xv, w0, acc[r][0]);
      acc[r][1] = vfma(xv, w1, acc[r][1]);
    }
  }
  const Vec b0 = vload(b);
  const Vec b1 = vload(b + kLanes);
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    vstore(y + r * ldy, vadd(acc[r][0], b0));
    vstore(y + r * ldy + kLanes, vadd(acc[r][1], b1));
  }
}

// The last m % kRowsPerGroup rows in one group (R known at compile time for each remainder).
template <std::size_t R = kRowsPerGroup - 1>
inline void dense_tail(std::size_t rows, const float* x, std::size_t k, const float* panel,
                       const float* b, float* y, std::size_t ldy) {
  if constexpr (R > 0) {
    if (rows == R) {
      dense_rows<R>(x, k, panel, b, y, ldy);
    } else {
      dense_tail<R - 1>(rows, x, k, panel, b, y, ldy);
    }
  }
}

// y[m, n] = x[m, k] W^T + b, W packed. Panels outside, rows inside: a panel is read from memory
// once per chunk and the chunk's rows come from L2.
void dense(const float* x, std::size_t m, std::size_t k, const float* packed, const float* b,
           std::size_t n, float* y, std::uint16_t* /*work*/) {
  for (std::size_t p = 0; p < n / kPanel; ++p) {
    const float* panel = packed + p * k * kPanel;
    std::size_t r = 0;
    for (; r + kRowsPerGroup <= m; r += kRowsPerGroup) {
      dense_rows<kRowsPerGroup>(x + r * k, k, panel, b + p * kPanel, y + r * n + p * kPanel, n);
    }
    dense_tail(m - r, x + r * k, k, panel, b + p * kPanel, y + r * n + p * kPanel, n);
  }
}

#else
// Outputs per packed panel: two vectors of 16 outputs, each lane a pair of consecutive k.
constexpr std::size_t kPanel = 32;
constexpr std::size_t kRowsPerGroup = 8;

// Round to nearest even, as vcvtne2ps2bf16 does for the activations.
inline std::uint16_t to_bf16(float f) {
  std::uint32_t u = 0;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<std::uint16_t>(u >> 16);
}

// Panel p, k pair q, output j: out[((p * k/2 + q) * kPanel + j) * 2 + t] = w[p*kPanel + j][2q + t]
// in bf16; `out` needs n * k / 2 floats of room.
void pack(const float* w, std::size_t n, std::size_t k, float* out_floats) {
  auto* out = reinterpret_cast<std::uint16_t*>(out_floats);
  for (std::size_t p = 0; p < n / kPanel; ++p) {
    for (std::size_t q = 0; q < k / 2; ++q) {
      for (std::size_t j = 0; j < kPanel; ++j) {
        for (std::size_t t = 0; t < 2; ++t) {
          out[((p * (k / 2) + q) * kPanel + j) * 2 + t] =
              to_bf16(w[(p * kPanel + j) * k + 2 * q + t]);
        }
      }
    }
  }
}

inline __m512bh load_bh(const std::uint16_t* p) {
  return std::bit_cast<__m512bh>(_mm512_load_si512(p));
}

template <std::size_t R>
inline void dense_rows(const std::uint16_t* x, std::size_t k, const std::uint16_t* panel,
                       const float* b, float* y, std::size_t ldy) {
  __m512 acc[R][2];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (std::size_t q = 0; q < k / 2; ++q) {
    const __m512bh w0 = load_bh(panel + q * 2 * kPanel);
    const __m512bh w1 = load_bh(panel + q * 2 * kPanel + kPanel);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      std::int32_t pair = 0;
      std::memcpy(&pair, x + r * k + 2 * q, 4);
      const __m512bh xv = std::bit_cast<__m512bh>(_mm512_set1_epi32(pair));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xv, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xv, w1);
    }
  }
  const __m512 b0 = _mm512_load_ps(b);
  const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    _mm512_store_ps(y + r * ldy, _mm512_add_ps(acc[r][0], b0));
    _mm512_store_ps(y + r * ldy + 16, _mm512_add_ps(acc[r][1], b1));
  }
}

template <std::size_t R = kRowsPerGroup - 1>
inline void dense_tail(std::size_t rows, const std::uint16_t* x, std::size_t k,
                       const std::uint16_t* panel, const float* b, float* y, std::size_t ldy) {
  if constexpr (R > 0) {
    if (rows == R) {
      dense_rows<R>(x, k, panel, b, y, ldy);
    } else {
      dense_tail<R - 1>(rows, x, k, panel, b, y, ldy);
    }
  }
}

// 32 floats rounded to bf16, in order.
inline void store_bf16(std::uint16_t* out, __m512 lo, __m512 hi) {
  _mm512_store_si512(out, std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
}

// y[m, n] = work[m, k] W^T + b, work being activations already rounded to bf16; products
// accumulated in f32 by vdpbf16ps, pairs of k in order.
void dense_rounded(const std::uint16_t* work, std::size_t m, std::size_t k, const float* packed,
                   const float* b, std::size_t n, float* y) {
  const auto* wp = reinterpret_cast<const std::uint16_t*>(packed);
  for (std::size_t p = 0; p < n / kPanel; ++p) {
    const std::uint16_t* panel = wp + p * k * kPanel;
    std::size_t r = 0;
    for (; r + kRowsPerGroup <= m; r += kRowsPerGroup) {
      dense_rows<kRowsPerGroup>(work + r * k, k, panel, b + p * kPanel, y + r * n + p * kPanel, n);
    }
    dense_tail(m - r, work + r * k, k, panel, b + p * kPanel, y + r * n + p * kPanel, n);
  }
}

// y[m, n] = x[m, k] W^T + b with x rounded to bf16 (into `work`, m * k values).
void dense(const float* x, std::size_t m, std::size_t k, const float* packed, const float* b,
           std::size_t n, float* y, std::uint16_t* work) {
  for (std::size_t i = 0; i < m * k; i += 32) {
    store_bf16(work + i, _mm512_loadu_ps(x + i), _mm512_loadu_ps(x + i + 16));
  }
  dense_rounded(work, m, k, packed, b, n, y);
}

#endif

// Sum of v[0..kHidden): lane-wise partial sums, then the lanes in order (a fixed order per row).
inline float row_sum(const float* v) {
  Vec acc = vzero();
  for (std::size_t i = 0; i < kHidden; i += kLanes) acc = vadd(acc, vload(v + i));
  alignas(64) float lanes[kLanes];
  vstore(lanes, acc);
  float sum = 0;
  for (const float lane : lanes) sum += lane;
  return sum;
}

// x = LayerNorm(x + add) over kHidden, eps 1e-12 (add may be null).
void add_layer_norm(float* x, const float* add, const float* w, const float* b) {
  if (add != nullptr) {
    for (std::size_t i = 0; i < kHidden; i += kLanes) {
      vstore(x + i, vadd(vload(x + i), vload(add + i)));
    }
  }
  const Vec mean = vbroadcast(row_sum(x) / static_cast<float>(kHidden));
  alignas(64) float centered[kHidden];
  Vec sq = vzero();
  for (std::size_t i = 0; i < kHidden; i += kLanes) {
    const Vec c = vadd(vload(x + i), vmul(mean, vbroadcast(-1.0F)));
    vstore(centered + i, c);
    sq = vfma(c, c, sq);
  }
  alignas(64) float lanes[kLanes];
  vstore(lanes, sq);
  float var = 0;
  for (const float lane : lanes) var += lane;
  const Vec inv = vbroadcast(1.0F / std::sqrt(var / static_cast<float>(kHidden) + 1e-12F));
  for (std::size_t i = 0; i < kHidden; i += kLanes) {
    vstore(x + i, vfma(vmul(vload(centered + i), inv), vload(w + i), vload(b + i)));
  }
}

// erf(x) for float: Eigen's rational approximation (generic_fast_erf_float), within a few ulp
// of erff and without its branches and call per element.
inline Vec verf(Vec v) {
  const Vec x = vmax(vmin(v, vbroadcast(4.0F)), vbroadcast(-4.0F));
  const Vec x2 = vmul(x, x);
  Vec p = vfma(x2, vbroadcast(-2.72614225801306e-10F), vbroadcast(2.77068142495902e-08F));
  p = vfma(x2, p, vbroadcast(-2.10102402082508e-06F));
  p = vfma(x2, p, vbroadcast(-5.69250639462346e-05F));
  p = vfma(x2, p, vbroadcast(-7.34990630326855e-04F));
  p = vfma(x2, p, vbroadcast(-2.95459980854025e-03F));
  p = vfma(x2, p, vbroadcast(-1.60960333262415e-02F));
  p = vmul(x, p);
  Vec q = vfma(x2, vbroadcast(-1.45660718464996e-05F), vbroadcast(-2.13374055278905e-04F));
  q = vfma(x2, q, vbroadcast(-1.68282697438203e-03F));
  q = vfma(x2, q, vbroadcast(-7.37332916720468e-03F));
  q = vfma(x2, q, vbroadcast(-1.42647390514189e-02F));
  return vdiv(p, q);
}

// GELU with erf (the model's, not the tanh approximation): x/2 (1 + erf(x / sqrt 2)).
inline Vec gelu(Vec v) {
  const Vec half = vbroadcast(0.5F);
  const Vec one = vbroadcast(1.0F);
  const Vec inv_sqrt2 = vbroadcast(0.70710678118654752F);
  return vmul(vmul(half, v), vadd(one, verf(vmul(v, inv_sqrt2))));
}

#if !defined(__AVX512BF16__)
// x = GELU(x) for n values, a multiple of the vector width.
void gelu(float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; i += kLanes) vstore(x + i, gelu(vload(x + i)));
}
#else
// work = bf16(GELU(x)) for n values (a multiple of 32): what gelu() and then dense()'s rounding
// give, in one pass over x instead of a write and two reads.
void gelu_bf16(const float* x, std::size_t n, std::uint16_t* work) {
  for (std::size_t i = 0; i < n; i += 32) {
    store_bf16(work + i, gelu(vload(x + i)), gelu(vload(x + i + 16)));
  }
}
#endif

#if defined(__AVX512F__)
// expf(x) for x <= 0, bit for bit as glibc 2.36's expf (its FMA variant, which it picks on every
// CPU with AVX-512; sysdeps/ieee754/flt-32/e_expf.c): x * 32/ln 2 = k + r in double, 2^(k/32)
// from a table, 2^(r/32) by a cubic, with the FMAs that build contracts. 8 at a time instead of
// a call per score.
inline __m256 vexpf_nonpositive(__m256 x) {
  alignas(64) static constexpr std::uint64_t kTable[32] = {
      0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
      0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
      0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
      0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
      0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
      0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
      0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
      0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540};
  const __m512d shift = _mm512_set1_pd(0x1.8p+52);
  const __m512d inv_ln2_n = _mm512_set1_pd(0x1.71547652b82fep+5);
  const __m512d xd = _mm512_cvtps_pd(x);
  const __m512d kd_shifted = _mm512_fmadd_pd(inv_ln2_n, xd, shift);
  const __m512i ki = _mm512_castpd_si512(kd_shifted);
  const __m512d kd = _mm512_sub_pd(kd_shifted, shift);
  const __m512d r = _mm512_fmsub_pd(inv_ln2_n, xd, kd);
  const __m512i index = _mm512_and_si512(ki, _mm512_set1_epi64(31));
  const __m512i low = _mm512_permutex2var_epi64(_mm512_load_si512(kTable), index,
                                                _mm512_load_si512(kTable + 8));
  const __m512i high = _mm512_permutex2var_epi64(_mm512_load_si512(kTable + 16), index,
                                                 _mm512_load_si512(kTable + 24));
  const __mmask8 upper = _mm512_test_epi64_mask(index, _mm512_set1_epi64(16));
  const __m512i t = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, low, high),
                                     _mm512_slli_epi64(ki, 47));
  const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.c6af84b912394p-20),
                                    _mm512_set1_pd(0x1.ebfce50fac4f3p-13));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(0x1.62e42ff0c52d6p-6), _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  y = _mm512_mul_pd(y, _mm512_castsi512_pd(t));
  __m256 out = _mm512_cvtpd_ps(y);
  // glibc's special cases below log(2^-149): the smallest subnormal, then zero.
  out = _mm256_blendv_ps(out, _mm256_set1_ps(0x1p-149F),
                         _mm256_cmp_ps(x, _mm256_set1_ps(-0x1.9d1d9ep6F), _CMP_LT_OQ));
  return _mm256_blendv_ps(out, _mm256_setzero_ps(),
                          _mm256_cmp_ps(x, _mm256_set1_ps(-0x1.9fe368p6F), _CMP_LT_OQ));
}
#endif

// s[j] = exp(s[j] - max) for j < len, each as std::exp gives it.
inline void exp_shifted(float* s, std::size_t len, float max) {
  std::size_t j = 0;
#if defined(__AVX512F__)
  const __m256 m = _mm256_set1_ps(max);
  for (; j + 8 <= len; j += 8) {
    _mm256_storeu_ps(s + j, vexpf_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), m)));
  }
#endif
  for (; j < len; ++j) s[j] = std::exp(s[j] - max);
}

// Query rows attended together: their dot products and weighted sums are independent chains of
// FMAs, which overlap in the pipeline instead of each waiting on the previous one's latency.
#if defined(__AVX512F__)
constexpr std::size_t kQueryRows = 8;
#elif defined(__AVX2__)
constexpr std::size_t kQueryRows = 4;
#else
constexpr std::size_t kQueryRows = 2;
#endif

// One head's attention for query rows [i, i + R) of a sequence of `len` rows: scores against the
// transposed keys `kt` (into `s`, R rows of `padded`), softmax, weighted sum of the values. Each
// output's operations, in their order, are those of a single row, whatever R is.
template <std::size_t R>
inline void attend_rows(const float* qkv, std::size_t len, std::size_t padded, std::size_t h,
                        std::size_t i, const float* kt, float* s, float* ctx) {
  constexpr std::size_t ld = 3 * kHidden;
  constexpr std::size_t kChunks = kHeadDim / kLanes;
  const Vec scale = vbroadcast(1.0F / std::sqrt(static_cast<float>(kHeadDim)));
  const float* q = qkv + i * ld + h * kHeadDim;
  for (std::size_t j = 0; j < padded; j += kLanes) {
    Vec acc[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = vzero();
    for (std::size_t d = 0; d < kHeadDim; ++d) {
      const Vec k = vload(kt + d * padded + j);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r) acc[r] = vfma(vbroadcast(q[r * ld + d]), k, acc[r]);
    }
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) vstore(s + r * padded + j, vmul(acc[r], scale));
  }
  float inv[R];
  for (std::size_t r = 0; r < R; ++r) {
    float* sr = s + r * padded;
    float max = sr[0];
    for (std::size_t j = 1; j < len; ++j) max = sr[j] > max ? sr[j] : max;
    exp_shifted(sr, len, max);
    float sum = 0;
    for (std::size_t j = 0; j < len; ++j) sum += sr[j];
    inv[r] = 1.0F / sum;
  }
  Vec out[R][kChunks];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    for (Vec& o : out[r]) o = vzero();
  }
  for (std::size_t j = 0; j < len; ++j) {
    const float* v = qkv + j * ld + 2 * kHidden + h * kHeadDim;
    Vec p[R];
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) p[r] = vbroadcast(s[r * padded + j] * inv[r]);
    for (std::size_t c = 0; c < kChunks; ++c) {
      const Vec vc = vload(v + c * kLanes);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r) out[r][c] = vfma(p[r], vc, out[r][c]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    for (std::size_t c = 0; c < kChunks; ++c) {
      vstore(ctx + (i + r) * kHidden + h * kHeadDim + c * kLanes, out[r][c]);
    }
  }
}

// The last len % kQueryRows rows of a head (R known at compile time for each remainder).
template <std::size_t R = kQueryRows - 1>
inline void attend_tail(std::size_t rows, const float* qkv, std::size_t len, std::size_t padded,
                        std::size_t h, std::size_t i, const float* kt, float* s, float* ctx) {
  if constexpr (R > 0) {
    if (rows == R) {
      attend_rows<R>(qkv, len, padded, h, i, kt, s, ctx);
    } else {
      attend_tail<R - 1>(rows, qkv, len, padded, h, i, kt, s, ctx);
    }
  }
}

#if defined(__AVX512F__)
// r[i][e] becomes r[e][i].
inline void transpose16(__m512 (&r)[16]) {
  __m512 u[16];
  for (std::size_t q = 0; q < 16; q += 4) {
    const __m512 t0 = _mm512_unpacklo_ps(r[q], r[q + 1]);
    const __m512 t1 = _mm512_unpackhi_ps(r[q], r[q + 1]);
    const __m512 t2 = _mm512_unpacklo_ps(r[q + 2], r[q + 3]);
    const __m512 t3 = _mm512_unpackhi_ps(r[q + 2], r[q + 3]);
    // u[q + c], 128-bit lane L: column 4L + c of rows q .. q + 3.
    u[q] = _mm512_shuffle_ps(t0, t2, 0x44);
    u[q + 1] = _mm512_shuffle_ps(t0, t2, 0xEE);
    u[q + 2] = _mm512_shuffle_ps(t1, t3, 0x44);
    u[q + 3] = _mm512_shuffle_ps(t1, t3, 0xEE);
  }
  for (std::size_t c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}
#endif

// kt[d][j] = keys[j * 3 * kHidden + d] for the `len` keys of a head, zero for j in [len, padded).
inline void transpose_keys(const float* keys, std::size_t len, std::size_t padded, float* kt) {
  constexpr std::size_t ld = 3 * kHidden;
#if defined(__AVX512F__)
  // 16 x 16 blocks transposed in registers: a scalar copy costs a store per element, and
  // gathers are slower still on Zen 4.
  for (std::size_t j = 0; j < padded; j += 16) {
    for (std::size_t d = 0; d < kHeadDim; d += 16) {
      __m512 r[16];
      for (std::size_t i = 0; i < 16; ++i) {
        r[i] = j + i < len ? _mm512_loadu_ps(keys + (j + i) * ld + d) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (std::size_t i = 0; i < 16; ++i) _mm512_store_ps(kt + (d + i) * padded + j, r[i]);
    }
  }
#else
  for (std::size_t d = 0; d < kHeadDim; ++d) {
    for (std::size_t j = 0; j < len; ++j) kt[d * padded + j] = keys[j * ld + d];
    for (std::size_t j = len; j < padded; ++j) kt[d * padded + j] = 0;
  }
#endif
}

// Self-attention of one sequence of `len` rows: qkv [len, 3 * kHidden] -> ctx [len, kHidden].
// Only the sequence's own tokens are there, which is what the reference's padding mask gives.
// The keys are transposed and padded with zeros to whole vectors, so scores are computed
// kLanes keys at a time; the padding scores are never read.
void attention(const float* qkv, std::size_t len, float* ctx, float* scratch) {
  const std::size_t padded = (len + kLanes - 1) / kLanes * kLanes;
  float* kt = scratch;  // keys transposed: [kHeadDim][padded]
  float* s = scratch + kHeadDim * kMaxTokens;  // scores: [kQueryRows][padded]
  static_assert(kQueryRows <= 16, "scratch_floats() holds 16 rows of scores");
  for (std::size_t h = 0; h < kHeads; ++h) {
    transpose_keys(qkv + kHidden + h * kHeadDim, len, padded, kt);
    std::size_t i = 0;
    for (; i + kQueryRows <= len; i += kQueryRows) {
      attend_rows<kQueryRows>(qkv, len, padded, h, i, kt, s, ctx);
    }
    attend_tail(len - i, qkv, len, padded, h, i, kt, s, ctx);
  }
}

void embed(const Weights& w, const std::int32_t* ids, const std::size_t* offsets, std::size_t count,
           float* h) {
  for (std::size_t s = 0; s < count; ++s) {
    for (std::size_t t = offsets[s]; t < offsets[s + 1]; ++t) {
      const float* word = w.word + static_cast<std::size_t>(ids[t]) * kHidden;
      const float* pos = w.position + (t - offsets[s]) * kHidden;
      float* row = h + (t - offsets[0]) * kHidden;
      for (std::size_t i = 0; i < kHidden; ++i) row[i] = (word[i] + w.token_type[i]) + pos[i];
      add_layer_norm(row, nullptr, w.ln_w, w.ln_b);
    }
  }
}

void layer(const LayerWeights& l, const std::size_t* offsets, std::size_t count, std::size_t m,
           float* h, float* qkv, float* ctx, float* tmp, float* ffn, float* att_scratch,
           std::uint16_t* work) {
  dense(h, m, kHidden, l.qkv_w, l.qkv_b, 3 * kHidden, qkv, work);
  for (std::size_t s = 0; s < count; ++s) {
    const std::size_t begin = offsets[s] - offsets[0];
    attention(qkv + begin * 3 * kHidden, offsets[s + 1] - offsets[s], ctx + begin * kHidden,
              att_scratch);
  }
  dense(ctx, m, kHidden, l.attn_out_w, l.attn_out_b, kHidden, tmp, work);
  for (std::size_t r = 0; r < m; ++r) {
    add_layer_norm(h + r * kHidden, tmp + r * kHidden, l.ln1_w, l.ln1_b);
  }
  dense(h, m, kHidden, l.ffn_in_w, l.ffn_in_b, kFfn, ffn, work);
#if defined(__AVX512BF16__)
  gelu_bf16(ffn, m * kFfn, work);
  dense_rounded(work, m, kFfn, l.ffn_out_w, l.ffn_out_b, kHidden, tmp);
#else
  gelu(ffn, m * kFfn);
  dense(ffn, m, kFfn, l.ffn_out_w, l.ffn_out_b, kHidden, tmp, work);
#endif
  for (std::size_t r = 0; r < m; ++r) {
    add_layer_norm(h + r * kHidden, tmp + r * kHidden, l.ln2_w, l.ln2_b);
  }
}

// Mean over the sequence's rows, then L2 normalization (sentence-transformers' Pooling and
// Normalize modules).
void pool(const float* h, const std::size_t* offsets, std::size_t count, float* out) {
  for (std::size_t s = 0; s < count; ++s) {
    double acc[kHidden] = {};
    const std::size_t len = offsets[s + 1] - offsets[s];
    for (std::size_t t = 0; t < len; ++t) {
      const float* row = h + (offsets[s] - offsets[0] + t) * kHidden;
      for (std::size_t i = 0; i < kHidden; ++i) acc[i] += row[i];
    }
    double norm = 0;
    for (std::size_t i = 0; i < kHidden; ++i) {
      acc[i] /= static_cast<double>(len);
      norm += acc[i] * acc[i];
    }
    const double inv = 1.0 / std::fmax(std::sqrt(norm), 1e-12);
    for (std::size_t i = 0; i < kHidden; ++i) {
      out[s * kHidden + i] = static_cast<float>(acc[i] * inv);
    }
  }
}

void encode_chunk(const Weights& w, const std::int32_t* ids, const std::size_t* offsets,
                  std::size_t count, float* scratch, float* out) {
  const std::size_t m = offsets[count] - offsets[0];
  float* h = scratch;
  float* qkv = h + kChunkRows * kHidden;
  float* ctx = qkv + kChunkRows * 3 * kHidden;
  float* tmp = ctx + kChunkRows * kHidden;
  float* ffn = tmp + kChunkRows * kHidden;
  float* att = ffn + kChunkRows * kFfn;
  auto* work = reinterpret_cast<std::uint16_t*>(att + kMaxTokens * (kHeadDim + 16));
  embed(w, ids, offsets, count, h);
  for (std::size_t i = 0; i < w.num_layers; ++i) {
    layer(w.layers[i], offsets, count, m, h, qkv, ctx, tmp, ffn, att, work);
  }
  pool(h, offsets, count, out);
}

}  // namespace
}  // namespace painpoint::aggregator::encoder

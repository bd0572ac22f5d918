// Dense-layer products of the encoder's shapes: Eigen 3.4, OpenBLAS and the encoder's own kernel
// (encoder_kernels_impl.h), in GFLOP/s, and whether a row's result depends on how many rows the
// product has. The measurement behind docs/adr-002-encoder-math.md; not part of the build, since
// neither library is a dependency of Painpoint:
//   apt-get install libeigen3-dev libopenblas-dev
//   g++ -std=c++20 -O2 -DNDEBUG -march=x86-64-v4 -Iaggregator/src -I/usr/include/eigen3 \
//       bench/encoder_gemm_compare.cc -lopenblas -o /tmp/gemm_compare && /tmp/gemm_compare
// (without -march the encoder's kernel is its sse2 variant and Eigen uses SSE2 only).
#include <cblas.h>

#include <Eigen/Dense>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "encoder_kernels_impl.h"

extern "C" void openblas_set_num_threads(int);

namespace {

using painpoint::aggregator::encoder::dense;
using painpoint::aggregator::encoder::pack;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class F>
double gflops(F f, double flops) {
  f();
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  double seconds = 0;
  do {
    f();
    ++runs;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (seconds < 0.5);
  return flops * runs / seconds / 1e9;
}

float* aligned_floats(std::size_t n) {
  auto* p = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  std::memset(p, 0, n * sizeof(float));
  return p;
}

}  // namespace

int main() {
  openblas_set_num_threads(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (const auto [k, n] : {std::pair{384, 1536}, std::pair{1536, 384}, std::pair{384, 1152}}) {
    RowMajor w(n, k);
    for (int i = 0; i < n * k; ++i) w.data()[i] = normal(rng) * 0.05F;
    float* bias = aligned_floats(n);
    float* packed = aligned_floats(static_cast<std::size_t>(n) * k);
    pack(w.data(), n, k, packed);
    std::vector<std::uint16_t> work(static_cast<std::size_t>(128) * k);
    for (const int m : {16, 128}) {
      RowMajor x(m, k);
      for (int i = 0; i < m * k; ++i) x.data()[i] = normal(rng);
      RowMajor y(m, n);
      float* own = aligned_floats(static_cast<std::size_t>(m) * n);
      const double flops = 2.0 * m * n * k;
      const double eigen = gflops([&] { y.noalias() = x * w.transpose(); }, flops);
      const double blas = gflops(
          [&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.F, x.data(), k,
                        w.data(), k, 0.F, y.data(), n);
          },
          flops);
      const double mine =
          gflops([&] { dense(x.data(), m, k, packed, bias, n, own, work.data()); }, flops);
      // Row 0 computed in a 1-row product against the same row in the m-row product.
      y.noalias() = x * w.transpose();
      RowMajor y1(1, n);
      y1.noalias() = x.topRows(1) * w.transpose();
      const bool eigen_same = std::memcmp(y1.data(), y.data(), n * sizeof(float)) == 0;
      std::vector<float> z1(n);
      std::vector<float> zm(static_cast<std::size_t>(m) * n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, n, k, 1.F, x.data(), k, w.data(), k,
                  0.F, z1.data(), n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.F, x.data(), k, w.data(), k,
                  0.F, zm.data(), n);
      const bool blas_same = std::memcmp(z1.data(), zm.data(), n * sizeof(float)) == 0;
      std::printf(
          "m=%3d k=%4d n=%4d GFLOP/s: eigen %5.1f openblas %5.1f own %5.1f | "
          "row 0 alone = row 0 of m: eigen %s, openblas %s\n",
          m, k, n, eigen, blas, mine, eigen_same ? "yes" : "no", blas_same ? "yes" : "no");
      std::free(own);
    }
    std::free(packed);
    std::free(bias);
  }
  return 0;
}

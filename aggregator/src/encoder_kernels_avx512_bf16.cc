// The forward pass for AVX-512 with BF16 dot products (target flags in aggregator/CMakeLists.txt):
// dense layers in bf16 x bf16 -> f32, the rest as in encoder_kernels_avx512.cc.
#include "encoder_kernels_impl.h"

namespace painpoint::aggregator::encoder {

const Kernels& kernels_avx512_bf16() {
  static const Kernels kernels{"avx512_bf16", 2, &pack, &encode_chunk};
  return kernels;
}

}  // namespace painpoint::aggregator::encoder

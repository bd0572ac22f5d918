// The forward pass for avx512 (target flags in aggregator/CMakeLists.txt).
#include "encoder_kernels_impl.h"

namespace painpoint::aggregator::encoder {

const Kernels& kernels_avx512() {
  static const Kernels kernels{"avx512", 4, &pack, &encode_chunk};
  return kernels;
}

}  // namespace painpoint::aggregator::encoder

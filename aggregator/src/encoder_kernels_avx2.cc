// The forward pass for avx2 (target flags in aggregator/CMakeLists.txt).
#include "encoder_kernels_impl.h"

namespace painpoint::aggregator::encoder {

const Kernels& kernels_avx2() {
  static const Kernels kernels{"avx2", 4, &pack, &encode_chunk};
  return kernels;
}

}  // namespace painpoint::aggregator::encoder

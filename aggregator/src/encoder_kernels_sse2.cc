// The forward pass for sse2 (target flags in aggregator/CMakeLists.txt).
#include "encoder_kernels_impl.h"

namespace painpoint::aggregator::encoder {

const Kernels& kernels_sse2() {
  static const Kernels kernels{"sse2", 4, &pack, &encode_chunk};
  return kernels;
}

}  // namespace painpoint::aggregator::encoder

#pragma once

// The encoder's forward pass, compiled once per instruction set (encoder_kernels_*.cc include
// encoder_kernels_impl.h with different target flags) and chosen at run time by what the CPU
// offers. Only plain pointers cross this interface, so no inline function of a library header is
// shared between the differently compiled files.

#include <cstddef>
#include <cstdint>

namespace painpoint::aggregator::encoder {

inline constexpr std::size_t kHidden = 384;
inline constexpr std::size_t kHeads = 12;
inline constexpr std::size_t kHeadDim = kHidden / kHeads;
inline constexpr std::size_t kFfn = 1536;
inline constexpr std::size_t kMaxTokens = 256;
// Rows (tokens) one encode_chunk call takes at most, sequences being whole: the working set of
// the dense layers then stays in the core's L2 cache.
inline constexpr std::size_t kChunkRows = 256;

// Dense weights are in the kernel's packed layout (Kernels::pack); vectors as in the file.
struct LayerWeights {
  const float* qkv_w;  // query, key, value fused: 3 * kHidden outputs
  const float* qkv_b;
  const float* attn_out_w;
  const float* attn_out_b;
  const float* ln1_w;
  const float* ln1_b;
  const float* ffn_in_w;
  const float* ffn_in_b;
  const float* ffn_out_w;
  const float* ffn_out_b;
  const float* ln2_w;
  const float* ln2_b;
};

struct Weights {
  const float* word;        // [vocab, kHidden]
  const float* position;    // [max_positions, kHidden]
  const float* token_type;  // [kHidden], type 0
  const float* ln_w;
  const float* ln_b;
  const LayerWeights* layers;
  std::size_t num_layers;
};

struct Kernels {
  const char* name;
  // Bytes per packed weight: 4 (f32) or 2 (bf16).
  std::size_t weight_bytes;
  // Packs a PyTorch-layout weight W[n, k] (n a multiple of 32) into `out` (n * k * weight_bytes
  // bytes).
  void (*pack)(const float* w, std::size_t n, std::size_t k, float* out);
  // Encodes `count` sequences, sequence s being ids[offsets[s] .. offsets[s + 1]) (at most
  // kChunkRows ids in all, each sequence at most kMaxTokens), into count * kHidden floats of
  // `out`, L2-normalized. `scratch` holds scratch_floats() floats, 64-byte aligned.
  void (*encode_chunk)(const Weights& weights, const std::int32_t* ids, const std::size_t* offsets,
                       std::size_t count, float* scratch, float* out);
};

[[nodiscard]] constexpr std::size_t scratch_floats() {
  // Hidden states, fused q/k/v, attention context, sublayer output, FFN activations; attention
  // scratch; activations rounded to bf16 (two per float).
  return kChunkRows * (3 * kHidden + 3 * kHidden + kFfn) + kMaxTokens * (kHeadDim + 16) +
         kChunkRows * kFfn / 2;
}

const Kernels& kernels_sse2();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
const Kernels& kernels_avx512_bf16();

// The best kernels this CPU runs; $PAINPOINT_ENCODER_KERNEL (sse2, avx2, avx512, avx512_bf16)
// chooses a lesser one for measurements and tests.
const Kernels& select_kernels();

}  // namespace painpoint::aggregator::encoder

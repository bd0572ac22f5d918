#pragma once

// In-process sentence encoder: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, mean pooling,
// L2-normalized), weights converted by scripts/fetch-encoder.sh.
//
// Deterministic: a text's vector is bit-identical whatever batch it is encoded in, its position
// there and the thread count (on a given machine: the kernels are chosen by what the CPU offers).
// Immutable after loading and therefore safe to share between threads.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace painpoint::aggregator {

enum class EncoderError { kCannotOpen, kBadFormat };

namespace encoder {
struct Model;
class WordPiece;
}  // namespace encoder

class SentenceEncoder {
 public:
  static constexpr std::size_t kDims = 384;

  SentenceEncoder(std::unique_ptr<encoder::Model> model,
                  std::unique_ptr<encoder::WordPiece> tokenizer);
  ~SentenceEncoder();
  SentenceEncoder(const SentenceEncoder&) = delete;
  SentenceEncoder& operator=(const SentenceEncoder&) = delete;

  // The model's token ids of `text` (UTF-8; invalid bytes are dropped like U+FFFD), [CLS] first
  // and [SEP] last, truncated to the model's 256 tokens.
  [[nodiscard]] std::vector<std::int32_t> tokenize(std::string_view text) const;

  // Writes kDims floats per text to `out` (texts.size() * kDims of them), each vector of unit
  // length (all zeros cannot happen: [CLS] and [SEP] are always there). Splits the batch by text
  // over `threads` std::threads (1 = the calling thread only). Returns false, writing nothing,
  // when `out` has the wrong size.
  [[nodiscard]] bool encode(std::span<const std::string_view> texts, std::span<float> out,
                            unsigned threads = 1) const;

  // The kernel variant chosen for this CPU: "avx512", "avx2" or "sse2".
  [[nodiscard]] std::string_view kernel() const;

 private:
  std::unique_ptr<encoder::Model> model_;
  std::unique_ptr<encoder::WordPiece> tokenizer_;
};

struct LoadedEncoder {
  std::unique_ptr<SentenceEncoder> encoder;  // null on error
  std::optional<EncoderError> error;
  std::string detail;
};

// Reads the "PPENC001" file written by scripts/fetch-encoder.sh. The file is memory-mapped (the
// embedding tables are read in place) and must not be modified while the encoder lives; the
// script replaces it atomically.
[[nodiscard]] LoadedEncoder load_sentence_encoder(const std::string& path);

// The stored form of a sentence vector: a float32 scale (little endian) and one int8 code per
// dimension, value = scale * code (kDims + 4 bytes). Callers hand the aggregator the unpacked
// vector, never the encoder's own floats, so that a replay from the store sees the same input.
[[nodiscard]] std::string pack_embedding(std::span<const float> vector);
// False (and `out` untouched) when `bytes` is not a packed vector of out.size() dimensions.
[[nodiscard]] bool unpack_embedding(std::string_view bytes, std::span<float> out);

// Default location: $PAINPOINT_DATA_HOME/minilm-l6-v2.bin, else $XDG_CACHE_HOME/painpoint/, else
// ~/.cache/painpoint/ (scripts/fetch-encoder.sh writes the same path).
[[nodiscard]] std::string default_encoder_path();

}  // namespace painpoint::aggregator

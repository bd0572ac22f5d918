#pragma once

// Dense vectors for the static mode: static token vectors distilled from the sentence encoder
// (scripts/fetch-token-vectors.sh; an event's vector is the normalized sum of its WordPiece
// tokens' vectors) or, as before, GloVe word vectors (scripts/fetch-embeddings.sh; the
// aggregator averages its content words' vectors).
//
// Immutable after loading and therefore safe to share between threads and Aggregators.
// load_word_vectors() is the aggregator module's only I/O; the caller decides whether to call it.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace painpoint::aggregator {

namespace encoder {
class WordPiece;
}  // namespace encoder

enum class VectorsError { kCannotOpen, kBadFormat };

// The token ids of the words (text between ASCII whitespace) a thread has tokenized before, for
// WordVectors::add_text_vector: the same words recur, and decoding, normalizing and looking up
// each again was a large part of a text vector's cost. Bounded (100,000 words, a few MB; emptied
// when full); results never depend on it. Owned by one thread.
class TokenIdCache {
 public:
  TokenIdCache();
  ~TokenIdCache();
  TokenIdCache(const TokenIdCache&) = delete;
  TokenIdCache& operator=(const TokenIdCache&) = delete;

 private:
  friend class WordVectors;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class WordVectors {
 public:
  // Both kinds keep row i as scales[i] * codes[i * dims .. (i + 1) * dims), int8 codes as
  // stored, so that the rows an event reads stay in the caches.
  // GloVe: `words[i]` has row i.
  WordVectors(std::vector<std::string> words, std::uint32_t dims, std::vector<float> scales,
              std::vector<std::int8_t> codes);
  // Token vectors: the tokenizer's id i has row i.
  WordVectors(std::unique_ptr<encoder::WordPiece> tokenizer, std::uint32_t dims,
              std::vector<float> scales, std::vector<std::int8_t> codes);
  ~WordVectors();
  WordVectors(const WordVectors&) = delete;
  WordVectors& operator=(const WordVectors&) = delete;

  [[nodiscard]] std::uint32_t dims() const { return dims_; }
  // Words (GloVe) or tokens in the vocabulary.
  [[nodiscard]] std::size_t size() const { return size_; }
  // True for token vectors: use add_text_vector(), find() finds nothing.
  [[nodiscard]] bool whole_text() const { return tokenizer_ != nullptr; }
  static constexpr std::uint32_t kNoRow = UINT32_MAX;
  // The row of `word` (lowercase, GloVe), or kNoRow when it is not in the vocabulary.
  [[nodiscard]] std::uint32_t find(std::string_view word) const;
  // out[k] += weight * v[k] for k < dims(), v the row's vector with each component rounded to
  // float (scale times code), as a dequantized table would hold it. `row` must come from find().
  void add_scaled(std::uint32_t row, double weight, std::span<double> out) const;
  // Token vectors only: adds to out[0, dims()) the sum, in token order, of the vectors of the
  // text's WordPiece tokens ([CLS] and [SEP] excluded; the tokenizer's 256-token limit applies).
  // Returns false, leaving `out` as it was, when the text has no token or out has the wrong size.
  // With a cache the result is the same, sooner.
  [[nodiscard]] bool add_text_vector(std::string_view text, std::span<double> out,
                                     TokenIdCache* cache = nullptr) const;

 private:
  std::uint32_t dims_;
  std::size_t size_ = 0;
  std::vector<float> scales_;
  std::vector<std::int8_t> codes_;
  std::unique_ptr<encoder::WordPiece> tokenizer_;  // token vectors only
  // Keyed by a 64-bit hash of the word: no string allocation per lookup; collisions among
  // 10^5 words are vanishingly unlikely and would only blur one word's vector.
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
};

struct LoadedVectors {
  std::unique_ptr<WordVectors> vectors;  // null on error
  std::optional<VectorsError> error;
  std::string detail;
};

// Reads a "PPTV0001" file (token vectors, scripts/fetch-token-vectors.sh) or a "PPWV0001" file
// (GloVe, scripts/fetch-embeddings.sh).
[[nodiscard]] LoadedVectors load_word_vectors(const std::string& path);

// Default location (GloVe): $PAINPOINT_DATA_HOME/glove-100d.bin, else $XDG_CACHE_HOME/painpoint/,
// else ~/.cache/painpoint/ (scripts/fetch-embeddings.sh writes the same path). Token vectors are
// opt-in: callers pass their file's path.
[[nodiscard]] std::string default_word_vectors_path();

}  // namespace painpoint::aggregator

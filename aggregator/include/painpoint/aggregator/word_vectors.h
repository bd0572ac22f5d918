#pragma once

// Dense word vectors (GloVe 100d converted by scripts/fetch-embeddings.sh).
//
// Immutable after loading and therefore safe to share between threads and Aggregators.
// load_word_vectors() is the aggregator module's only I/O; the caller decides whether to call it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace painpoint::aggregator {

enum class VectorsError { kCannotOpen, kBadFormat };

class WordVectors {
 public:
  // `words[i]` has the vector `values[i * dims .. (i + 1) * dims)`.
  WordVectors(std::vector<std::string> words, std::uint32_t dims, std::vector<float> values);

  [[nodiscard]] std::uint32_t dims() const { return dims_; }
  [[nodiscard]] std::size_t size() const { return index_.size(); }
  // The vector of `word` (lowercase), or nullptr when it is not in the vocabulary.
  [[nodiscard]] const float* find(std::string_view word) const;

 private:
  std::uint32_t dims_;
  std::vector<float> values_;
  // Keyed by a 64-bit hash of the word: no string allocation per lookup; collisions among
  // 10^5 words are vanishingly unlikely and would only blur one word's vector.
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
};

struct LoadedVectors {
  std::unique_ptr<WordVectors> vectors;  // null on error
  std::optional<VectorsError> error;
  std::string detail;
};

// Reads the "PPWV0001" file written by scripts/fetch-embeddings.sh.
[[nodiscard]] LoadedVectors load_word_vectors(const std::string& path);

// Default location: $PAINPOINT_DATA_HOME/glove-100d.bin, else $XDG_CACHE_HOME/painpoint/, else
// ~/.cache/painpoint/ (scripts/fetch-embeddings.sh writes the same path).
[[nodiscard]] std::string default_word_vectors_path();

}  // namespace painpoint::aggregator

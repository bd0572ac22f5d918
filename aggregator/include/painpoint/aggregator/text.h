#pragma once

// Text features of the aggregator: normalization, tokenization, stop words, Snowball stems.
//
// Tokenizer and Stemmer are not thread-safe (they reuse buffers so that the hot path does not
// allocate per event); use one per thread. Both are deterministic.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sb_stemmer;

namespace painpoint::aggregator {

// Words of one text, stored in one reusable arena.
class Tokens {
 public:
  [[nodiscard]] std::size_t size() const { return spans_.size(); }
  [[nodiscard]] std::string_view operator[](std::size_t i) const {
    return std::string_view(arena_).substr(spans_[i].first, spans_[i].second);
  }
  void clear() {
    arena_.clear();
    spans_.clear();
  }
  void push(std::string_view word) {
    spans_.emplace_back(static_cast<std::uint32_t>(arena_.size()),
                        static_cast<std::uint32_t>(word.size()));
    arena_.append(word);
  }

 private:
  std::string arena_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans_;
};

// Lowercases (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), splits into words, replaces
// numbers, e-mail addresses and URLs by the placeholders "_num_", "_email_", "_url_" (and keeps
// upstream placeholders such as "[email]" as "_email_"), expands "n't" to "not", drops English
// stop words (negations are kept: they often carry the complaint) and one-letter words.
class Tokenizer {
 public:
  void tokenize(std::string_view text, Tokens& out);

 private:
  std::string lowered_;
  std::string word_;
};

[[nodiscard]] bool is_stop_word(std::string_view word);

// Whether a code point belongs to a word (a letter or a digit), as the tokenizer decides it. Code
// that must find the tokenizer's words in the original bytes reads them with base::decode_utf8,
// the tokenizer's decoder.
[[nodiscard]] bool is_word_code_point(char32_t c);

// Snowball English stemmer (libstemmer). The returned view is valid until the next call.
class Stemmer {
 public:
  Stemmer();
  ~Stemmer();
  Stemmer(const Stemmer&) = delete;
  Stemmer& operator=(const Stemmer&) = delete;
  [[nodiscard]] std::string_view stem(std::string_view word);

 private:
  sb_stemmer* stemmer_;
};

// 64-bit FNV-1a; stable across platforms and releases (it names persisted state).
[[nodiscard]] constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace painpoint::aggregator

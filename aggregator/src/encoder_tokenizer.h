#pragma once

// The WordPiece tokenizer of all-MiniLM-L6-v2, as the HF tokenizers library runs it (BERT
// normalizer uncased, BERT pre-tokenizer, WordPiece with "##", [CLS] ... [SEP], truncation).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace painpoint::aggregator::encoder {

// Decodes UTF-8 like Python's bytes.decode(errors="replace"): each maximal ill-formed subpart
// becomes one U+FFFD (which the tokenizer drops).
void decode_utf8(std::string_view text, std::u32string& out);

class WordPiece {
 public:
  // `vocab[i]` is the token of id i; it must hold [CLS], [SEP] and [UNK] (see valid()).
  WordPiece(const std::vector<std::string_view>& vocab, std::size_t max_tokens);

  [[nodiscard]] bool valid() const { return cls_ >= 0 && sep_ >= 0 && unk_ >= 0; }
  [[nodiscard]] std::vector<std::int32_t> tokenize(std::string_view text) const;
  // Appends the ids of `text`'s words to `ids` ([CLS] and [SEP] not included) until it holds
  // at least `limit` ids; the word that reaches the limit is added whole. Texts split at ASCII
  // whitespace give, piece after piece, the ids of the whole text: every step before WordPiece
  // reads one code point at a time and such whitespace ends a word.
  void append_ids(std::string_view text, std::size_t limit, std::vector<std::int32_t>& ids) const;
  // The most ids tokenize() returns, [CLS] and [SEP] included.
  [[nodiscard]] std::size_t max_tokens() const { return max_tokens_; }

 private:
  // One slot of the open-addressed vocabulary table: a node-based map's cache misses were most of
  // the look-ups' cost (static token vectors tokenize every event).
  struct Slot {
    std::uint64_t hash = 0;
    std::int32_t id = -1;  // -1: empty
  };
  [[nodiscard]] std::int32_t find(std::string_view token) const;
  // Appends the ids of one pre-tokenized word (UTF-8, `chars` code points) to `ids`.
  void add_word(std::string_view word, std::size_t chars, std::vector<std::int32_t>& ids) const;

  std::vector<std::string> tokens_;  // by id
  std::vector<Slot> slots_;          // a power of two, at most half full
  std::uint64_t mask_ = 0;
  std::int32_t cls_ = -1;
  std::int32_t sep_ = -1;
  std::int32_t unk_ = -1;
  std::size_t max_tokens_;
};

}  // namespace painpoint::aggregator::encoder

#pragma once

// What the aggregator reads of an event's text before it looks at any product: the tokens, each
// token's hashed stem (its term) and word-vector row, and, with token vectors, the sum of the
// text's token vectors. A pure function of the text and the configuration, so it can be computed
// on another thread ahead of Aggregator::add() (AggregatorShards does) without changing a result.
//
// Thread safety: a TextAnalyzer is owned by one thread; AnalyzedText is plain data.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "painpoint/aggregator/config.h"
#include "painpoint/aggregator/text.h"

namespace painpoint::aggregator {

struct AnalyzedText {
  Tokens tokens;
  std::vector<std::uint32_t> buckets;  // per token: its stem's hash bucket (the term)
  std::vector<std::uint32_t> rows;     // per token: its GloVe row, WordVectors::kNoRow if none
  // Token vectors only: the sum of the text's token vectors (WordVectors::add_text_vector), and
  // whether the text had a token.
  std::vector<double> text_vector;
  bool has_text_vector = false;
};

class TextAnalyzer {
 public:
  // Reads the word vectors only in the static mode, as the Aggregator does.
  explicit TextAnalyzer(const ClusterConfig& config);
  ~TextAnalyzer();
  TextAnalyzer(const TextAnalyzer&) = delete;
  TextAnalyzer& operator=(const TextAnalyzer&) = delete;

  void analyze(std::string_view text, AnalyzedText& out);
  // The term of one token (as analyze() gives it in `buckets`).
  [[nodiscard]] std::uint32_t bucket_of(std::string_view token);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::aggregator

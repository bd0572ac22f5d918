#include "painpoint/aggregator/text_analysis.h"

#include <algorithm>

#include "flat_map.h"
#include "painpoint/aggregator/word_vectors.h"

namespace painpoint::aggregator {

struct TextAnalyzer::Impl {
  struct WordInfo {
    std::uint32_t bucket = 0;
    std::uint32_t row = WordVectors::kNoRow;
  };

  explicit Impl(const ClusterConfig& config)
      : mask((1u << std::clamp<std::uint32_t>(config.hash_bits, 8, 30)) - 1),
        vectors(config.encoder == EncoderMode::kStatic ? config.word_vectors : nullptr) {}

  WordInfo word_info(std::string_view word, std::uint64_t key) {
    if (const auto* hit = stem_cache.find(key)) return *hit;
    if (stem_cache.size() >= 200'000) stem_cache.clear();
    WordInfo info;
    info.bucket = static_cast<std::uint32_t>(fnv1a64(stemmer.stem(word))) & mask;
    if (vectors != nullptr && !vectors->whole_text()) info.row = vectors->find(word);
    *stem_cache.try_emplace(key).first = info;
    return info;
  }

  const std::uint32_t mask;
  const WordVectors* const vectors;
  Tokenizer tokenizer;
  Stemmer stemmer;
  // word -> hashed stem. Stemming dominates the analysis and the vocabulary is Zipfian;
  // cleared when full, which cannot change results (it only caches a pure function). The
  // word's vector row rides along: the vectors' own table is node-based, and a lookup there
  // costs cache misses that this (already needed) probe does not.
  FlatMap<std::uint64_t, WordInfo> stem_cache;  // keyed by a 64-bit hash of the word
  std::vector<std::uint64_t> word_keys;
  TokenIdCache token_ids;  // token vectors only
};

TextAnalyzer::TextAnalyzer(const ClusterConfig& config) : impl_(std::make_unique<Impl>(config)) {}

TextAnalyzer::~TextAnalyzer() = default;

std::uint32_t TextAnalyzer::bucket_of(std::string_view token) {
  return impl_->word_info(token, fnv1a64(token)).bucket;
}

void TextAnalyzer::analyze(std::string_view text, AnalyzedText& out) {
  Impl& a = *impl_;
  a.tokenizer.tokenize(text, out.tokens);
  // Each token costs a stem-cache look-up, a cache miss once the vocabulary outgrows the
  // caches: request every slot first so that the misses overlap.
  a.word_keys.clear();
  for (std::size_t i = 0; i < out.tokens.size(); ++i) {
    a.word_keys.push_back(fnv1a64(out.tokens[i]));
    a.stem_cache.prefetch(a.word_keys.back());
  }
  out.buckets.clear();
  out.rows.clear();
  for (std::size_t i = 0; i < out.tokens.size(); ++i) {
    const Impl::WordInfo info = a.word_info(out.tokens[i], a.word_keys[i]);
    out.buckets.push_back(info.bucket);
    out.rows.push_back(info.row);
  }
  out.has_text_vector = false;
  if (a.vectors != nullptr && a.vectors->whole_text()) {
    out.text_vector.assign(a.vectors->dims(), 0.0);
    out.has_text_vector = a.vectors->add_text_vector(text, out.text_vector, &a.token_ids);
  }
}

}  // namespace painpoint::aggregator

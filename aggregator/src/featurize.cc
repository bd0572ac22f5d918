// An event's features: sparse TF-IDF over hashed stems and the SIF-weighted average of its word
// vectors, centred on the product's running mean (aggregator/README.md, "Features").
#include <algorithm>
#include <cmath>
#include <utility>

#include "aggregator_impl.h"
#include "state_keys.h"

namespace painpoint::aggregator {
std::uint32_t Aggregator::Impl::bucket_of(std::string_view word) {
  return analyzer.bucket_of(word);
}

// An added event's features, from the analysis add() was given if any.
void Aggregator::Impl::featurize(Product& p, const std::string& text) {
  const AnalyzedText* given = std::exchange(event_analysis, nullptr);
  if (given == nullptr) {
    analyzer.analyze(text, own_analysis);
    given = &own_analysis;
  }
  featurize_as<true>(p, *given);
}

// Features of an event that the product already counted, under its current statistics and
// without counting it again: what a split subtracts. IDF and the dense centring have moved on
// since the event was added, so this approximates its original contribution (both are unit
// vectors, so the mass is right).
void Aggregator::Impl::refeaturize(Product& p, const std::string& text) {
  analyzer.analyze(text, own_analysis);
  featurize_as<false>(p, own_analysis);
}

// Leaves the event's features in `vec` (sorted by term, unit length) and `dense`. kCount: the
// event is new and is counted first (documents, tokens, document frequencies, first words, the
// dense mean), so that it is weighed with statistics that include it. Otherwise the product is
// only read: a term it never counted weighs as if seen once.
template <bool kCount>
void Aggregator::Impl::featurize_as(Product& p, const AnalyzedText& text) {
  const std::vector<std::uint32_t>& buckets = text.buckets;
  // Each term costs a DF-table look-up, a cache miss once the vocabulary outgrows the caches:
  // request every slot first so that the misses overlap.
  for (const std::uint32_t bucket : buckets) p.terms.prefetch(bucket);
  if constexpr (kCount) {
    ++p.doc_count;
    p.token_count += static_cast<std::int64_t>(text.tokens.size());
    p.dirty_meta = true;
  }
  // Term frequencies: sort a copy of (bucket, position) to count without a map.
  vec.clear();
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    vec.push_back(TermWeight{buckets[i], static_cast<float>(i)});
  }
  std::sort(vec.begin(), vec.end(), [](const TermWeight& a, const TermWeight& b) {
    return a.term != b.term ? a.term < b.term : a.w < b.w;
  });
  std::size_t out = 0;
  const double n = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
  for (std::size_t i = 0; i < vec.size();) {
    std::size_t j = i;
    while (j < vec.size() && vec[j].term == vec[i].term) ++j;
    const std::uint32_t term = vec[i].term;
    double df = 1.0;
    if constexpr (kCount) {
      Term& e = *p.terms.try_emplace(term).first;
      if (!e.counted) {
        e.counted = true;
        p.page_buckets[term >> kPageBits].push_back(term);
      }
      ++e.df;
      if (const auto word = text.tokens[static_cast<std::size_t>(vec[i].w)];
          e.word == Term::kNone && !word.empty()) {
        e.word = static_cast<std::uint32_t>(p.words.size());
        p.words.emplace_back(word);
      }
      p.mark_page(term >> kPageBits);
      df = static_cast<double>(e.df);
    } else {
      if (const Term* e = counted_term(p, term)) df = static_cast<double>(e->df);
    }
    const double tf = 1.0 + std::log(static_cast<double>(j - i));
    // Smoothed IDF (as scikit-learn's smooth_idf): the +1 keeps shared terms meaningful while
    // a product has seen only a handful of events.
    const double idf = std::log((n + 1.0) / (df + 1.0)) + 1.0;
    vec[out++] = TermWeight{term, static_cast<float>(tf * std::max(idf, 0.01))};
    i = j;
  }
  vec.resize(out);
  const double norm = std::sqrt(norm2_of(vec));
  if (norm > 0) {
    for (auto& tw : vec) tw.w = static_cast<float>(tw.w / norm);
  }
  featurize_dense<kCount>(p, text);
}

template <bool kCount>
void Aggregator::Impl::featurize_dense(Product& p, const AnalyzedText& text) {
  if (semantic()) {
    semantic_dense<kCount>(p);
    return;
  }
  const std::uint32_t d = dims();
  dense.clear();
  if (d == 0) return;
  dense_acc.assign(d, 0.0);
  bool any = false;
  if (cfg.word_vectors->whole_text()) {
    // Token vectors carry their weights (scripts/fetch-token-vectors.sh) and cover the whole
    // text, stop words and sub-words included, as the encoder they were distilled from reads it.
    if (text.has_text_vector && text.text_vector.size() == d) {
      std::copy(text.text_vector.begin(), text.text_vector.end(), dense_acc.begin());
      any = true;
    }
  } else {
    const double total = static_cast<double>(std::max<std::int64_t>(p.token_count, 1));
    for (std::size_t i = 0; i < text.rows.size(); ++i) {
      const std::uint32_t row = text.rows[i];
      const Term* e = counted_term(p, text.buckets[i]);
      if (row == WordVectors::kNoRow || e == nullptr) continue;
      const double prob = static_cast<double>(e->df) / total;
      const double weight = cfg.sif_a / (cfg.sif_a + prob);
      cfg.word_vectors->add_scaled(row, weight, dense_acc);
      any = true;
    }
  }
  dense.assign(d, 0.0f);
  if (!any) return;
  double norm = 0;
  for (double x : dense_acc) norm += x * x;
  norm = std::sqrt(norm);
  if (norm == 0) return;
  // Centre on the product's running mean: GloVe averages share a large common direction
  // that otherwise makes every pair of sentences look similar. A counted event is part of it.
  const double docs = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
  [[maybe_unused]] const double inv_docs = 1.0 / docs;
  double cnorm = 0;
  for (std::uint32_t k = 0; k < d; ++k) {
    const double unit = dense_acc[k] / norm;
    if constexpr (kCount) {
      p.dense_mean_sum[k] += unit;
      dense_acc[k] = unit - p.dense_mean_sum[k] * inv_docs;
    } else {
      dense_acc[k] = unit - p.dense_mean_sum[k] / docs;
    }
    cnorm += dense_acc[k] * dense_acc[k];
  }
  cnorm = std::sqrt(cnorm);
  if (cnorm == 0) return;
  for (std::uint32_t k = 0; k < d; ++k) dense[k] = static_cast<float>(dense_acc[k] / cnorm);
}

}  // namespace painpoint::aggregator

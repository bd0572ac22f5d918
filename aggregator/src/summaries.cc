// A pain point's published summary: keywords (c-TF-IDF), label, exemplars (medoid first),
// counts, daily window, trend and severity (aggregator/README.md, "Labels").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "aggregator_impl.h"
#include "painpoint/base/time.h"
#include "painpoint/aggregator/severity.h"

namespace painpoint::aggregator {
namespace {

// The exemplars by similarity to the current centroid, best first (ties: event id), so the
// medoid comes first. Scores are recomputed here without touching the persisted ones.
std::vector<const Exemplar*> ranked_exemplars(const Cluster& c) {
  const double cnorm = std::sqrt(c.norm2);
  std::vector<std::pair<double, const Exemplar*>> ranked;
  for (const auto& x : c.exemplars) {
    ranked.emplace_back(cnorm > 0 ? sparse_dot(x.terms, c.centroid) / cnorm : 0.0, &x);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second->event_id < b.second->event_id;
  });
  std::vector<const Exemplar*> ex;
  for (const auto& r : ranked) ex.push_back(r.second);
  return ex;
}

// c-TF-IDF: the cluster's term mass times ln(1 + N / df); document frequency stands in for the
// class frequency of BERTopic's formula, which keeps it incremental. Placeholders (_url_ ...)
// and terms without a recorded word are not keywords.
std::vector<TermWeight> keyword_terms(const Product& p, const Cluster& c, std::size_t k) {
  std::vector<TermWeight> scored;
  const double n = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
  for (const auto& tw : c.centroid) {
    const Term* e = counted_term(p, tw.term);
    if (e == nullptr || word_of(p, *e).empty() || word_of(p, *e).front() == '_') continue;
    const double score = static_cast<double>(tw.w) * std::log(1.0 + n / e->df);
    scored.push_back(TermWeight{tw.term, static_cast<float>(score)});
  }
  return top_terms(scored, k);
}

// Event, account and source counts, first/last seen, the daily window (ending on the day of
// last_seen), trend and severity.
void fill_counts(const Product& p, const Cluster& c, const ClusterConfig& cfg,
                 v1::PainPointSummary& s) {
  s.set_event_count(c.count);
  s.set_account_count(static_cast<std::int64_t>(c.accounts.size()));
  for (std::size_t src = 0; src < c.sources.size(); ++src) {
    if (c.sources[src] == 0) continue;
    auto* sc = s.add_source_counts();
    sc->set_source(static_cast<v1::Source>(src));
    sc->set_count(c.sources[src]);
  }
  s.set_arr_at_risk_cents(c.arr);
  *s.mutable_first_seen() = base::timestamp_of_micros(c.first_seen_us);
  *s.mutable_last_seen() = base::timestamp_of_micros(c.last_seen_us);
  // The window ends on the day of last_seen.
  const std::int64_t last_day = base::day_of(base::seconds_floor(c.last_seen_us));
  const auto w = static_cast<std::int64_t>(c.daily.size());
  for (std::int64_t i = 0; i < w; ++i) {
    const std::int64_t day = last_day - (w - 1 - i);
    const std::int64_t idx = w - 1 - (c.day_of_last - day);
    s.add_daily_counts(idx >= 0 && idx < w ? c.daily[static_cast<std::size_t>(idx)] : 0);
  }
  const double trend = trend_of(std::span<const std::int64_t>(
      s.daily_counts().data(), static_cast<std::size_t>(s.daily_counts_size())));
  s.set_trend(trend);
  SeverityInputs in;
  in.event_count = c.count;
  in.account_count = s.account_count();
  in.arr_at_risk_cents = c.arr;
  in.trend = trend;
  in.days_since_last_seen =
      static_cast<double>(p.latest - base::seconds_floor(c.last_seen_us)) / base::kSecondsPerDay;
  in.half_life_days = static_cast<double>(cfg.severity_half_life.count()) / 24.0;
  s.set_severity(severity(in));
}

}  // namespace

// Publishes the current state of `c` into `s`.
void Aggregator::Impl::fill_summary(const Product& p, Cluster& c, v1::PainPointSummary& s) {
  analyse_exemplars(c);
  std::vector<const Exemplar*> ex = ranked_exemplars(c);
  const std::vector<TermWeight> scored = keyword_terms(p, c, cfg.keywords);

  s.Clear();
  s.set_id(c.id);
  s.set_product_id(p.id);
  s.set_status(v1::STATUS_ACTIVE);
  s.set_version(c.version);
  for (const auto& tw : scored) s.add_keywords(std::string(word_of(p, *counted_term(p, tw.term))));
  std::size_t source = 0;
  std::string label = phrase_label(p, c, ex, scored, &source);
  if (label.empty()) label = automatic_label(p, ex.empty() ? nullptr : ex.front(), scored);
  // The label is read off an exemplar; the published ones show it, in the last place if it came
  // from a text ranked below them.
  if (cfg.exemplars > 0 && source >= cfg.exemplars && source < ex.size()) {
    std::rotate(ex.begin() + static_cast<std::ptrdiff_t>(cfg.exemplars - 1),
                ex.begin() + static_cast<std::ptrdiff_t>(source),
                ex.begin() + static_cast<std::ptrdiff_t>(source + 1));
  }
  s.set_label(std::move(label));
  if (const auto it = p.curation.labels.find(c.id); it != p.curation.labels.end()) {
    s.set_label(it->second);
  }
  for (std::size_t i = 0; i < ex.size() && i < cfg.exemplars; ++i) {
    auto* out = s.add_exemplars();
    out->set_event_id(ex[i]->event_id.data(), ex[i]->event_id.size());
    out->set_text(ex[i]->text.data(), ex[i]->text.size());
  }
  fill_counts(p, c, cfg, s);
}

// Label: a phrase of the exemplars close to the centroid (phrase_label.h), under the same term
// weights as featurize(); "" when no phrase qualifies.
std::string Aggregator::Impl::phrase_label(const Product& p, const Cluster& c,
                                           std::span<const Exemplar* const> ex,
                                           std::span<const TermWeight> keywords,
                                           std::size_t* source) {
  std::vector<PhraseText> texts;
  for (const Exemplar* x : ex) {
    texts.push_back(PhraseText{std::string_view(x->text.data(), x->text.size()), x->label_words,
                               x->label_terms});
  }
  std::vector<std::uint32_t> top;
  for (std::size_t k = 0; k < keywords.size() && k < 3; ++k) top.push_back(keywords[k].term);
  const double n = static_cast<double>(std::max<std::int64_t>(p.doc_count, 1));
  const double cnorm = std::sqrt(c.norm2);
  return phrase_labeler.label(texts, top, [&](std::uint32_t term) {
    PhraseTerm t{term, 0.0, 0.0};
    const Term* e = counted_term(p, term);
    const double df = e != nullptr ? static_cast<double>(e->df) : 1.0;
    t.idf = std::max(std::log((n + 1.0) / (df + 1.0)) + 1.0, 0.01);
    const auto it =
        std::lower_bound(c.centroid.begin(), c.centroid.end(), term,
                         [](const TermWeight& tw, std::uint32_t want) { return tw.term < want; });
    if (it != c.centroid.end() && it->term == term && cnorm > 0) t.centroid = it->w / cnorm;
    return t;
  }, source);
}

// Analyses the exemplars whose texts the labeler has not read yet (Exemplar::analysed).
void Aggregator::Impl::analyse_exemplars(Cluster& c) {
  for (Exemplar& x : c.exemplars) {
    if (x.analysed) continue;
    const PhraseText a = phrase_labeler.analyze(
        std::string_view(x.text.data(), x.text.size()),
        [&](std::string_view token) { return bucket_of(token); });
    x.label_words.assign(a.words.begin(), a.words.end());
    x.label_terms.assign(a.terms.begin(), a.terms.end());
    x.analysed = true;
  }
}

// Fallback label: the top three keywords in the order the medoid uses them (keywords it lacks last, in
// keyword order).
std::string Aggregator::Impl::automatic_label(const Product& p, const Exemplar* medoid,
                                              std::span<const TermWeight> keywords) {
  std::vector<std::pair<std::size_t, std::string>> words;
  if (medoid != nullptr) {
    tokenizer.tokenize(medoid->text, tokens);
  } else {
    tokens.clear();
  }
  for (std::size_t k = 0; k < keywords.size() && k < 3; ++k) {
    std::size_t pos = SIZE_MAX - 3 + k;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (bucket_of(tokens[i]) == keywords[k].term) {
        pos = i;
        break;
      }
    }
    words.emplace_back(pos, word_of(p, *counted_term(p, keywords[k].term)));
  }
  std::sort(words.begin(), words.end());
  std::string label;
  for (const auto& w : words) {
    if (!label.empty()) label += ' ';
    label += w.second;
  }
  return label;
}

}  // namespace painpoint::aggregator

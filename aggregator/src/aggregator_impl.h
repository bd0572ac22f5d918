// Aggregator::Impl, shared by the files that implement it:
//   aggregator.cc   the hot path: add(), retrieval, hot-record bounds, index and cluster updates
//   featurize.cc    an event's features (sparse TF-IDF and dense SIF average)
//   semantic.cc     semantic mode: assignment and merge candidates by sentence vectors
//   maintenance.cc  near-duplicate merges and expiry of candidates
//   moves.cc        semantic mode: member samples and the members' moves at maintenance
//   summaries.cc    labels, keywords and exemplars of a PainPointSummary
//   persistence.cc  take_changes(), lazy loading, eviction, resolve()
//   curation.cc     merge/rename/split by humans, succession of a rebuilt product
// The model types are in model.h, the records' encoding in state_codec.h, keys in state_keys.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flat_map.h"
#include "model.h"
#include "phrase_label.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/text.h"
#include "painpoint/aggregator/text_analysis.h"
#include "painpoint/aggregator/word_vectors.h"

namespace painpoint::aggregator {

// A sampled member leaving cluster `from` (its index in the sample) for cluster `to`, by seq.
struct Move {
  std::uint32_t from = 0;
  std::uint32_t member = 0;
  std::uint32_t to = 0;
};

// Leaves the "grew since the last maintenance" mark as load() would derive it from
// last_event_doc, so that a restart right after a curation or a move continues exactly.
void settle_touched(Product& p, const Cluster& c);

struct Aggregator::Impl {
  ClusterConfig cfg;
  const StateReader* reader;
  std::map<std::string, std::unique_ptr<Product>, std::less<>> products;
  std::unordered_map<std::string, std::string> merged;  // id -> merged_into (not yet evicted)
  std::vector<StateWrite> pending_writes;               // merged records
  std::vector<v1::PainPointSummary> pending_summaries;  // final records of merged pain points
  std::vector<Membership> memberships;
  // memberships[i] by the hash of its event id, for memberships[0, membership_indexed): a move
  // rewrites the event's pending membership instead of adding a second one (moves.cc).
  std::unordered_map<std::uint64_t, std::size_t> membership_at;
  std::size_t membership_indexed = 0;
  std::uint64_t generation = 0;
  // The first stored state record that could not be decoded (see Aggregator::state_error()).
  std::optional<std::string> state_error;
  void corrupt_state(std::string_view key, std::string_view record);

  // Scratch buffers reused by every event (no per-event heap churn once warm).
  Tokenizer tokenizer;
  Tokens tokens;
  std::vector<TermWeight> vec;
  std::vector<TermWeight> merged_scratch;
  std::vector<TermWeight> truncate_scratch;
  std::vector<float> dense;
  std::vector<double> dense_acc;
  std::vector<float> acc;
  std::vector<std::uint32_t> touched;
  std::vector<std::uint32_t> top_seqs;
  std::vector<float> top_scores;  // acc of top_seqs while retrieve() selects them
  // The candidate with the best approximate score in the last retrieve() (UINT32_MAX: none):
  // usually the one an event joins, so its data is requested before anything else.
  std::uint32_t retrieved_best = UINT32_MAX;
  std::vector<TermWeight> query_scratch;
  std::vector<std::span<const Posting>> heads;
  std::vector<TermWeight> index_scratch;
  std::vector<TermWeight> hot_scratch;
  std::vector<std::uint32_t> positions;
  bool centroid_truncated = false;  // set by add_to_centroid when it dropped terms
  struct Bounded {
    double bound;
    std::uint32_t seq;
  };
  std::vector<Bounded> bounded;
  std::string key_scratch;
  std::vector<std::uint32_t> token_df;
  // Tokens, terms and word-vector rows of the texts featurized here (TextAnalyzer).
  TextAnalyzer analyzer;
  AnalyzedText own_analysis;
  // The analysis add() was given for the current event, if any (AggregatorShards makes them
  // ahead on another thread); featurize() takes it once.
  const AnalyzedText* event_analysis = nullptr;
  PhraseLabeler phrase_labeler;

  // size_bonus * ln(n) for n = 0 .. min(size_bonus_cap, 4096): the joining score needs it for
  // every candidate scored, and the logarithm was a visible part of that.
  std::vector<double> size_bonus_by_count;

  Impl(ClusterConfig c, const StateReader* r) : cfg(c), reader(r), analyzer(c) {
    // The sentence vectors replace the word vectors' average; looking words up would be waste.
    if (cfg.encoder != EncoderMode::kStatic) cfg.word_vectors = nullptr;
    const std::uint32_t tabulated = std::min<std::uint32_t>(cfg.size_bonus_cap, 4096);
    size_bonus_by_count.resize(static_cast<std::size_t>(tabulated) + 1);
    for (std::uint32_t n = 0; n <= tabulated; ++n) {
      size_bonus_by_count[n] = cfg.size_bonus * std::log(static_cast<double>(n));
    }
  }

  // The size bonus of a cluster of `count` events (the same value as computing it).
  [[nodiscard]] double size_bonus_of(std::int64_t count) const {
    const std::int64_t n = std::min<std::int64_t>(count, cfg.size_bonus_cap);
    if (n >= 0 && static_cast<std::size_t>(n) < size_bonus_by_count.size()) {
      return size_bonus_by_count[static_cast<std::size_t>(n)];
    }
    return cfg.size_bonus * std::log(static_cast<double>(n));
  }

  [[nodiscard]] bool semantic() const { return cfg.encoder == EncoderMode::kSemantic; }

  [[nodiscard]] std::uint32_t dims() const {
    if (semantic()) return cfg.embedding_dims;
    return cfg.word_vectors != nullptr ? cfg.word_vectors->dims() : 0;
  }

  // The vector add() was given for the current event (semantic mode).
  std::span<const float> event_embedding;

  // Members are grouped by the file that defines them. Those declared inline are defined in, and
  // called only from, that file: the hot path's are inlined into add() and absorb_event().

  // ---------------------------------------------------------------- aggregator.cc
  Product& product(const std::string& id);
  std::string add(const v1::FeedbackEvent& e);
  std::string add_event(const v1::FeedbackEvent& e, std::span<const float> embedding);
  std::string place_event(Product& p, const v1::FeedbackEvent& e, Cluster* best, double score);
  void retrieve(Product& p, std::span<const TermWeight> query, std::uint32_t exclude);
  inline void prefetch_hot(const Product& p) const;
  inline void prefetch_cluster(const Product& p, std::uint32_t seq) const;
  [[nodiscard]] inline std::optional<double> similarity_to(const Cluster& c,
                                                           std::span<const TermWeight> v,
                                                           std::span<const float> dv,
                                                           double floor) const;
  inline Hot& hot_of(Product& p, std::uint32_t seq);
  void refresh_hot(Product& p, const Cluster& c);
  inline void update_hot(Product& p, const Cluster& c, std::span<const TermWeight> v);
  inline void finish_hot(Hot& h, const Cluster& c) const;
  [[nodiscard]] inline double upper_bound(const Product& p, std::uint32_t seq) const;
  [[nodiscard]] double merge_bound(const Product& p, const Cluster& c, std::uint32_t seq) const;
  void unindex(Product& p, Cluster& c);
  void insert_postings(Product& p, const Cluster& c);
  void reindex(Product& p, Cluster& c);
  void add_to_centroid(Cluster& c, std::span<const TermWeight> v);
  inline bool add_in_place(Cluster& c, std::span<const TermWeight> v);
  void add_dense(Cluster& c, std::span<const float> dv);
  void add_day(Cluster& c, std::int64_t day, std::int64_t n);
  void add_account(Cluster& c, std::uint64_t hash, std::int64_t arr);
  inline void offer_exemplar(Cluster& c, const v1::FeedbackEvent& e, double score);
  static void rescore_exemplars(Cluster& c);
  inline Cluster& open_cluster(Product& p, const v1::FeedbackEvent& e);
  void absorb_event(Product& p, Cluster& c, const v1::FeedbackEvent& e, double score);

  // ---------------------------------------------------------------- featurize.cc
  std::uint32_t bucket_of(std::string_view word);
  void featurize(Product& p, const std::string& text);
  void refeaturize(Product& p, const std::string& text);
  template <bool kCount>
  void featurize_as(Product& p, const AnalyzedText& text);
  template <bool kCount>
  void featurize_dense(Product& p, const AnalyzedText& text);

  // ---------------------------------------------------------------- semantic.cc
  std::string add_semantic(const v1::FeedbackEvent& e);
  [[nodiscard]] double background_similarity(const Product& p) const;
  // b + unit * (1 - b): every semantic decision sets its bar in units of the way from the
  // product's background similarity b to identity.
  [[nodiscard]] static double semantic_bar(double b, double unit) { return b + unit * (1.0 - b); }
  [[nodiscard]] double semantic_merge_bar(double b, double within_a, double within_b) const;
  [[nodiscard]] Cluster* semantic_merge_target(Product& p, const Cluster& c);
  template <bool kCount>
  void semantic_dense(Product& p);

  // ---------------------------------------------------------------- maintenance.cc
  void maintain(Product& p);
  inline void merge_near_duplicates(Product& p);
  [[nodiscard]] Cluster* sparse_merge_target(Product& p, const Cluster& c);
  [[nodiscard]] bool dense_apart(const Cluster& a, const Cluster& b) const;
  inline void retire_expired_candidates(Product& p);
  [[nodiscard]] inline double cluster_similarity(const Cluster& a, const Cluster& b) const;
  void merge(Product& p, Cluster& into, Cluster& from);

  // ---------------------------------------------------------------- moves.cc
  void offer_member(Cluster& c, const v1::FeedbackEvent& e);
  void insert_member(Cluster& c, Member m) const;
  void move_members(Product& p);
  void apply_moves(Product& p, std::span<const Move> moves);
  void move_one(Product& p, Cluster& from, Cluster& to, Member m, std::vector<float>& v);
  void finish_source(Product& p, Cluster& c, std::span<const Move> moves,
                     std::span<const std::string> moved_ids);
  void record_move(const Product& p, const std::string& event_id, const std::string& id);

  // ---------------------------------------------------------------- split.cc
  void split_broad(Product& p, Cluster& c);

  // ---------------------------------------------------------------- summaries.cc
  void fill_summary(const Product& p, Cluster& c, v1::PainPointSummary& s);
  void analyse_exemplars(Cluster& c);
  std::string phrase_label(const Product& p, const Cluster& c, std::span<const Exemplar* const> ex,
                           std::span<const TermWeight> keywords, std::size_t* source);
  inline std::string automatic_label(const Product& p, const Exemplar* medoid,
                                     std::span<const TermWeight> keywords);

  // ---------------------------------------------------------------- persistence.cc
  void load(Product& p);
  void flush(Product& p, Changes& out, StateOutput state);
  Changes take_changes(const Aggregator::ProductFilter& save_state);
  void load_curation(Product& p);
  static void flush_curation(Product& p, Changes& out);

  // ---------------------------------------------------------------- curation.cc
  CurationOutcome curate_merge(std::string_view product_id, std::string_view from_id,
                               std::string_view into_id);
  CurationOutcome curate_rename(std::string_view product_id, std::string_view id,
                                std::string_view label);
  void subtract_features(Cluster& c);
  static void remove_event_stats(Cluster& c, std::int32_t source, std::int64_t seconds);
  // A new, empty cluster of `p` for events split off another (by a human or by maintenance).
  static Cluster& open_split_cluster(Product& p, std::int64_t first_seen_us);
  CurationOutcome curate_split(std::string_view product_id, std::string_view id,
                               std::span<const v1::FeedbackEvent> events,
                               std::span<const float> embeddings);
  CurationOutcome succeed(std::string_view product_id, const StateReader* previous,
                          const Succession& s);
  inline std::unordered_map<std::string, std::string> rename_clusters(
      Product& p, const std::map<std::string, const Succession::Rename*, std::less<>>& by_from);
  inline void redirect_merge_records(Product& p, const Succession& s,
                                     const std::set<std::string, std::less<>>& live,
                                     const std::unordered_map<std::string, std::string>& renamed);
};

}  // namespace painpoint::aggregator

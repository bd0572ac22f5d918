#pragma once

// Tunables of the online clustering. The defaults are what we ship and what the quality and
// speed figures in aggregator/README.md were measured with.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace painpoint::aggregator {

class WordVectors;

// Where an event's dense vector comes from (config key `encoder`).
enum class EncoderMode {
  kSemantic,  // a sentence encoder's vector, computed by the caller and passed to add()
  kStatic,    // SIF-weighted average of static word vectors (word_vectors), blended with TF-IDF
  kSparse,    // none: TF-IDF only
};

struct ClusterConfig {
  // --- mode -----------------------------------------------------------------------------
  EncoderMode encoder = EncoderMode::kSemantic;
  // Dimension of the vectors add() receives in semantic mode: the caller sets it from its encoder
  // (SentenceEncoder::kDims), so it is not a configuration key.
  std::uint32_t embedding_dims = 384;
  // Semantic decisions are taken in units of the product's own background similarity b (the
  // mean cosine of two of its events that are not in one pain point), so that one setting fits
  // products whose texts are all alike and products whose texts are not: an event joins the
  // cluster whose members it resembles most on average when that mean cosine reaches
  // b + semantic_join * (1 - b); two pain points merge when the mean cosine between their
  // members reaches b + semantic_merge * (1 - b).
  double semantic_join = 0.25;
  double semantic_merge = 0.45;
  // A pain point whose members' mean cosine to each other, above b, reaches this fraction of
  // (1 - b) repeats one phrasing (the same sentence with a few words around it). It is judged as
  // that one sentence would be: it merges where its events could have joined, at semantic_join
  // instead of semantic_merge. 1: never.
  double semantic_repeat = 0.75;
  // A young cluster's mean cosine is shrunk towards b as if it had this many more members at
  // background similarity: one lucky pair is weaker evidence than a consistent group.
  double semantic_prior = 1.0;
  // At maintenance a pain point whose sampled members fall into two groups splits (the larger
  // group keeps the id) when the groups' mean cosine to each other, above b, is below this
  // times the looser group's mean cosine within itself, above b, and the merge rule would not
  // join them again; 0: no automatic splits (aggregator/README.md, "Automatic split").
  double semantic_split = 0.8;
  // Each group of an automatic split holds at least this many sampled members: two groups of a
  // small sample are too often found by chance.
  std::uint32_t semantic_split_min = 25;
  // At maintenance every member in a cluster's sample moves to the cluster whose vector sum it
  // is nearest to by cosine (one k-means step seeded by the online clusters). The sample holds
  // the members with the smallest event-id hashes, at most this many per cluster; 0: no moves.
  std::uint32_t sample_members = 256;
  // Sampled members weighed per maintenance at most (whole clusters, from where the last run
  // stopped, in sequence order): the step's cost is this times the live pain points, not the
  // product's whole sample; a large product is covered over several runs.
  std::uint32_t move_budget = 4096;
  // --- features -------------------------------------------------------------------------
  // Terms (stems) are hashed into 2^hash_bits buckets per product; the online IDF is kept per
  // bucket, so memory per product is bounded by the vocabulary actually seen.
  std::uint32_t hash_bits = 20;
  // Dense sentence vectors (SIF-weighted average of word vectors, centred on the product's
  // running mean). Null: sparse TF-IDF only. Not owned; must outlive the Aggregator.
  const WordVectors* word_vectors = nullptr;
  // SIF smoothing `a` in a / (a + p(word)).
  double sif_a = 0.1;
  // Weight of the sparse cosine in the blended similarity; the dense cosine gets 1 - this.
  // Used only when word_vectors is set.
  double sparse_weight = 0.75;

  // --- assignment -----------------------------------------------------------------------
  // An event joins the best cluster when  similarity + size_bonus * ln(cluster size)  reaches
  // join_threshold; otherwise it opens a new candidate. The size bonus is a rich-get-richer
  // prior (as in Chinese-restaurant / DP-means): fewer, fuller pain points and less dependence
  // on which paraphrase happened to arrive first.
  double join_threshold = 0.42;
  double size_bonus = 0.07;
  // Cluster size beyond which the bonus stops growing, so that a few broad pain points do not
  // swallow their neighbours.
  std::uint32_t size_bonus_cap = 100;
  // The similarity is multiplied by cohesion^cohesion_exponent, where cohesion = |sum of the
  // members' unit vectors| / n (1 for identical members, lower for broad clusters). Broad
  // clusters attract less, which keeps neighbouring pain points apart.
  double cohesion_exponent = 0.5;
  // Candidate retrieval: the event's `query_terms` heaviest terms look up at most
  // `posting_scan` clusters each in the inverted index; the best `rerank` by the approximate
  // score are scored exactly. Bounds the per-event cost regardless of the number of clusters.
  std::uint32_t query_terms = 8;
  std::uint32_t posting_scan = 32;
  std::uint32_t rerank = 8;
  // Terms of a centroid that go into the inverted index, and terms a centroid keeps at most.
  std::uint32_t indexed_terms = 12;
  // ...and only those with at least this weight in the normalized centroid.
  double min_indexed_weight = 0.1;
  std::uint32_t centroid_terms = 96;

  // --- life cycle -----------------------------------------------------------------------
  // A candidate becomes a pain point (and is published) once it has this many events.
  std::uint32_t min_support = 3;
  // A candidate that has not grown during this many events of its product is dropped (its
  // events keep the candidate id as their membership).
  std::uint32_t candidate_ttl_events = 50'000;
  // Near-duplicate pain points are merged (the younger into the older) every
  // `maintenance_interval` events of a product when their similarity reaches merge_threshold.
  std::uint32_t maintenance_interval = 500;
  double merge_threshold = 0.55;
  // Static mode with word or token vectors: two pain points that reach merge_threshold still do
  // not merge when their members' mean cosine to each other (dense part) is below this times the
  // looser one's mean cosine within itself: the merge would mix two groups. 0: no such check.
  double static_merge_ratio = 0;

  // --- summaries ------------------------------------------------------------------------
  std::uint32_t daily_window_days = 28;
  std::uint32_t exemplars = 3;
  std::uint32_t keywords = 5;
  // Distinct accounts are counted exactly up to this many per pain point; beyond it
  // account_count and arr_at_risk_cents stop growing (documented lower bounds).
  std::uint32_t max_accounts = 512;
  // Severity halves for every `severity_half_life` without new events (product time).
  std::chrono::hours severity_half_life{24 * 14};
};

enum class ConfigError { kUnknownKey, kBadValue };

// "semantic" | "static" | "sparse" (nullopt for anything else), and back.
[[nodiscard]] std::optional<EncoderMode> encoder_mode_of(std::string_view name);
[[nodiscard]] std::string_view encoder_mode_name(EncoderMode mode);

// Sets one field by its name in this struct ("join_threshold", "min_support", ...; the half life
// is "severity_half_life_hours"). Used by config files and the cluster command's overrides. On
// an error `config` is left as it was.
[[nodiscard]] std::optional<ConfigError> apply_config_override(ClusterConfig& config,
                                                               std::string_view key,
                                                               std::string_view value);

struct ConfigKey {
  std::string name;  // as accepted by apply_config_override
  std::string help;  // one line, with the unit
};

// Every key apply_config_override accepts, in declaration order (config files, `painpoint config`).
[[nodiscard]] const std::vector<ConfigKey>& config_keys();

// The current value of `key` as text that apply_config_override accepts; nullopt for an unknown
// key.
[[nodiscard]] std::optional<std::string> config_value(const ClusterConfig& config,
                                                      std::string_view key);

}  // namespace painpoint::aggregator

#include "painpoint/aggregator/config.h"

#include <charconv>
#include <string>
#include <type_traits>

namespace painpoint::aggregator {
namespace {

bool parse(std::string_view v, double& out) {
  try {
    std::size_t used = 0;
    const double d = std::stod(std::string(v), &used);
    if (used != v.size()) return false;
    out = d;
    return true;
  } catch (...) {
    return false;
  }
}

bool parse(std::string_view v, std::uint32_t& out) {
  std::uint32_t x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return false;
  out = x;
  return true;
}

}  // namespace

std::optional<EncoderMode> encoder_mode_of(std::string_view name) {
  if (name == "semantic") return EncoderMode::kSemantic;
  if (name == "static") return EncoderMode::kStatic;
  if (name == "sparse") return EncoderMode::kSparse;
  return std::nullopt;
}

std::string_view encoder_mode_name(EncoderMode mode) {
  switch (mode) {
    case EncoderMode::kSemantic:
      return "semantic";
    case EncoderMode::kStatic:
      return "static";
    case EncoderMode::kSparse:
      return "sparse";
  }
  return "static";
}

namespace {

std::optional<ConfigError> apply_key(ClusterConfig& c, std::string_view key,
                                     std::string_view value) {
  bool ok = false;
  if (key == "encoder") {
    const auto mode = encoder_mode_of(value);
    if (!mode) return ConfigError::kBadValue;
    c.encoder = *mode;
    return std::nullopt;
  }
  if (key == "semantic_join")
    ok = parse(value, c.semantic_join);
  else if (key == "semantic_merge")
    ok = parse(value, c.semantic_merge);
  else if (key == "semantic_repeat")
    ok = parse(value, c.semantic_repeat);
  else if (key == "semantic_prior")
    ok = parse(value, c.semantic_prior);
  else if (key == "semantic_split")
    ok = parse(value, c.semantic_split);
  else if (key == "semantic_split_min")
    ok = parse(value, c.semantic_split_min);
  else if (key == "static_merge_ratio")
    ok = parse(value, c.static_merge_ratio);
  else if (key == "sample_members")
    ok = parse(value, c.sample_members);
  else if (key == "move_budget")
    ok = parse(value, c.move_budget);
  else if (key == "hash_bits")
    ok = parse(value, c.hash_bits);
  else if (key == "sif_a")
    ok = parse(value, c.sif_a);
  else if (key == "sparse_weight")
    ok = parse(value, c.sparse_weight);
  else if (key == "join_threshold")
    ok = parse(value, c.join_threshold);
  else if (key == "size_bonus")
    ok = parse(value, c.size_bonus);
  else if (key == "cohesion_exponent")
    ok = parse(value, c.cohesion_exponent);
  else if (key == "size_bonus_cap")
    ok = parse(value, c.size_bonus_cap);
  else if (key == "query_terms")
    ok = parse(value, c.query_terms);
  else if (key == "posting_scan")
    ok = parse(value, c.posting_scan);
  else if (key == "rerank")
    ok = parse(value, c.rerank);
  else if (key == "min_indexed_weight")
    ok = parse(value, c.min_indexed_weight);
  else if (key == "indexed_terms")
    ok = parse(value, c.indexed_terms);
  else if (key == "centroid_terms")
    ok = parse(value, c.centroid_terms);
  else if (key == "min_support")
    ok = parse(value, c.min_support);
  else if (key == "candidate_ttl_events")
    ok = parse(value, c.candidate_ttl_events);
  else if (key == "maintenance_interval")
    ok = parse(value, c.maintenance_interval);
  else if (key == "merge_threshold")
    ok = parse(value, c.merge_threshold);
  else if (key == "daily_window_days")
    ok = parse(value, c.daily_window_days);
  else if (key == "exemplars")
    ok = parse(value, c.exemplars);
  else if (key == "keywords")
    ok = parse(value, c.keywords);
  else if (key == "max_accounts")
    ok = parse(value, c.max_accounts);
  else if (key == "severity_half_life_hours") {
    std::uint32_t h = 0;
    ok = parse(value, h);
    if (ok) c.severity_half_life = std::chrono::hours(h);
  } else {
    return ConfigError::kUnknownKey;
  }
  if (!ok) return ConfigError::kBadValue;
  // Keep values in ranges the algorithm relies on.
  if (c.hash_bits < 8 || c.hash_bits > 30 || c.daily_window_days < 14 || c.query_terms == 0 ||
      c.rerank == 0 || c.indexed_terms == 0 || c.centroid_terms == 0 || c.min_support == 0 ||
      c.maintenance_interval == 0 || c.semantic_prior < 0) {
    return ConfigError::kBadValue;
  }
  return std::nullopt;
}

}  // namespace

// A refused value leaves `c` as it was.
std::optional<ConfigError> apply_config_override(ClusterConfig& c, std::string_view key,
                                                 std::string_view value) {
  ClusterConfig next = c;
  const auto error = apply_key(next, key, value);
  if (!error) c = next;
  return error;
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = {
      {"encoder",
       "semantic (sentence encoder; best pain points, ~1 ms per event) | static (word vectors "
       "blended with TF-IDF; fast) | sparse (TF-IDF only; needs no model files)"},
      {"semantic_join",
       "semantic: join when the mean cosine to a cluster's members reaches b + this * (1 - b), "
       "b = the mean cosine of two of the product's events in different pain points"},
      {"semantic_merge",
       "semantic: merge pain points when the mean cosine between their members reaches "
       "b + this * (1 - b)"},
      {"semantic_repeat",
       "semantic: a pain point whose members' mean cosine to each other reaches b + this * "
       "(1 - b) repeats one phrasing and merges at semantic_join; 1: never"},
      {"semantic_prior", "semantic: members at background similarity assumed in every cluster"},
      {"semantic_split",
       "semantic: a pain point whose sampled members form two groups splits when their mean "
       "cosine to each other, above b, is below this times the looser group's own; 0: never"},
      {"semantic_split_min", "semantic: sampled members each group of an automatic split holds"},
      {"static_merge_ratio",
       "static: no merge of pain points whose members' mean cosine to each other is below this "
       "times the looser one's own; 0: no check"},
      {"sample_members",
       "semantic: members kept per cluster (smallest event-id hashes) that move to their nearest "
       "cluster at maintenance; 0: no moves"},
      {"move_budget",
       "semantic: sampled members weighed per maintenance at most (the rest at the next ones)"},
      {"hash_bits", "terms are hashed into 2^hash_bits buckets per product"},
      {"sif_a", "SIF smoothing a in a / (a + p(word)) for dense sentence vectors"},
      {"sparse_weight", "weight of the sparse TF-IDF cosine in the blended similarity (0..1)"},
      {"join_threshold", "similarity (plus size bonus) an event needs to join a cluster"},
      {"size_bonus", "rich-get-richer prior: bonus per ln(cluster size)"},
      {"size_bonus_cap", "cluster size beyond which the size bonus stops growing"},
      {"cohesion_exponent", "broad clusters attract less: similarity times cohesion^exponent"},
      {"query_terms", "heaviest terms of an event used for candidate retrieval"},
      {"posting_scan", "clusters looked up per query term in the inverted index"},
      {"rerank", "candidates scored exactly per event"},
      {"indexed_terms", "terms of a centroid in the inverted index"},
      {"min_indexed_weight", "weight a centroid term needs to go into the inverted index"},
      {"centroid_terms", "terms a centroid keeps at most"},
      {"min_support", "events a candidate needs to become a pain point"},
      {"candidate_ttl_events",
       "events of a product after which a candidate that did not grow is "
       "dropped"},
      {"maintenance_interval", "events of a product between merge passes"},
      {"merge_threshold", "similarity at which two pain points are merged (younger into older)"},
      {"daily_window_days", "days of daily counts kept per pain point"},
      {"exemplars", "exemplar events per pain point (medoid first)"},
      {"keywords", "keywords per pain point label"},
      {"max_accounts", "distinct accounts counted exactly per pain point"},
      {"severity_half_life_hours", "severity halves after this many hours without new events"},
  };
  return keys;
}

std::optional<std::string> config_value(const ClusterConfig& c, std::string_view key) {
  auto num = [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) {
      char buffer[32];
      const auto r = std::to_chars(buffer, buffer + sizeof buffer, v);
      return std::string(buffer, r.ptr);
    } else {
      return std::to_string(v);
    }
  };
  if (key == "encoder") return std::string(encoder_mode_name(c.encoder));
  if (key == "semantic_join") return num(c.semantic_join);
  if (key == "semantic_merge") return num(c.semantic_merge);
  if (key == "semantic_repeat") return num(c.semantic_repeat);
  if (key == "semantic_prior") return num(c.semantic_prior);
  if (key == "semantic_split") return num(c.semantic_split);
  if (key == "semantic_split_min") return num(c.semantic_split_min);
  if (key == "static_merge_ratio") return num(c.static_merge_ratio);
  if (key == "sample_members") return num(c.sample_members);
  if (key == "move_budget") return num(c.move_budget);
  if (key == "hash_bits") return num(c.hash_bits);
  if (key == "sif_a") return num(c.sif_a);
  if (key == "sparse_weight") return num(c.sparse_weight);
  if (key == "join_threshold") return num(c.join_threshold);
  if (key == "size_bonus") return num(c.size_bonus);
  if (key == "size_bonus_cap") return num(c.size_bonus_cap);
  if (key == "cohesion_exponent") return num(c.cohesion_exponent);
  if (key == "query_terms") return num(c.query_terms);
  if (key == "posting_scan") return num(c.posting_scan);
  if (key == "rerank") return num(c.rerank);
  if (key == "indexed_terms") return num(c.indexed_terms);
  if (key == "min_indexed_weight") return num(c.min_indexed_weight);
  if (key == "centroid_terms") return num(c.centroid_terms);
  if (key == "min_support") return num(c.min_support);
  if (key == "candidate_ttl_events") return num(c.candidate_ttl_events);
  if (key == "maintenance_interval") return num(c.maintenance_interval);
  if (key == "merge_threshold") return num(c.merge_threshold);
  if (key == "daily_window_days") return num(c.daily_window_days);
  if (key == "exemplars") return num(c.exemplars);
  if (key == "keywords") return num(c.keywords);
  if (key == "max_accounts") return num(c.max_accounts);
  if (key == "severity_half_life_hours") return num(c.severity_half_life.count());
  return std::nullopt;
}

}  // namespace painpoint::aggregator

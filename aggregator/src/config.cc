#include "painpoint/aggregator/config.h"

#include <charconv>
#include <string>

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

std::optional<ConfigError> apply_config_override(ClusterConfig& c, std::string_view key,
                                                 std::string_view value) {
  bool ok = false;
  if (key == "hash_bits")
    ok = parse(value, c.hash_bits);
  else if (key == "sif_a")
    ok = parse(value, c.sif_a);
  else if (key == "sparse_weight")
    ok = parse(value, c.sparse_weight);
  else if (key == "join_threshold")
    ok = parse(value, c.join_threshold);
  else if (key == "size_bonus")
    ok = parse(value, c.size_bonus);
  else if (key == "query_terms")
    ok = parse(value, c.query_terms);
  else if (key == "posting_scan")
    ok = parse(value, c.posting_scan);
  else if (key == "rerank")
    ok = parse(value, c.rerank);
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
      c.maintenance_interval == 0) {
    return ConfigError::kBadValue;
  }
  return std::nullopt;
}

}  // namespace painpoint::aggregator

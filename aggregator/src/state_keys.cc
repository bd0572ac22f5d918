#include "state_keys.h"

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/alerts.h"
#include "painpoint/aggregator/state_key_owner.h"
#include "painpoint/base/hex.h"

namespace painpoint::aggregator {
namespace {

// Every product's state keys start with kProductStatePrefix + product id + '/'; a merged pain
// point's redirect is kMergedPrefix + its id.
constexpr std::string_view kProductStatePrefix = "agg/";
constexpr std::string_view kMergedPrefix = "agg-merged/";

using base::hex_u32;

}  // namespace

std::string product_prefix(std::string_view product) {
  std::string prefix(kProductStatePrefix);
  prefix += product;
  prefix += '/';
  return prefix;
}
std::string meta_key(std::string_view product) { return product_prefix(product) + "m"; }
std::string page_key(std::string_view product, std::uint32_t page) {
  return product_prefix(product) + "d/" + hex_u32(page);
}
std::string cluster_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "c/" + hex_u32(seq);
}
std::string cold_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "x/" + hex_u32(seq);
}
std::string sample_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "s/" + hex_u32(seq);
}
std::string merged_key(std::string_view id) { return std::string(kMergedPrefix) + std::string(id); }
std::string curation_key(std::string_view product) { return product_prefix(product) + "k"; }

std::string product_state_prefix(std::string_view product_id) { return product_prefix(product_id); }

std::optional<StateKeyOwner> state_key_owner(std::string_view key) {
  constexpr std::string_view kProduct = kProductStatePrefix;
  constexpr std::string_view kMerged = kMergedPrefix;
  constexpr std::string_view kEpisode = AlertEpisodes::kEpisodeStatePrefix;
  if (key.starts_with(kProduct)) {
    // Product ids have no '/' (ingest's validation), so the first one ends it.
    const std::string_view rest = key.substr(kProduct.size());
    const std::size_t end = rest.find('/');
    if (end == 0 || end == std::string_view::npos) return std::nullopt;
    return StateKeyOwner{std::string(rest.substr(0, end)), {}};
  }
  if (key.starts_with(kMerged) && key.size() > kMerged.size()) {
    return StateKeyOwner{{}, std::string(key.substr(kMerged.size()))};
  }
  if (key.starts_with(kEpisode)) {
    // alert-episode/<rule>/<pain point id>: pain point ids have no '/', rule names may.
    const std::size_t last = key.rfind('/');
    if (last < kEpisode.size() || last + 1 == key.size()) return std::nullopt;
    return StateKeyOwner{{}, std::string(key.substr(last + 1))};
  }
  return std::nullopt;
}

}  // namespace painpoint::aggregator

// The state's keys: agg/<product>/{m, d/<page>, c/<seq>, x/<seq>, s/<seq>, k} per product and
// agg-merged/<id> per merged pain point (aggregator/README.md, "Persistence").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace painpoint::aggregator {

// DF table pages: 2^kPageBits buckets per state key.
inline constexpr std::uint32_t kPageBits = 8;


std::string product_prefix(std::string_view product);
std::string meta_key(std::string_view product);
std::string page_key(std::string_view product, std::uint32_t page);
std::string cluster_key(std::string_view product, std::uint32_t seq);
std::string cold_key(std::string_view product, std::uint32_t seq);
std::string sample_key(std::string_view product, std::uint32_t seq);
std::string merged_key(std::string_view id);
std::string curation_key(std::string_view product);

}  // namespace painpoint::aggregator

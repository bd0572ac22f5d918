#include "state_keys.h"

#include <cstdio>

#include "painpoint/aggregator/aggregator.h"

namespace painpoint::aggregator {
namespace {

std::string hex8(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return std::string(buf, 8);
}

}  // namespace

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 16);
}

std::string product_prefix(std::string_view product) { return "agg/" + std::string(product) + "/"; }
std::string meta_key(std::string_view product) { return product_prefix(product) + "m"; }
std::string page_key(std::string_view product, std::uint32_t page) {
  return product_prefix(product) + "d/" + hex8(page);
}
std::string cluster_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "c/" + hex8(seq);
}
std::string cold_key(std::string_view product, std::uint32_t seq) {
  return product_prefix(product) + "x/" + hex8(seq);
}
std::string merged_key(std::string_view id) { return "agg-merged/" + std::string(id); }
std::string curation_key(std::string_view product) { return product_prefix(product) + "k"; }

std::string product_state_prefix(std::string_view product_id) { return product_prefix(product_id); }

}  // namespace painpoint::aggregator

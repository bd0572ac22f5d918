#pragma once

// Whose each key of the aggregator's state is (aggregator/README.md, "Persistence"): what the
// one-time migration into the per-partition store (docs/adr-005-scale-out.md) needs for the keys
// stored before StateWrite named their product.

#include <optional>
#include <string>
#include <string_view>

namespace painpoint::aggregator {

struct StateKeyOwner {
  std::string product_id;     // set for a product's key: agg/<product>/...
  std::string pain_point_id;  // set for a merge record or an alert episode: their pain point
};

// nullopt: not a key the aggregator writes.
[[nodiscard]] std::optional<StateKeyOwner> state_key_owner(std::string_view key);

}  // namespace painpoint::aggregator

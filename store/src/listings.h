#pragma once

// The listing records of the pain_points_by_product index (v1::PainPointListing) and the
// per-product pain point counters derived from them. Private to the store.

#include <rocksdb/db.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/store/status.h"
#include "painpoint/store/store.h"
#include "painpoint/v1/internal.pb.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::store::listings {

// How a product's active pain point count and version sum change.
struct CountDelta {
  std::int64_t active = 0;
  std::int64_t versions = 0;
};
using CountDeltas = std::map<std::string, CountDelta, std::less<>>;

v1::PainPointListing listing_of(const v1::PainPointSummary& summary);

// For upserting `summaries` in this order: the serialized listing of each (values[i] for
// summaries[i]) and each product's count change against what the index holds now (one MultiGet;
// an id repeated in the span counts against its earlier occurrence). keys[i]: the index key of
// summaries[i] as stored (with its partition prefix in schema 3).
Status prepare_upserts(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_product,
                       std::span<const v1::PainPointSummary> summaries,
                       std::span<const std::string> keys, std::vector<std::string>* values,
                       CountDeltas* deltas);

// Schema 1 -> 2: writes the listing of every stored summary into its index entry (idempotent,
// in batches) and returns each product's totals; the caller stores them with the new version.
Status build_listings(rocksdb::DB& db, const rocksdb::WriteOptions& write,
                      rocksdb::ColumnFamilyHandle* pain_points,
                      rocksdb::ColumnFamilyHandle* by_product, CountDeltas* totals);

// `partition_prefix`: what precedes the product's index keys and its pain points' keys (the
// partition prefix in schema 3, else empty).
Status list_active(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_product,
                   rocksdb::ColumnFamilyHandle* pain_points, std::string_view partition_prefix,
                   std::string_view product_id,
                   ListingOrder order, std::size_t offset, std::size_t limit, PainPointPage* out);

}  // namespace painpoint::store::listings

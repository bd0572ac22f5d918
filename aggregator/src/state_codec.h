// Encoding of the persisted records (aggregator_state.proto) from and to the model types. Each
// record is a pure function of what it encodes, so equal states give equal bytes.
#pragma once

#include <cstdint>
#include <memory>

#include "model.h"
#include "painpoint/v1/aggregator_state.pb.h"

namespace painpoint::aggregator {

// A cluster's record (agg/<product>/c/<seq>): counts, centroid, dense sum, indexed terms, stats.
v1::AggCluster encode_cluster(const Cluster& c);
std::unique_ptr<Cluster> decode_cluster(const v1::AggCluster& m);

// Its cold record (agg/<product>/x/<seq>): accounts and exemplars, written only when they change.
v1::AggCluster encode_cold(const Cluster& c);
void decode_cold(const v1::AggCluster& m, Cluster& c);

// Its member sample (agg/<product>/s/<seq>, semantic mode), written only when it changes.
v1::AggSample encode_sample(const Cluster& c);
void decode_sample(const v1::AggSample& m, Cluster& c);

// The product's counters and dense mean (agg/<product>/m). The mean is kept only when it has
// `dims` values (the word vectors in use).
v1::AggProductState encode_meta(const Product& p);
void decode_meta(const v1::AggProductState& m, std::uint32_t dims, Product& p);

// One page of the term table (agg/<product>/d/<page>): document frequency and first word of each
// counted bucket, in bucket order (encoding sorts the page's bucket list).
v1::AggDfPage encode_page(Product& p, std::uint32_t page);
void decode_page(const v1::AggDfPage& m, Product& p);

// The product's curated facts (agg/<product>/k).
v1::AggCuration encode_curation(const Curation& c);
void decode_curation(const v1::AggCuration& m, Curation& c);

}  // namespace painpoint::aggregator

#pragma once

// The input partition of every product a store::CommitBatch names
// (CommitBatch::product_partitions), for the per-partition store (docs/adr-005-scale-out.md, slice
// 1).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/store/store.h"

namespace painpoint::service {

// A product's partition is the one its events were consumed from (StoredEvent.input_partition);
// for a product without an event seen here (a checkpoint after a restart, curation, a rebuild)
// it is ingest::partition_for_key over the input partition count serve recorded in the store
// (at its first start, with the embedded broker or a cluster that answers metadata requests):
// ingest's producer partitions by that same murmur2 rule, so both agree while the topic keeps its
// partition count (serve refuses to start otherwise).
// The rule a read-write open of a schema 2 store upgrades it with (StoreOptions::upgrade_rule):
// ingest's murmur2 partitioner over the recorded partition count, else over
// `partition_count_if_unrecorded`, and the aggregator's owner of each state key.
[[nodiscard]] store::PartitionRule store_upgrade_rule(
    std::optional<std::int32_t> partition_count_if_unrecorded);

class ProductPartitions {
 public:
  explicit ProductPartitions(std::optional<std::int32_t> recorded_partition_count)
      : partition_count_(recorded_partition_count) {}
  // Over the count serve recorded in `store` (Store::input_partitions): what the aggregator stage
  // and replay rebuild start from. Without a count yet, assign() reads it again when it needs it:
  // on a cluster, serve records it after the stage started. `store` must outlive *out.
  static store::Status from_store(const store::Store& store, ProductPartitions* out);

  // Remembers the partition an event of its product was consumed from.
  void learn(const v1::StoredEvent& event);
  // Fills batch->product_partitions for every product its records name, after learning the
  // batch's events. Leaves it empty when a product has no partition by either rule (no event
  // seen and no recorded count, e.g. a cluster that did not answer metadata requests): the store
  // then takes the batch as naming no partition, which only the schema 2 layout accepts.
  void assign(store::CommitBatch* batch);
  // The partition of `product` by the same rules; nullopt when neither knows it.
  [[nodiscard]] std::optional<std::int32_t> partition_of(std::string_view product);

 private:
  // Reads the count from store_ while none is known (a failed read is logged: no count).
  void read_partition_count();

  std::optional<std::int32_t> partition_count_;
  const store::Store* store_ = nullptr;
  std::map<std::string, std::int32_t, std::less<>> learned_;
};

}  // namespace painpoint::service

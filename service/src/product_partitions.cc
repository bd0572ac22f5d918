#include "product_partitions.h"

#include <string_view>

#include "painpoint/ingest/partitioner.h"

namespace painpoint::service {

store::Status ProductPartitions::from_store(const store::Store& store, ProductPartitions* out) {
  std::optional<std::int32_t> partition_count;
  if (store::Status s = store.input_partitions(&partition_count); !s.ok()) return s;
  *out = ProductPartitions(partition_count);
  return store::Status::Ok();
}

void ProductPartitions::learn(const v1::StoredEvent& event) {
  learned_.insert_or_assign(event.event().product_id(), event.input_partition());
}

void ProductPartitions::assign(store::CommitBatch* batch) {
  auto& partitions = batch->product_partitions;
  partitions.clear();
  for (const v1::StoredEvent& e : batch->events) {
    learn(e);
    partitions.try_emplace(e.event().product_id(), e.input_partition());
  }
  bool complete = true;
  auto add = [&](std::string_view product) {
    if (partitions.contains(product)) return;
    if (const auto it = learned_.find(product); it != learned_.end()) {
      partitions.emplace(it->first, it->second);
    } else if (partition_count_ && *partition_count_ > 0) {
      partitions.emplace(std::string(product),
                         ingest::partition_for_key(product, *partition_count_));
    } else {
      complete = false;
    }
  };
  for (const store::KeyWrite& w : batch->aggregator_state) add(w.product_id);
  for (const store::MembershipWrite& m : batch->memberships) add(m.product_id);
  for (const v1::PainPointSummary& s : batch->summaries) add(s.product_id());
  for (const v1::PainPointSummary& s : batch->outbox) add(s.product_id());
  if (!complete) partitions.clear();
}

}  // namespace painpoint::service

#include "product_partitions.h"

#include <spdlog/spdlog.h>

#include <string_view>

#include "painpoint/aggregator/state_key_owner.h"
#include "painpoint/ingest/partitioner.h"

namespace painpoint::service {

store::PartitionRule store_upgrade_rule(
    std::optional<std::int32_t> partition_count_if_unrecorded) {
  store::PartitionRule rule;
  rule.of_product = [](std::string_view product, std::int32_t partition_count) {
    return ingest::partition_for_key(product, partition_count);
  };
  rule.state_key_owner = [](std::string_view key) -> std::optional<store::StateKeyOwner> {
    std::optional<aggregator::StateKeyOwner> owner = aggregator::state_key_owner(key);
    if (!owner) return std::nullopt;
    return store::StateKeyOwner{std::move(owner->product_id), std::move(owner->pain_point_id)};
  };
  rule.partition_count = partition_count_if_unrecorded;
  return rule;
}

store::Status ProductPartitions::from_store(const store::Store& store, ProductPartitions* out) {
  std::optional<std::int32_t> partition_count;
  if (store::Status s = store.input_partitions(&partition_count); !s.ok()) return s;
  *out = ProductPartitions(partition_count);
  out->store_ = &store;
  return store::Status::Ok();
}

void ProductPartitions::read_partition_count() {
  if (partition_count_ || store_ == nullptr) return;
  if (store::Status s = store_->input_partitions(&partition_count_); !s.ok()) {
    spdlog::warn("reading the recorded input partition count: {}", s.to_string());
    partition_count_.reset();
  }
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
  bool count_read = false;  // at most one read of the count per batch
  auto add = [&](std::string_view product) {
    if (partitions.contains(product)) return;
    if (const auto it = learned_.find(product); it != learned_.end()) {
      partitions.emplace(it->first, it->second);
      return;
    }
    if (!count_read) {
      read_partition_count();
      count_read = true;
    }
    if (partition_count_ && *partition_count_ > 0) {
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

std::optional<std::int32_t> ProductPartitions::partition_of(std::string_view product) {
  if (const auto it = learned_.find(product); it != learned_.end()) return it->second;
  read_partition_count();
  if (!partition_count_ || *partition_count_ <= 0) return std::nullopt;
  return ingest::partition_for_key(product, *partition_count_);
}

}  // namespace painpoint::service

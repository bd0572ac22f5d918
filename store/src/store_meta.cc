// What the store records beside the data: the consumed input offsets, the Kafka cluster, the
// input topic's partition count, the clustering, and the event and product counters.
#include <rocksdb/write_batch.h>

#include <mutex>
#include <shared_mutex>
#include <vector>

#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "partition_ranges.h"
#include "store_internal.h"

namespace painpoint::store {

// Schema 3 keeps each offset under its partition's meta_prefix() (an offset of no valid
// partition stays process-wide, as in schema 2).
Status Store::load_offsets(std::vector<InputOffset>* out) const {
  bool corrupt = false;
  auto take = [&](std::string_view name, std::string_view value) {
    if (!name.starts_with(kOffsetPrefix)) return true;
    auto parsed = keys::parse_offset_key(name.substr(kOffsetPrefix.size()));
    auto offset = keys::read_be64(value);
    if (!parsed || !offset) {
      corrupt = true;
      return false;
    }
    out->push_back(
        {std::string(parsed->topic), parsed->partition, static_cast<std::int64_t>(*offset)});
    return true;
  };
  Status s = impl_->scan(kMeta, kOffsetPrefix, take);
  if (s.ok() && !corrupt && impl_->partitioned) {
    const std::string prefix(partition_ranges::kMetaPartitionPrefix);
    s = impl_->scan(kMeta, prefix, [&](std::string_view key, std::string_view value) {
      const auto parsed = keys::parse_partitioned_key(key.substr(prefix.size()));
      if (!parsed) {
        corrupt = true;
        return false;
      }
      return take(parsed->key, value);
    });
  }
  if (!s.ok()) return s;
  if (corrupt) return {StoreErrc::kCorruption, "undecodable input offset record"};
  return Status::Ok();
}

Status Store::kafka_cluster_id(std::optional<std::string>* out) const {
  return impl_->get(kMeta, kClusterIdKey, out);
}

Status Store::record_input_partitions(std::int32_t partitions) {
  std::string encoded;
  keys::append_be32(encoded, static_cast<std::uint32_t>(partitions));
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(wb.Put(slice(kInputPartitionsKey), encoded), "input partitions");
      !s.ok()) {
    return s;
  }
  return impl_->write(&wb, "write input partitions");
}

Status Store::record_clustering(std::string_view description) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(wb.Put(slice(kClusteringKey), slice(description)), "clustering");
      !s.ok()) {
    return s;
  }
  return impl_->write(&wb, "write clustering");
}

Status Store::clustering(std::optional<std::string>* out) const {
  return impl_->get(kMeta, kClusteringKey, out);
}

Status Store::input_partitions(std::optional<std::int32_t>* out) const {
  std::optional<std::string> value;
  if (Status s = impl_->get(kMeta, kInputPartitionsKey, &value); !s.ok()) return s;
  if (!value) {
    out->reset();
    return Status::Ok();
  }
  const auto partitions = keys::read_be32(*value);
  if (!partitions) return {StoreErrc::kCorruption, "undecodable input partition count"};
  *out = static_cast<std::int32_t>(*partitions);
  return Status::Ok();
}

std::int64_t Store::event_count() const {
  std::shared_lock lock(impl_->counters_mutex);
  return impl_->event_count;
}

std::vector<v1::ProductStats> Store::product_stats() const {
  std::shared_lock lock(impl_->counters_mutex);
  std::vector<v1::ProductStats> out;
  out.reserve(impl_->products.size());
  for (const auto& [id, stats] : impl_->products) out.push_back(stats);
  return out;
}

std::optional<v1::ProductStats> Store::product_stats(std::string_view product) const {
  std::shared_lock lock(impl_->counters_mutex);
  const auto it = impl_->products.find(product);
  if (it == impl_->products.end()) return std::nullopt;
  return it->second;
}

}  // namespace painpoint::store

#include "partition_assignment.h"

#include <utility>

#include "painpoint/store/keys.h"

namespace painpoint::store::partition_assignment {
namespace {

template <typename Message>
rocksdb::Status parse(std::string_view bytes, Message* out, const char* what) {
  if (!out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return rocksdb::Status::Corruption(std::string("undecodable ") + what);
  }
  return rocksdb::Status::OK();
}

// keys::leading_id() of an index key, which every index key has.
rocksdb::Status indexed_id(std::string_view key, std::string_view* id) {
  const std::optional<std::string_view> leading = keys::leading_id(key);
  if (!leading) return rocksdb::Status::Corruption("index key without separator");
  *id = *leading;
  return rocksdb::Status::OK();
}

}  // namespace

Assigner::Assigner(rocksdb::DB& db, rocksdb::ReadOptions read,
                   const std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount>& families,
                   PartitionRule rule)
    : db_(db), read_(std::move(read)), families_(families), rule_(std::move(rule)) {}

rocksdb::Status Assigner::partition_of(Family family, std::string_view key, std::string_view value,
                                       std::optional<std::int32_t>* out) {
  out->reset();
  std::string product;
  rocksdb::Status s;
  switch (family) {
    case kMeta:
      return partition_of_meta(key, value, out);
    case kAlerts:
    case kFamilyCount:
      return rocksdb::Status::OK();
    case kEvents: {
      v1::StoredEvent stored;
      s = parse(value, &stored, "event record");
      product = stored.event().product_id();
      break;
    }
    case kByTime:
      product = value;
      break;
    case kMembers:
    case kUnsaved:
      s = product_of_event(family == kMembers ? key : value, &product);
      break;
    case kPainPoints:
    case kOutbox: {
      v1::PainPointSummary summary;
      s = parse(value, &summary, "pain point summary");
      product = summary.product_id();
      break;
    }
    case kPainPointsByProduct: {
      std::string_view id;
      s = indexed_id(key, &id);
      product = id;
      break;
    }
    case kMembersByPainPoint: {
      std::string_view id;
      s = indexed_id(key, &id);
      if (s.ok()) s = product_of_pain_point(id, &product);
      break;
    }
    case kAggregatorState: {
      const std::optional<StateKeyOwner> owner = rule_.state_key_owner(key);
      if (!owner) return rocksdb::Status::Corruption("aggregator state key of no product");
      product = owner->product_id;
      if (product.empty()) s = product_of_pain_point(owner->pain_point_id, &product);
      break;
    }
  }
  if (!s.ok()) return s;
  *out = rule_.of_product(product);
  return rocksdb::Status::OK();
}

// A product's statistics belong to its partition, an input offset to the input partition it
// names; the schema version, cluster id, recorded settings and process-wide counters to none.
rocksdb::Status Assigner::partition_of_meta(std::string_view key, std::string_view,
                                            std::optional<std::int32_t>* out) const {
  if (key.starts_with(kProductPrefix)) {
    *out = rule_.of_product(key.substr(kProductPrefix.size()));
  } else if (key.starts_with(kOffsetPrefix)) {
    const auto offset = keys::parse_offset_key(key.substr(kOffsetPrefix.size()));
    if (!offset) return rocksdb::Status::Corruption("undecodable input offset key");
    *out = offset->partition;
  }
  return rocksdb::Status::OK();
}

// The stored record `key` of `family` that another record names: missing is Corruption.
template <typename Message>
rocksdb::Status Assigner::read_named(Family family, std::string_view key, const char* what,
                                     Message* out) const {
  std::string bytes;
  const rocksdb::Status s = db_.Get(read_, families_[family], slice(key), &bytes);
  if (s.IsNotFound())
    return rocksdb::Status::Corruption(std::string("a record names a missing ") + what);
  if (!s.ok()) return s;
  return parse(bytes, out, what);
}

rocksdb::Status Assigner::product_of_event(std::string_view event_id, std::string* product) const {
  v1::StoredEvent stored;
  const rocksdb::Status s = read_named(kEvents, event_id, "event", &stored);
  if (s.ok()) *product = stored.event().product_id();
  return s;
}

rocksdb::Status Assigner::product_of_pain_point(std::string_view pain_point_id,
                                                std::string* product) {
  if (auto known = pain_point_products_.find(pain_point_id); known != pain_point_products_.end()) {
    *product = known->second;
    return rocksdb::Status::OK();
  }
  v1::PainPointSummary summary;
  if (rocksdb::Status s = read_named(kPainPoints, pain_point_id, "pain point", &summary); !s.ok()) {
    return s;
  }
  *product = summary.product_id();
  pain_point_products_.emplace(std::string(pain_point_id), *product);
  return rocksdb::Status::OK();
}

}  // namespace painpoint::store::partition_assignment

#pragma once

// Which input partition each record of a schema 2 store belongs to: the rule the one-time
// migration into the partition-prefixed layout (partition_ranges.h) applies to every record, the
// same that commit() applies to the records it writes. A record belongs to its product's
// partition; records keyed by an event or a pain point find the product through that event's or
// that pain point's stored record. The product -> partition rule itself (ingest's murmur2 over the
// recorded input partition count) and the layout of the aggregator's state keys are the caller's.

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "store_internal.h"

namespace painpoint::store::partition_assignment {

// Whose an aggregator state key is: a product's, or a pain point's (then its product's).
using StateKeyOwner = store::StateKeyOwner;

struct PartitionRule {
  std::function<std::int32_t(std::string_view product_id)> of_product;
  // nullopt: a key the aggregator does not write (the migration refuses the store).
  std::function<std::optional<StateKeyOwner>(std::string_view state_key)> state_key_owner;
};

// Reads through one DB and ReadOptions (a snapshot during the migration); remembers the product
// of every pain point it looked up, since a pain point's member index entries are many.
class Assigner {
 public:
  Assigner(rocksdb::DB& db, rocksdb::ReadOptions read,
           const std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount>& families,
           PartitionRule rule);

  // *out: the partition of the record (family, key, value) of a schema 2 store, or nullopt for a
  // record that belongs to no partition (process-wide records of the default family, alerts).
  // Corruption when the record, or the event or pain point it names, cannot be read.
  rocksdb::Status partition_of(Family family, std::string_view key, std::string_view value,
                               std::optional<std::int32_t>* out);

 private:
  rocksdb::Status partition_of_meta(std::string_view key, std::string_view value,
                                    std::optional<std::int32_t>* out) const;
  template <typename Message>
  rocksdb::Status read_named(Family family, std::string_view key, const char* what,
                             Message* out) const;
  rocksdb::Status product_of_event(std::string_view event_id, std::string* product) const;
  rocksdb::Status product_of_pain_point(std::string_view pain_point_id, std::string* product);

  rocksdb::DB& db_;
  rocksdb::ReadOptions read_;
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> families_;
  PartitionRule rule_;
  std::map<std::string, std::string, std::less<>> pain_point_products_;
};

}  // namespace painpoint::store::partition_assignment

#include "listings.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "painpoint/store/keys.h"
#include "store_internal.h"

namespace painpoint::store::listings {

namespace {

// Index entries written per WriteBatch while upgrading a store.
constexpr std::size_t kUpgradeBatchEntries = 10'000;

bool is_active(const v1::PainPointListing& listing) {
  return listing.status() == v1::STATUS_ACTIVE;
}

void count(const v1::PainPointListing& listing, std::int64_t sign, CountDelta& delta) {
  delta.active += sign * (is_active(listing) ? 1 : 0);
  delta.versions += sign * listing.version();
}

struct Row {
  v1::PainPointListing listing;
  std::string id;
};
using RowLess = bool (*)(const Row&, const Row&);

// Descending by the order's key, then ascending by id: the API's orders since version 1.
template <auto Key>
bool descending(const Row& a, const Row& b) {
  return std::make_tuple((b.listing.*Key)(), a.id) < std::make_tuple((a.listing.*Key)(), b.id);
}

RowLess less_for(ListingOrder order) {
  using L = v1::PainPointListing;
  switch (order) {
    case ListingOrder::kSeverity:
      return descending<&L::severity>;
    case ListingOrder::kEvents:
      return descending<&L::event_count>;
    case ListingOrder::kAccounts:
      return descending<&L::account_count>;
    case ListingOrder::kArr:
      return descending<&L::arr_at_risk_cents>;
    case ListingOrder::kTrend:
      return descending<&L::trend>;
    case ListingOrder::kRecent:
      return descending<&L::last_seen_micros>;
  }
  return descending<&L::severity>;
}

// The listing an index entry holds. An empty value is an entry of a version 1 store opened read
// only (not upgraded): its summary is read instead.
Status read_listing(rocksdb::DB& db, const rocksdb::ReadOptions& read,
                    rocksdb::ColumnFamilyHandle* pain_points, std::string_view id,
                    std::string_view value, std::optional<v1::PainPointListing>* out) {
  v1::PainPointListing listing;
  if (!value.empty()) {
    if (!listing.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return {StoreErrc::kCorruption, "undecodable pain point listing"};
    }
    *out = std::move(listing);
    return Status::Ok();
  }
  std::string bytes;
  const rocksdb::Status got = db.Get(read, pain_points, slice(id), &bytes);
  if (got.IsNotFound()) {
    out->reset();
    return Status::Ok();
  }
  if (!got.ok()) return from_rocks(got, "read pain point");
  v1::PainPointSummary summary;
  if (!summary.ParseFromString(bytes)) return {StoreErrc::kCorruption, "undecodable summary"};
  *out = listing_of(summary);
  return Status::Ok();
}

}  // namespace

v1::PainPointListing listing_of(const v1::PainPointSummary& summary) {
  v1::PainPointListing listing;
  listing.set_status(summary.status());
  listing.set_version(summary.version());
  listing.set_severity(summary.severity());
  listing.set_event_count(summary.event_count());
  listing.set_account_count(summary.account_count());
  listing.set_arr_at_risk_cents(summary.arr_at_risk_cents());
  listing.set_trend(summary.trend());
  listing.set_last_seen_micros(to_micros(summary.last_seen()));
  return listing;
}

Status prepare_upserts(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_product,
                       std::span<const v1::PainPointSummary> summaries,
                       std::span<const std::string> keys, std::vector<std::string>* values,
                       CountDeltas* deltas) {
  values->clear();
  if (summaries.empty()) return Status::Ok();
  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> stored(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db.MultiGet(rocksdb::ReadOptions(), by_product, key_slices.size(), key_slices.data(),
              stored.data(), statuses.data());
  // The latest listing of each id upserted earlier in this batch.
  std::unordered_map<std::string_view, std::size_t> earlier;
  values->resize(summaries.size());
  std::vector<v1::PainPointListing> listings(summaries.size());
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    const v1::PainPointSummary& summary = summaries[i];
    CountDelta& delta = (*deltas)[summary.product_id()];
    if (auto found = earlier.find(keys[i]); found != earlier.end()) {
      count(listings[found->second], -1, delta);
    } else if (statuses[i].ok()) {
      v1::PainPointListing previous;
      if (!previous.ParseFromArray(stored[i].data(), static_cast<int>(stored[i].size()))) {
        return {StoreErrc::kCorruption, "undecodable pain point listing"};
      }
      count(previous, -1, delta);
    } else if (!statuses[i].IsNotFound()) {
      return from_rocks(statuses[i], "read pain point listing");
    }
    listings[i] = listing_of(summary);
    count(listings[i], +1, delta);
    listings[i].SerializeToString(&(*values)[i]);
    earlier[keys[i]] = i;
  }
  return Status::Ok();
}

Status build_listings(rocksdb::DB& db, const rocksdb::WriteOptions& write,
                      rocksdb::ColumnFamilyHandle* pain_points,
                      rocksdb::ColumnFamilyHandle* by_product, CountDeltas* totals) {
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), pain_points));
  v1::PainPointSummary summary;
  std::string value;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!summary.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return {StoreErrc::kCorruption, "undecodable pain point summary"};
    }
    const v1::PainPointListing listing = listing_of(summary);
    count(listing, +1, (*totals)[summary.product_id()]);
    listing.SerializeToString(&value);
    const std::string key = keys::product_item_key(summary.product_id(), summary.id());
    if (Status s = from_rocks(wb.Put(by_product, key, value), "upgrade listings"); !s.ok()) {
      return s;
    }
    if (static_cast<std::size_t>(wb.Count()) >= kUpgradeBatchEntries) {
      if (Status s = from_rocks(db.Write(write, &wb), "upgrade listings"); !s.ok()) return s;
      wb.Clear();
    }
  }
  if (Status s = from_rocks(it->status(), "scan pain points"); !s.ok()) return s;
  return from_rocks(db.Write(write, &wb), "upgrade listings");
}

Status list_active(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_product,
                   rocksdb::ColumnFamilyHandle* pain_points, std::string_view partition_prefix,
                   std::string_view product_id, ListingOrder order, std::size_t offset,
                   std::size_t limit, PainPointPage* out) {
  const ScopedSnapshot snapshot(&db);
  const rocksdb::ReadOptions& read = snapshot.options();
  const std::string prefix =
      std::string(partition_prefix) + keys::product_item_key(product_id, "");
  std::vector<Row> rows;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, by_product));
  for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key.substr(0, prefix.size()) != prefix) break;
    const std::string_view id = key.substr(prefix.size());
    std::optional<v1::PainPointListing> listing;
    const std::string summary_key = std::string(partition_prefix) + std::string(id);
    if (Status s = read_listing(db, read, pain_points, summary_key, view(it->value()), &listing);
        !s.ok()) {
      return s;
    }
    if (listing && is_active(*listing)) rows.push_back({std::move(*listing), std::string(id)});
  }
  if (Status s = from_rocks(it->status(), "scan pain point listings"); !s.ok()) return s;

  out->summaries.clear();
  out->active_total = rows.size();
  const std::size_t begin = std::min(offset, rows.size());
  const std::size_t end = std::min(rows.size(), begin + limit);
  // Only the rows up to the page's end need their order.
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(end), rows.end(),
                    less_for(order));
  if (begin == end) return Status::Ok();
  std::vector<std::string> summary_keys;
  for (std::size_t i = begin; i < end; ++i) {
    summary_keys.push_back(std::string(partition_prefix) + rows[i].id);
  }
  std::vector<rocksdb::Slice> keys(summary_keys.begin(), summary_keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db.MultiGet(read, pain_points, keys.size(), keys.data(), values.data(), statuses.data());
  out->summaries.reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;  // index entry without record: not within a batch
    if (!statuses[i].ok()) return from_rocks(statuses[i], "read pain points");
    v1::PainPointSummary& summary = out->summaries.emplace_back();
    if (!summary.ParseFromArray(values[i].data(), static_cast<int>(values[i].size()))) {
      return {StoreErrc::kCorruption, "undecodable pain point summary"};
    }
  }
  return Status::Ok();
}

}  // namespace painpoint::store::listings

// The store's point reads and scans: events, memberships, summaries, aggregator state, the time
// index and the member index.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "listings.h"
#include "partition_ranges.h"
#include "painpoint/base/time.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "store_internal.h"

namespace painpoint::store {

Status Store::Impl::get(Family family, std::string_view key,
                        std::optional<std::string>* out) const {
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf(family), slice(key), &value);
  if (s.IsNotFound()) {
    out->reset();
    return Status::Ok();
  }
  if (!s.ok()) return from_rocks(s, "read");
  *out = std::move(value);
  return Status::Ok();
}

std::string Store::Impl::key_in(Family family, std::int32_t p, std::string_view key) const {
  if (!partitioned || p == kNoPartition || !partition_ranges::is_partitioned(family)) {
    return std::string(key);
  }
  return keys::partitioned_key(p, key);
}

std::string Store::Impl::meta_in(std::int32_t p, std::string_view name) const {
  if (!partitioned || p == kNoPartition) return std::string(name);
  return partition_ranges::meta_key(p, name);
}

std::vector<std::int32_t> Store::Impl::read_partitions() const {
  if (!partitioned) return {kNoPartition};
  std::shared_lock lock(counters_mutex);
  return partitions;
}

std::optional<std::int32_t> Store::Impl::partition_of_product(std::string_view product) const {
  if (!partitioned) return kNoPartition;
  std::shared_lock lock(counters_mutex);
  const auto it = product_partition.find(product);
  if (it == product_partition.end()) return std::nullopt;
  return it->second;
}

std::uint64_t Store::Impl::state_saved_through(std::string_view product) const {
  std::shared_lock lock(counters_mutex);
  const auto it = products.find(product);
  return it == products.end() ? 0 : it->second.state_saved_through();
}

Status Store::Impl::find(Family family, std::string_view key, std::optional<std::string>* out,
                         std::int32_t* partition) const {
  out->reset();
  for (std::int32_t p : read_partitions()) {
    if (Status s = get(family, key_in(family, p, key), out); !s.ok() || out->has_value()) {
      if (partition != nullptr) *partition = p;
      return s;
    }
  }
  return Status::Ok();
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

Status Store::Impl::scan(Family family, std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  const PrefixReadOptions read(prefix);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read.options(), cf(family)));
  for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, view(it->value()))) break;
  }
  return from_rocks(it->status(), "scan");
}

namespace {
template <typename Message>
Status decode(const std::optional<std::string>& bytes, std::optional<Message>* out,
              std::string_view what) {
  if (!bytes) {
    out->reset();
    return Status::Ok();
  }
  Message message;
  if (!message.ParseFromString(*bytes)) {
    return {StoreErrc::kCorruption, "undecodable " + std::string(what)};
  }
  *out = std::move(message);
  return Status::Ok();
}
}  // namespace

Status Store::get_event(std::string_view event_id, std::optional<v1::StoredEvent>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->find(kEvents, event_id, &bytes); !s.ok()) return s;
  return decode(bytes, out, "event record");
}

Status Store::get_membership(std::string_view event_id, std::optional<std::string>* out) const {
  return impl_->find(kMembers, event_id, out);
}

// One MultiGet per partition for the ids not found in an earlier one, starting with the
// partition of the first id that has a membership: a caller's ids are usually of one product
// (replay rebuild reads them partition by partition), so the others are then rarely read.
Status Store::get_memberships(std::span<const std::string_view> event_ids,
                              std::vector<std::optional<std::string>>* out) const {
  out->assign(event_ids.size(), std::nullopt);
  if (event_ids.empty()) return Status::Ok();
  std::vector<std::int32_t> partitions = impl_->read_partitions();
  if (partitions.size() > 1) {
    for (std::size_t i = 0; i < std::min<std::size_t>(event_ids.size(), 4); ++i) {
      std::optional<std::string> member;
      std::int32_t p = kNoPartition;
      if (Status s = impl_->find(kMembers, event_ids[i], &member, &p); !s.ok()) return s;
      if (!member) continue;
      const auto at = std::find(partitions.begin(), partitions.end(), p);
      if (at != partitions.end()) std::rotate(partitions.begin(), at, at + 1);
      break;
    }
  }
  std::vector<std::size_t> missing(event_ids.size());
  for (std::size_t i = 0; i < missing.size(); ++i) missing[i] = i;
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> slices;
  for (std::int32_t p : partitions) {
    if (missing.empty()) break;
    keys.clear();
    for (std::size_t i : missing) keys.push_back(impl_->key_in(kMembers, p, event_ids[i]));
    slices.assign(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(kMembers), slices.size(), slices.data(),
                        values.data(), statuses.data());
    std::vector<std::size_t> still_missing;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      if (statuses[k].IsNotFound()) {
        still_missing.push_back(missing[k]);
        continue;
      }
      if (!statuses[k].ok()) return from_rocks(statuses[k], "read memberships");
      (*out)[missing[k]] = values[k].ToString();
    }
    missing = std::move(still_missing);
  }
  return Status::Ok();
}

Status Store::get_summary(std::string_view pain_point_id,
                          std::optional<v1::PainPointSummary>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->find(kPainPoints, pain_point_id, &bytes); !s.ok()) return s;
  return decode(bytes, out, "pain point summary");
}

Status Store::get_summary(std::int32_t partition, std::string_view pain_point_id,
                          std::optional<v1::PainPointSummary>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->get(kPainPoints, impl_->key_in(kPainPoints, partition, pain_point_id),
                            &bytes);
      !s.ok()) {
    return s;
  }
  return decode(bytes, out, "pain point summary");
}

Status Store::get_state(std::string_view key, std::optional<std::string>* out) const {
  return impl_->find(kAggregatorState, key, out);
}

// One scan per partition (the aggregator's keys name their product, which is in one partition,
// so a product's prefix finds records in one of them); keys are passed without the partition.
Status Store::scan_state(
    std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  for (std::int32_t p : impl_->read_partitions()) {
    const std::string full = impl_->key_in(kAggregatorState, p, prefix);
    const std::size_t skip = full.size() - prefix.size();
    bool more = true;
    if (Status s = impl_->scan(kAggregatorState, full,
                               [&](std::string_view key, std::string_view value) {
                                 more = fn(key.substr(skip), value);
                                 return more;
                               });
        !s.ok() || !more) {
      return s;
    }
  }
  return Status::Ok();
}

Status Store::scan_summaries(std::string_view product_id,
                             const std::function<bool(const v1::PainPointSummary&)>& fn) const {
  const std::optional<std::int32_t> p = impl_->partition_of_product(product_id);
  if (!p) return Status::Ok();  // no record of the product
  const std::string prefix =
      impl_->key_in(kPainPointsByProduct, *p, keys::product_item_key(product_id, ""));
  Status inner = Status::Ok();
  Status s = impl_->scan(kPainPointsByProduct, prefix, [&](std::string_view key, std::string_view) {
    std::optional<std::string> bytes;
    inner = impl_->get(kPainPoints, impl_->key_in(kPainPoints, *p, key.substr(prefix.size())),
                       &bytes);
    if (!inner.ok()) return false;
    std::optional<v1::PainPointSummary> summary;
    inner = decode(bytes, &summary, "pain point summary");
    if (!inner.ok()) return false;
    if (!summary) return true;  // index entry without record: cannot happen within one batch
    return fn(*summary);
  });
  return s.ok() ? inner : s;
}

Status Store::list_active_pain_points(std::string_view product_id, ListingOrder order,
                                      std::size_t offset, std::size_t limit,
                                      PainPointPage* out) const {
  const std::optional<std::int32_t> p = impl_->partition_of_product(product_id);
  if (!p) {
    out->summaries.clear();
    out->active_total = 0;
    return Status::Ok();
  }
  return listings::list_active(*impl_->db, impl_->cf(kPainPointsByProduct), impl_->cf(kPainPoints),
                               impl_->key_in(kPainPoints, *p, ""), product_id, order, offset,
                               limit, out);
}

Status Store::scan_events_by_time(std::chrono::system_clock::time_point since,
                                  std::chrono::system_clock::time_point until,
                                  const std::function<bool(const v1::StoredEvent&)>& fn) const {
  return scan_events_by_time(since, until, nullptr, fn);
}

namespace {

// Walks the time index over [since, until) in (occurred_at, event id) order, merging the
// partitions' ranges, skipping the products want_product (if set) rejects, and calls
// visit(event id, partition) while it returns ok and sets *more. The index's value is the product
// id, so rejected events cost no event read.
Status walk_time_index(const Store::Impl& impl, const rocksdb::ReadOptions& read,
                       std::span<const std::int32_t> partitions,
                       std::chrono::system_clock::time_point since,
                       std::chrono::system_clock::time_point until,
                       const std::function<bool(std::string_view product_id)>& want_product,
                       const std::function<Status(std::string_view event_id, std::int32_t p,
                                                  bool* more)>& visit) {
  const std::int64_t until_us = base::micros_of(until);
  std::string start;
  keys::append_be64(start, keys::order_preserving(base::micros_of(since)));
  struct Source {
    std::int32_t partition;
    std::size_t skip;  // the partition prefix's length
    std::string prefix;
    std::unique_ptr<rocksdb::Iterator> it;
    bool done = false;  // past `until`
    bool live() const { return !done && it->Valid() && view(it->key()).starts_with(prefix); }
    std::string_view key() const { return view(it->key()).substr(skip); }
  };
  std::vector<Source> sources;
  for (std::int32_t p : partitions) {
    std::string prefix = impl.key_in(kByTime, p, "");
    Source source{p, prefix.size(), std::move(prefix),
                  std::unique_ptr<rocksdb::Iterator>(impl.db->NewIterator(read, impl.cf(kByTime)))};
    source.it->Seek(source.prefix + start);
    sources.push_back(std::move(source));
  }
  while (true) {
    Source* next = nullptr;
    for (Source& source : sources) {
      if (source.live() && (next == nullptr || source.key() < next->key())) next = &source;
    }
    if (next == nullptr) break;
    auto parsed = keys::parse_time_key(next->key());
    if (!parsed) return {StoreErrc::kCorruption, "undecodable time index key"};
    if (parsed->occurred_at_micros >= until_us) {
      next->done = true;
      continue;
    }
    if (!want_product || want_product(view(next->it->value()))) {
      bool more = true;
      if (Status s = visit(parsed->event_id, next->partition, &more); !s.ok()) return s;
      if (!more) break;
    }
    next->it->Next();
  }
  for (const Source& source : sources) {
    if (Status s = from_rocks(source.it->status(), "scan events by time"); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

Status Store::scan_events_by_time(
    std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
    const std::function<bool(std::string_view product_id)>& want_product,
    const std::function<bool(const v1::StoredEvent&)>& fn) const {
  const std::vector<std::int32_t> partitions = impl_->read_partitions();
  return walk_time_index(
      *impl_, rocksdb::ReadOptions(), partitions, since, until, want_product,
      [&](std::string_view event_id, std::int32_t p, bool* more) -> Status {
        std::optional<std::string> bytes;
        if (Status s = impl_->get(kEvents, impl_->key_in(kEvents, p, event_id), &bytes); !s.ok()) {
          return s;
        }
        if (!bytes) return {StoreErrc::kCorruption, "time index names a missing event"};
        std::optional<v1::StoredEvent> event;
        if (Status s = decode(bytes, &event, "event record"); !s.ok()) return s;
        *more = fn(*event);
        return Status::Ok();
      });
}

namespace {

// scan_events_by_arrival() in partition p. *more: fn did not stop the scan.
Status scan_partition_by_arrival(
    const Store::Impl& impl, const rocksdb::ReadOptions& read, std::int32_t p,
    std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
    const std::function<bool(std::string_view product_id)>& want_product,
    const std::function<bool(const v1::StoredEvent&)>& fn, bool* more) {
  const Store::Impl* impl_ = &impl;
  // Pass 1: the selection (from the time index, as scan_events_by_time) with each event's
  // arrival number. order 0: no arrival number (sorts first); otherwise arrival + 1.
  struct Selected {
    std::uint64_t order;
    std::string key;  // the event's key in `events`
  };
  std::vector<Selected> selected;
  rocksdb::PinnableSlice value;
  const std::int32_t only[] = {p};
  if (Status s = walk_time_index(
          *impl_, read, only, since, until, want_product,
          [&](std::string_view event_id, std::int32_t, bool*) -> Status {
            value.Reset();
            std::string key = impl_->key_in(kEvents, p, event_id);
            const rocksdb::Status got = impl_->db->Get(read, impl_->cf(kEvents), slice(key), &value);
            if (got.IsNotFound()) {
              return {StoreErrc::kCorruption, "time index names a missing event"};
            }
            if (!got.ok()) return from_rocks(got, "read event");
            std::optional<std::uint64_t> arrival;
            if (!read_arrival(view(value), &arrival)) {
              return {StoreErrc::kCorruption, "undecodable event record"};
            }
            selected.push_back({arrival ? *arrival + 1 : 0, std::move(key)});
            return Status::Ok();
          });
      !s.ok()) {
    return s;
  }
  // Stable: the events without a number keep their (occurred_at, event id) order.
  std::stable_sort(selected.begin(), selected.end(),
                   [](const Selected& a, const Selected& b) { return a.order < b.order; });

  // Pass 2: the events in that order, one MultiGet per chunk.
  constexpr std::size_t kChunk = 1024;
  std::vector<rocksdb::Slice> keys;
  keys.reserve(kChunk);
  std::vector<rocksdb::PinnableSlice> values(kChunk);
  std::vector<rocksdb::Status> statuses(kChunk);
  v1::StoredEvent stored;
  for (std::size_t begin = 0; begin < selected.size(); begin += kChunk) {
    const std::size_t n = std::min(kChunk, selected.size() - begin);
    keys.clear();
    for (std::size_t i = 0; i < n; ++i) keys.push_back(slice(selected[begin + i].key));
    impl_->db->MultiGet(read, impl_->cf(kEvents), n, keys.data(), values.data(), statuses.data());
    for (std::size_t i = 0; i < n; ++i) {
      if (statuses[i].IsNotFound()) {
        return {StoreErrc::kCorruption, "time index names a missing event"};
      }
      if (!statuses[i].ok()) return from_rocks(statuses[i], "read events");
      const bool parsed =
          stored.ParseFromArray(values[i].data(), static_cast<int>(values[i].size()));
      values[i].Reset();
      if (!parsed) return {StoreErrc::kCorruption, "undecodable event record"};
      if (!fn(stored)) {
        *more = false;
        return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

}  // namespace

// Partition by partition (arrival numbers count per partition, and a product's events are all in
// one, so each product keeps its order), each as a whole: the selection with each event's arrival
// number, sorted, then the events in that order.
Status Store::scan_events_by_arrival(
    std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
    const std::function<bool(std::string_view product_id)>& want_product,
    const std::function<bool(const v1::StoredEvent&)>& fn) const {
  const ScopedSnapshot snapshot(impl_->db.get());
  const rocksdb::ReadOptions& read = snapshot.options();
  for (std::int32_t p : impl_->read_partitions()) {
    bool more = true;
    if (Status s =
            scan_partition_by_arrival(*impl_, read, p, since, until, want_product, fn, &more);
        !s.ok() || !more) {
      return s;
    }
  }
  return Status::Ok();
}

// Partition by partition, each in its arrival order.
Status Store::scan_unsaved_events(const std::function<bool(const v1::StoredEvent&)>& fn) const {
  return scan_unsaved_events(impl_->read_partitions(), fn);
}

Status Store::scan_unsaved_events(std::span<const std::int32_t> partitions,
                                  const std::function<bool(const v1::StoredEvent&)>& fn) const {
  rocksdb::ColumnFamilyHandle* unsaved = impl_->families[kUnsaved];
  if (unsaved == nullptr) return Status::Ok();  // read-only open of a store from before
  // A store without partitions keeps one arrival log, whatever partition is named: read it once.
  std::vector<std::int32_t> whole;
  if (!impl_->partitioned && !partitions.empty()) {
    whole = impl_->read_partitions();
    partitions = whole;
  }
  for (std::int32_t p : partitions) {
    const std::string prefix = impl_->key_in(kUnsaved, p, "");
    const PrefixReadOptions read(prefix);
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read.options(), unsaved));
    for (it->Seek(slice(prefix)); it->Valid() && view(it->key()).starts_with(prefix); it->Next()) {
      std::optional<std::string> bytes;
      if (Status s = impl_->get(kEvents, impl_->key_in(kEvents, p, view(it->value())), &bytes);
          !s.ok()) {
        return s;
      }
      if (!bytes) return {StoreErrc::kCorruption, "the arrival log names a missing event"};
      std::optional<v1::StoredEvent> event;
      if (Status s = decode(bytes, &event, "event record"); !s.ok()) return s;
      const std::optional<std::uint64_t> arrival =
          keys::read_be64(view(it->key()).substr(prefix.size()));
      if (!arrival) return {StoreErrc::kCorruption, "undecodable arrival log key"};
      // Its product's state, saved after the entry was written, covers it already.
      if (*arrival < impl_->state_saved_through(event->event().product_id())) continue;
      if (!fn(*event)) return Status::Ok();
    }
    if (Status s = from_rocks(it->status(), "scan the arrival log"); !s.ok()) return s;
  }
  return Status::Ok();
}

// The partition of pain points listed together (a survivor and the ids merged into it are of one
// product): where the first summary found is, else the first partition holding an index entry.
namespace {

Status members_partition(const Store::Impl& impl, std::span<const std::string> pain_point_ids,
                         const rocksdb::ReadOptions& read, std::int32_t* out) {
  const Store::Impl* impl_ = &impl;
  *out = kNoPartition;
  if (!impl_->partitioned) return Status::Ok();
  for (const std::string& id : pain_point_ids) {
    std::optional<std::string> bytes;
    std::int32_t p = kNoPartition;
    if (Status s = impl_->find(kPainPoints, id, &bytes, &p); !s.ok()) return s;
    if (bytes) {
      *out = p;
      return Status::Ok();
    }
  }
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(read, impl_->cf(kMembersByPainPoint)));
  for (std::int32_t p : impl_->read_partitions()) {
    for (const std::string& id : pain_point_ids) {
      const std::string prefix = impl_->key_in(kMembersByPainPoint, p, keys::member_key(id, ""));
      it->Seek(slice(prefix));
      if (it->Valid() && view(it->key()).starts_with(prefix)) {
        *out = p;
        return Status::Ok();
      }
    }
  }
  return from_rocks(it->status(), "find members");
}

}  // namespace

Status Store::scan_members(
    std::span<const std::string> pain_point_ids, std::string_view after,
    const std::function<bool(const v1::StoredEvent&, std::string_view position)>& fn) const {
  rocksdb::ColumnFamilyHandle* index = impl_->families[kMembersByPainPoint];
  if (index == nullptr) {
    return {StoreErrc::kInvalidArgument,
            "this store has no member index yet (open it once read-write to build it)"};
  }
  // One snapshot for all iterators and point reads, so a page is one consistent state.
  const ScopedSnapshot snapshot(impl_->db.get());
  const rocksdb::ReadOptions& read = snapshot.options();
  std::int32_t p = kNoPartition;
  if (Status s = members_partition(*impl_, pain_point_ids, read, &p); !s.ok()) return s;

  struct Source {
    std::string_view id;
    std::string prefix;
    std::unique_ptr<rocksdb::Iterator> it;
    bool live() const { return it->Valid() && view(it->key()).substr(0, prefix.size()) == prefix; }
    std::string_view position() const { return view(it->key()).substr(prefix.size()); }
  };
  std::vector<Source> sources;
  sources.reserve(pain_point_ids.size());
  for (const std::string& id : pain_point_ids) {
    Source source{id, impl_->key_in(kMembersByPainPoint, p, keys::member_key(id, "")),
                  std::unique_ptr<rocksdb::Iterator>(impl_->db->NewIterator(read, index))};
    const std::string start = source.prefix + std::string(after);
    source.it->Seek(start);
    if (!after.empty() && source.live() && source.position() == after) source.it->Next();
    sources.push_back(std::move(source));
  }

  std::string value;
  while (true) {
    Source* next = nullptr;
    for (Source& source : sources) {
      if (source.live() && (next == nullptr || source.position() < next->position())) {
        next = &source;
      }
    }
    if (next == nullptr) break;
    const std::string position(next->position());
    next->it->Next();
    if (position.size() <= 8) return {StoreErrc::kCorruption, "undecodable member index key"};
    const std::string_view event_id = std::string_view(position).substr(8);
    rocksdb::Status s = impl_->db->Get(read, impl_->cf(kMembers),
                                       slice(impl_->key_in(kMembers, p, event_id)), &value);
    if (s.IsNotFound() || (s.ok() && value != next->id)) continue;  // re-assigned since
    if (!s.ok()) return from_rocks(s, "read membership");
    s = impl_->db->Get(read, impl_->cf(kEvents), slice(impl_->key_in(kEvents, p, event_id)),
                       &value);
    if (s.IsNotFound()) continue;
    if (!s.ok()) return from_rocks(s, "read event");
    v1::StoredEvent stored;
    if (!stored.ParseFromString(value)) return {StoreErrc::kCorruption, "undecodable event"};
    if (!fn(stored, position)) break;
  }
  for (const Source& source : sources) {
    if (Status st = from_rocks(source.it->status(), "scan members"); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace painpoint::store

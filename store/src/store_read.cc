// The store's point reads and scans: events, memberships, summaries, aggregator state, the time
// index and the member index.
#include <rocksdb/db.h>
#include <rocksdb/iterator.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "listings.h"
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

Status Store::Impl::scan(Family family, std::string_view prefix,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(family)));
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
  if (Status s = impl_->get(kEvents, event_id, &bytes); !s.ok()) return s;
  return decode(bytes, out, "event record");
}

Status Store::get_membership(std::string_view event_id, std::optional<std::string>* out) const {
  return impl_->get(kMembers, event_id, out);
}

Status Store::get_memberships(std::span<const std::string_view> event_ids,
                              std::vector<std::optional<std::string>>* out) const {
  out->assign(event_ids.size(), std::nullopt);
  if (event_ids.empty()) return Status::Ok();
  std::vector<rocksdb::Slice> keys;
  keys.reserve(event_ids.size());
  for (std::string_view id : event_ids) keys.push_back(slice(id));
  std::vector<rocksdb::PinnableSlice> values(event_ids.size());
  std::vector<rocksdb::Status> statuses(event_ids.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(kMembers), keys.size(), keys.data(),
                      values.data(), statuses.data());
  for (std::size_t i = 0; i < event_ids.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return from_rocks(statuses[i], "read memberships");
    (*out)[i] = values[i].ToString();
  }
  return Status::Ok();
}

Status Store::get_summary(std::string_view pain_point_id,
                          std::optional<v1::PainPointSummary>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->get(kPainPoints, pain_point_id, &bytes); !s.ok()) return s;
  return decode(bytes, out, "pain point summary");
}

Status Store::get_state(std::string_view key, std::optional<std::string>* out) const {
  return impl_->get(kAggregatorState, key, out);
}

Status Store::scan_state(
    std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  return impl_->scan(kAggregatorState, prefix, fn);
}

Status Store::scan_summaries(std::string_view product_id,
                             const std::function<bool(const v1::PainPointSummary&)>& fn) const {
  const std::string prefix = keys::product_item_key(product_id, "");
  Status inner = Status::Ok();
  Status s = impl_->scan(kPainPointsByProduct, prefix, [&](std::string_view key, std::string_view) {
    std::optional<v1::PainPointSummary> summary;
    inner = get_summary(key.substr(prefix.size()), &summary);
    if (!inner.ok()) return false;
    if (!summary) return true;  // index entry without record: cannot happen within one batch
    return fn(*summary);
  });
  return s.ok() ? inner : s;
}

Status Store::list_active_pain_points(std::string_view product_id, ListingOrder order,
                                      std::size_t offset, std::size_t limit,
                                      PainPointPage* out) const {
  return listings::list_active(*impl_->db, impl_->cf(kPainPointsByProduct), impl_->cf(kPainPoints),
                               product_id, order, offset, limit, out);
}

Status Store::scan_events_by_time(std::chrono::system_clock::time_point since,
                                  std::chrono::system_clock::time_point until,
                                  const std::function<bool(const v1::StoredEvent&)>& fn) const {
  return scan_events_by_time(since, until, nullptr, fn);
}

namespace {

// Walks the time index over [since, until) in (occurred_at, event id) order, skipping the
// products want_product (if set) rejects, and calls visit(event id) while it returns ok and
// sets *more. The index's value is the product id, so rejected events cost no event read.
Status walk_time_index(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_time,
                       const rocksdb::ReadOptions& read,
                       std::chrono::system_clock::time_point since,
                       std::chrono::system_clock::time_point until,
                       const std::function<bool(std::string_view product_id)>& want_product,
                       const std::function<Status(std::string_view event_id, bool* more)>& visit) {
  const std::int64_t until_us = base::micros_of(until);
  std::string start;
  keys::append_be64(start, keys::order_preserving(base::micros_of(since)));
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, by_time));
  for (it->Seek(start); it->Valid(); it->Next()) {
    auto parsed = keys::parse_time_key(view(it->key()));
    if (!parsed) return {StoreErrc::kCorruption, "undecodable time index key"};
    if (parsed->occurred_at_micros >= until_us) break;
    if (want_product && !want_product(view(it->value()))) continue;
    bool more = true;
    if (Status s = visit(parsed->event_id, &more); !s.ok()) return s;
    if (!more) break;
  }
  return from_rocks(it->status(), "scan events by time");
}

}  // namespace

Status Store::scan_events_by_time(
    std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
    const std::function<bool(std::string_view product_id)>& want_product,
    const std::function<bool(const v1::StoredEvent&)>& fn) const {
  return walk_time_index(*impl_->db, impl_->cf(kByTime), rocksdb::ReadOptions(), since, until,
                         want_product, [&](std::string_view event_id, bool* more) -> Status {
                           std::optional<v1::StoredEvent> event;
                           if (Status s = get_event(event_id, &event); !s.ok()) return s;
                           if (!event)
                             return {StoreErrc::kCorruption, "time index names a missing event"};
                           *more = fn(*event);
                           return Status::Ok();
                         });
}

Status Store::scan_events_by_arrival(
    std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
    const std::function<bool(std::string_view product_id)>& want_product,
    const std::function<bool(const v1::StoredEvent&)>& fn) const {
  const ScopedSnapshot snapshot(impl_->db.get());
  const rocksdb::ReadOptions& read = snapshot.options();

  // Pass 1: the selection (from the time index, as scan_events_by_time) with each event's
  // arrival number. order 0: no arrival number (sorts first); otherwise arrival + 1.
  struct Selected {
    std::uint64_t order;
    std::string event_id;
  };
  std::vector<Selected> selected;
  rocksdb::PinnableSlice value;
  if (Status s =
          walk_time_index(*impl_->db, impl_->cf(kByTime), read, since, until, want_product,
                          [&](std::string_view event_id, bool*) -> Status {
                            value.Reset();
                            const rocksdb::Status got =
                                impl_->db->Get(read, impl_->cf(kEvents), slice(event_id), &value);
                            if (got.IsNotFound()) {
                              return {StoreErrc::kCorruption, "time index names a missing event"};
                            }
                            if (!got.ok()) return from_rocks(got, "read event");
                            std::optional<std::uint64_t> arrival;
                            if (!read_arrival(view(value), &arrival)) {
                              return {StoreErrc::kCorruption, "undecodable event record"};
                            }
                            selected.push_back({arrival ? *arrival + 1 : 0, std::string(event_id)});
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
    for (std::size_t i = 0; i < n; ++i) keys.push_back(slice(selected[begin + i].event_id));
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
      if (!fn(stored)) return Status::Ok();
    }
  }
  return Status::Ok();
}

Status Store::scan_unsaved_events(const std::function<bool(const v1::StoredEvent&)>& fn) const {
  rocksdb::ColumnFamilyHandle* unsaved = impl_->families[kUnsaved];
  if (unsaved == nullptr) return Status::Ok();  // read-only open of a store from before
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), unsaved));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<v1::StoredEvent> event;
    if (Status s = get_event(view(it->value()), &event); !s.ok()) return s;
    if (!event) return {StoreErrc::kCorruption, "the arrival log names a missing event"};
    if (!fn(*event)) break;
  }
  return from_rocks(it->status(), "scan the arrival log");
}

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
    Source source{id, keys::member_key(id, ""),
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
    rocksdb::Status s = impl_->db->Get(read, impl_->cf(kMembers), slice(event_id), &value);
    if (s.IsNotFound() || (s.ok() && value != next->id)) continue;  // re-assigned since
    if (!s.ok()) return from_rocks(s, "read membership");
    s = impl_->db->Get(read, impl_->cf(kEvents), slice(event_id), &value);
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

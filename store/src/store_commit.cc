// The write path: dedupe of event ids and commit(), which writes a batch in one WriteBatch.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "alert_records.h"
#include "listings.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "store_internal.h"

namespace painpoint::store {
namespace {

// Indices of `keys` in bytewise (RocksDB's default comparator) order, equal keys in their given
// order (a stable sort). The first 16 bytes of each key, zero-padded, are compared as two
// big-endian integers; their order is the bytewise order unless they are equal, and only then
// are the whole keys compared (a memcmp call per comparison was most of a sort's cost).
std::vector<std::uint32_t> bytewise_order(std::span<const std::string_view> keys) {
  struct Packed {
    std::uint64_t high;
    std::uint64_t low;
    std::uint32_t index;
  };
  auto load = [](std::string_view key, std::size_t from) {
    std::uint64_t v = 0;
    for (std::size_t i = from; i < from + 8; ++i) {
      v = (v << 8) | (i < key.size() ? static_cast<unsigned char>(key[i]) : 0u);
    }
    return v;
  };
  std::vector<Packed> packed(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    packed[i] = Packed{load(keys[i], 0), load(keys[i], 8), static_cast<std::uint32_t>(i)};
  }
  std::sort(packed.begin(), packed.end(), [&keys](const Packed& a, const Packed& b) {
    if (a.high != b.high) return a.high < b.high;
    if (a.low != b.low) return a.low < b.low;
    if (const int c = keys[a.index].compare(keys[b.index]); c != 0) return c < 0;
    return a.index < b.index;
  });
  std::vector<std::uint32_t> order(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) order[i] = packed[i].index;
  return order;
}

// The puts and deletes of one commit per column family, handed to the WriteBatch in key order
// (stable: operations on one key keep their order). Event and pain point ids are random, and the
// memtable's skip list inserts a run of ascending keys from where the previous insert ended instead
// of searching from the top for each one: measured, this was most of the cost of a commit.
class KeyOrderedWrites {
 public:
  void put(Family family, std::string_view key, std::string_view value) {
    ops_[family].push_back(Op{std::string(key), std::string(value), false});
  }
  void erase(Family family, std::string_view key) {
    ops_[family].push_back(Op{std::string(key), {}, true});
  }
  template <class HandleOf>
  rocksdb::Status append_to(rocksdb::WriteBatch& wb, HandleOf handle_of) {
    std::vector<std::string_view> keys;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      const auto& ops = ops_[f];
      keys.clear();
      for (const Op& op : ops) keys.emplace_back(op.key);
      rocksdb::ColumnFamilyHandle* cf = handle_of(static_cast<Family>(f));
      for (std::uint32_t i : bytewise_order(keys)) {
        const Op& op = ops[i];
        rocksdb::Status s = op.erase ? wb.Delete(cf, op.key) : wb.Put(cf, op.key, op.value);
        if (!s.ok()) return s;
      }
    }
    return rocksdb::Status::OK();
  }

 private:
  struct Op {
    std::string key;
    std::string value;
    bool erase = false;
  };
  std::array<std::vector<Op>, kFamilyCount> ops_;
};

}  // namespace

Status Store::Impl::write(rocksdb::WriteBatch* batch, std::string_view what) {
  std::lock_guard lock(write_mutex);
  if (write_failure) return *write_failure;
  if (Status s = check_free_space(batch->GetDataSize(), what); !s.is_ok()) return s;
  Status status = from_rocks(db->Write(write_options, batch), what);
  if (status.code() == StoreErrc::kIoError || status.code() == StoreErrc::kNoSpace) {
    write_failure = status;
  }
  return status;
}

Status Store::Impl::check_free_space(std::size_t write_bytes, std::string_view what) const {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return Status::ok();  // unknown: let RocksDB tell
  const std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  if (free_bytes >= options.min_free_bytes + write_bytes) return Status::ok();
  return {StoreErrc::kNoSpace,
          std::string(what) + ": " + std::to_string(free_bytes >> 20) + " MiB free on the file " +
              "system of " + dir.string() + ", less than the " +
              std::to_string(options.min_free_bytes >> 20) +
              " MiB the store keeps free (No space left on device); free space and restart"};
}

Status Store::filter_new_events(std::span<const std::string_view> event_ids,
                                std::vector<std::size_t>* new_indices) const {
  if (event_ids.empty()) return Status::ok();
  // MultiGet wants its keys in bytewise order and otherwise sorts them itself, through the
  // comparator (a memcmp call per comparison: half of this function's cost with 50,000 ids).
  // Sorted here by their first 16 bytes as two integers, the rest compared only on a tie.
  const std::vector<std::uint32_t> order = bytewise_order(event_ids);
  std::vector<rocksdb::Slice> keys;
  keys.reserve(event_ids.size());
  for (std::uint32_t i : order) keys.push_back(slice(event_ids[i]));
  std::vector<rocksdb::PinnableSlice> values(event_ids.size());
  std::vector<rocksdb::Status> sorted_statuses(event_ids.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(kEvents), keys.size(), keys.data(),
                      values.data(), sorted_statuses.data(), /*sorted_input=*/true);
  std::vector<const rocksdb::Status*> statuses(event_ids.size());
  for (std::size_t k = 0; k < order.size(); ++k) statuses[order[k]] = &sorted_statuses[k];
  std::unordered_set<std::string_view> seen;
  seen.reserve(event_ids.size());
  for (std::size_t i = 0; i < event_ids.size(); ++i) {
    if (statuses[i]->ok()) continue;  // already stored
    if (!statuses[i]->IsNotFound()) return from_rocks(*statuses[i], "look up event id");
    if (!seen.insert(event_ids[i]).second) continue;  // repeated within this batch
    new_indices->push_back(i);
  }
  return Status::ok();
}

Status Store::commit(const CommitBatch& batch) {
  Impl& impl = *impl_;
  rocksdb::WriteBatch& wb = impl.commit_batch;
  wb.Clear();
  auto check = [](const rocksdb::Status& s) { return from_rocks(s, "build write batch"); };
  KeyOrderedWrites writes;

  std::map<std::string, v1::ProductStats, std::less<>> touched;
  // The counters of a product this commit changes, starting from the stored ones.
  auto stats_for = [&](const std::string& product) -> v1::ProductStats& {
    auto [it, inserted] = touched.try_emplace(product);
    if (inserted) {
      std::shared_lock lock(impl.counters_mutex);
      if (auto existing = impl.products.find(product); existing != impl.products.end()) {
        it->second = existing->second;
      } else {
        it->second.set_product_id(product);
      }
    }
    return it->second;
  };
  std::string buffer;
  // Events are numbered in arrival order; event_count is the next number (events are never
  // deleted, so numbers are unique and grow across commits and restarts). The number goes into
  // the event record (for replay in arrival order) and, until the next checkpoint, into the
  // arrival log.
  auto arrival = static_cast<std::uint64_t>(event_count());
  std::string arrival_key;
  for (const v1::StoredEvent& stored : batch.events) {
    const v1::FeedbackEvent& event = stored.event();
    buffer.clear();
    stored.SerializeToString(&buffer);
    append_arrival(buffer, arrival);
    writes.put(kEvents, event.event_id(), buffer);
    if (!batch.aggregator_checkpoint) {
      arrival_key.clear();
      keys::append_be64(arrival_key, arrival);
      if (Status s = check(wb.Put(impl.cf(kUnsaved), arrival_key, slice(event.event_id())));
          !s.is_ok()) {
        return s;
      }
    }
    ++arrival;
    const std::string tkey = keys::time_key(to_micros(event.occurred_at()), event.event_id());
    writes.put(kByTime, tkey, event.product_id());
    v1::ProductStats& stats = stats_for(event.product_id());
    stats.set_event_count(stats.event_count() + 1);
    switch (event.source()) {
      case v1::SOURCE_CUSTOMER:
        stats.set_customer_count(stats.customer_count() + 1);
        break;
      case v1::SOURCE_SALES:
        stats.set_sales_count(stats.sales_count() + 1);
        break;
      case v1::SOURCE_SUPPORT:
        stats.set_support_count(stats.support_count() + 1);
        break;
      default:
        break;
    }
  }
  // The summaries' index entries carry their listing; the products' pain point counters change
  // by what those listings replace.
  std::vector<std::string> listing_values;
  listings::CountDeltas count_deltas;
  if (Status s = listings::prepare_upserts(*impl.db, impl.cf(kPainPointsByProduct), batch.summaries,
                                           &listing_values, &count_deltas);
      !s.is_ok()) {
    return s;
  }
  for (const auto& [product, delta] : count_deltas) {
    if (delta.active == 0 && delta.versions == 0) continue;
    v1::ProductStats& stats = stats_for(product);
    stats.set_active_pain_points(stats.active_pain_points() + delta.active);
    stats.set_summary_versions(stats.summary_versions() + delta.versions);
  }
  for (const auto& [product, stats] : touched) {
    if (Status s = check(wb.Put(product_key(product), stats.SerializeAsString())); !s.is_ok()) {
      return s;
    }
  }
  const std::int64_t new_event_count =
      event_count() + static_cast<std::int64_t>(batch.events.size());
  if (!batch.events.empty()) {
    if (Status s = check(
            wb.Put(slice(kEventCountKey), be64_value(static_cast<std::uint64_t>(new_event_count))));
        !s.is_ok()) {
      return s;
    }
  }

  if (batch.aggregator_checkpoint) {
    // The aggregator state of this batch covers every event stored so far.
    if (Status s = check(wb.DeleteRange(impl.cf(kUnsaved), be64_value(0),
                                        be64_value(static_cast<std::uint64_t>(new_event_count))));
        !s.is_ok()) {
      return s;
    }
  }

  for (const InputOffset& offset : batch.offsets) {
    std::string key(kOffsetPrefix);
    key += keys::offset_key(offset.topic, offset.partition);
    if (Status s = check(wb.Put(key, be64_value(static_cast<std::uint64_t>(offset.next_offset))));
        !s.is_ok()) {
      return s;
    }
  }
  if (batch.kafka_cluster_id) {
    if (Status s = check(wb.Put(slice(kClusterIdKey), *batch.kafka_cluster_id)); !s.is_ok()) {
      return s;
    }
  }
  for (const KeyWrite& write : batch.aggregator_state) {
    if (write.value) {
      writes.put(kAggregatorState, write.key, *write.value);
    } else {
      writes.erase(kAggregatorState, write.key);
    }
  }
  for (const std::string& event_id : batch.removed_memberships) {
    std::optional<std::string> previous;
    if (Status s = get_membership(event_id, &previous); !s.is_ok()) return s;
    if (!previous) continue;
    writes.erase(kMembers, event_id);
    std::optional<v1::StoredEvent> stored;
    if (Status s = get_event(event_id, &stored); !s.is_ok()) return s;
    if (!stored) continue;
    writes.erase(
        kMembersByPainPoint,
        keys::member_key(
            *previous, keys::member_position(to_micros(stored->event().occurred_at()), event_id)));
  }
  // The time of a membership's event if this batch stores it. Memberships usually come in the
  // order of the events (the stage adds both per event), so the event at the same position is
  // tried first; the map of every event's time is built only when that fails.
  std::unordered_map<std::string_view, std::int64_t> batch_times;
  bool batch_times_built = false;
  auto time_in_batch = [&](std::size_t position,
                           std::string_view event_id) -> std::optional<std::int64_t> {
    if (position < batch.events.size() && batch.events[position].event().event_id() == event_id) {
      return to_micros(batch.events[position].event().occurred_at());
    }
    if (!batch_times_built) {
      batch_times_built = true;
      batch_times.reserve(batch.events.size());
      for (const v1::StoredEvent& stored : batch.events) {
        batch_times.emplace(stored.event().event_id(), to_micros(stored.event().occurred_at()));
      }
    }
    if (auto found = batch_times.find(event_id); found != batch_times.end()) return found->second;
    return std::nullopt;
  };
  if (!batch.memberships_known.empty() &&
      batch.memberships_known.size() != batch.memberships.size()) {
    return {StoreErrc::kInvalidArgument, "memberships_known must match memberships"};
  }
  for (std::size_t mi = 0; mi < batch.memberships.size(); ++mi) {
    const MembershipWrite& m = batch.memberships[mi];
    const std::optional<KnownMembership>* known =
        batch.memberships_known.empty() ? nullptr : &batch.memberships_known[mi];
    writes.put(kMembers, m.event_id, m.pain_point_id);
    std::int64_t micros = 0;
    if (const std::optional<std::int64_t> in_batch = time_in_batch(mi, m.event_id)) {
      micros = *in_batch;
    } else if (known != nullptr && known->has_value()) {
      micros = (*known)->occurred_at_micros;
      const auto& previous = (*known)->current_pain_point_id;
      if (previous && *previous != m.pain_point_id) {
        writes.erase(kMembersByPainPoint,
                     keys::member_key(*previous, keys::member_position(micros, m.event_id)));
      }
    } else {
      // An event stored by an earlier batch changes pain point (curation): move its index entry.
      std::optional<v1::StoredEvent> stored;
      if (Status s = get_event(m.event_id, &stored); !s.is_ok()) return s;
      if (!stored) continue;  // no event to list; the membership alone is kept as before
      micros = to_micros(stored->event().occurred_at());
      std::optional<std::string> previous;
      if (Status s = get_membership(m.event_id, &previous); !s.is_ok()) return s;
      if (previous && *previous != m.pain_point_id) {
        const std::string old_key =
            keys::member_key(*previous, keys::member_position(micros, m.event_id));
        writes.erase(kMembersByPainPoint, old_key);
      }
    }
    const std::string key =
        keys::member_key(m.pain_point_id, keys::member_position(micros, m.event_id));
    writes.put(kMembersByPainPoint, key, {});
  }
  std::uint64_t next_sequence;
  {
    std::shared_lock lock(impl.counters_mutex);
    next_sequence = impl.next_outbox_sequence;
  }
  for (std::size_t i = 0; i < batch.summaries.size(); ++i) {
    const v1::PainPointSummary& summary = batch.summaries[i];
    buffer.clear();
    summary.SerializeToString(&buffer);
    writes.put(kPainPoints, summary.id(), buffer);
    writes.put(kPainPointsByProduct, keys::product_item_key(summary.product_id(), summary.id()),
               listing_values[i]);
    if (batch.publish_summaries) {
      if (Status s = check(wb.Put(impl.cf(kOutbox), be64_value(next_sequence++), buffer));
          !s.is_ok()) {
        return s;
      }
    }
  }
  for (const v1::PainPointSummary& summary : batch.outbox) {
    if (Status s = check(
            wb.Put(impl.cf(kOutbox), be64_value(next_sequence++), summary.SerializeAsString()));
        !s.is_ok()) {
      return s;
    }
  }
  if (!batch.outbox.empty() || (batch.publish_summaries && !batch.summaries.empty())) {
    if (Status s = check(wb.Put(slice(kOutboxSequenceKey), be64_value(next_sequence)));
        !s.is_ok()) {
      return s;
    }
  }

  std::uint64_t next_alert;
  {
    std::shared_lock lock(impl.counters_mutex);
    next_alert = impl.next_alert_sequence;
  }
  if (Status s = check(alert_records::append(wb, impl.cf(kAlerts), batch.alerts, &next_alert));
      !s.is_ok()) {
    return s;
  }
  if (Status s = check(writes.append_to(wb, [&impl](Family f) { return impl.cf(f); }));
      !s.is_ok()) {
    return s;
  }
  const Status written = impl.write(&wb, "commit batch");
  if (wb.Data().capacity() > Impl::kRetainedCommitBytes) wb = rocksdb::WriteBatch();
  if (!written.is_ok()) return written;
  std::unique_lock lock(impl.counters_mutex);
  impl.event_count = new_event_count;
  impl.next_outbox_sequence = next_sequence;
  impl.next_alert_sequence = next_alert;
  for (auto& [product, stats] : touched) impl.products[product] = std::move(stats);
  return Status::ok();
}

}  // namespace painpoint::store

// The write path: dedupe of event ids, and commit() as prepare_commit() (read what the batch
// needs, build its writes) followed by write_prepared() (one WriteBatch, then the counters).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "alert_records.h"
#include "listings.h"
#include "partition_ranges.h"
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

}  // namespace

// The writes of one commit. The records of the default family, the arrival log, the outboxes
// and the alerts go into the WriteBatch first, in the order they were added; then the puts and
// deletes of the other families, per family in key order (stable: operations on one key keep
// their order). Event and pain point ids are random, and the memtable's skip list inserts a run
// of ascending keys from where the previous insert ended instead of searching from the top for
// each one: measured, this was most of the cost of a commit.
class CommitWrites {
 public:
  struct Op {
    Family family;
    WriteKind kind;
    std::string key;
    std::string value;  // kDeleteRange: the end of the range
  };
  // The counters a commit starts from and leaves, so that they change only when its write did.
  struct Counters {
    std::uint64_t generation = 0;  // commits written since open
    std::int64_t event_count = 0;
    // Per partition: the next arrival number and outbox sequence (all partitions known).
    std::map<std::int32_t, std::uint64_t> next_arrival;
    std::map<std::int32_t, std::uint64_t> next_outbox_sequence;
    std::uint64_t next_alert_sequence = 1;
  };

  std::vector<Op> in_order;
  std::array<std::vector<Op>, kFamilyCount> key_ordered;
  std::array<std::vector<std::uint32_t>, kFamilyCount> key_order;  // set by order_keys()
  Counters before;
  Counters after;
  // The counters of the products this commit changes, as they are after it, and their partitions.
  std::map<std::string, v1::ProductStats, std::less<>> products;
  std::map<std::string, std::int32_t, std::less<>> product_partitions;
  // The partitions this commit writes records of.
  std::set<std::int32_t> partitions;
  // How the arrival logs' index (Store::Impl::arrival_logs) changes with this commit.
  struct ArrivalLogChange {
    bool cleared = false;  // a checkpoint: every partition's whole log goes
    // Products whose saved state now covers all their entries, with their partitions.
    std::vector<std::pair<std::string, std::int32_t>> saved;
    // Each product logged here: its partition and its first entry's arrival number.
    std::map<std::string, std::pair<std::int32_t, std::uint64_t>, std::less<>> first_logged;
    // Partitions whose log is now deleted below the arrival number given.
    std::map<std::int32_t, std::uint64_t> cleared_through;
  };
  ArrivalLogChange arrival_log;

  // Keys and values are taken by value and moved: most are built for the call, and copying
  // every one of them again cost an allocation and a copy per record.
  void put_in_order(Family family, std::string key, std::string value) {
    in_order.push_back(Op{family, WriteKind::kPut, std::move(key), std::move(value)});
  }
  void put(Family family, std::string key, std::string value) {
    key_ordered[family].push_back(Op{family, WriteKind::kPut, std::move(key), std::move(value)});
  }
  void erase(Family family, std::string key) {
    key_ordered[family].push_back(Op{family, WriteKind::kDelete, std::move(key), {}});
  }

  void order_keys() {
    std::vector<std::string_view> keys;
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      keys.clear();
      for (const Op& op : key_ordered[f]) keys.emplace_back(op.key);
      key_order[f] = bytewise_order(keys);
    }
  }

  // Calls fn(op) for every write in WriteBatch order.
  template <class Fn>
  void for_each(Fn fn) const {
    for (const Op& op : in_order) fn(op);
    for (std::size_t f = 0; f < kFamilyCount; ++f) {
      for (std::uint32_t i : key_order[f]) fn(key_ordered[f][i]);
    }
  }
};

struct PreparedCommit::Impl {
  CommitWrites writes;
  bool partitioned = true;  // the store's layout: whether keys carry a partition prefix
  // Default-family records written after `writes` and never listed by writes() (a partition's
  // changelog checkpoint: it describes the changelog, so it cannot be on it).
  std::vector<std::pair<std::string, std::string>> local;
};

PreparedCommit::PreparedCommit() = default;
PreparedCommit::~PreparedCommit() = default;
PreparedCommit::PreparedCommit(PreparedCommit&&) noexcept = default;
PreparedCommit& PreparedCommit::operator=(PreparedCommit&&) noexcept = default;

std::vector<PreparedWrite> PreparedCommit::writes() const {
  std::vector<PreparedWrite> out;
  if (!impl_) return out;
  const bool partitioned = impl_->partitioned;
  impl_->writes.for_each([&out, partitioned](const CommitWrites::Op& op) {
    PreparedWrite write{kFamilyNames[op.family], op.kind, op.key, op.value};
    if (partitioned && op.family == kMeta &&
        op.key.starts_with(partition_ranges::kMetaPartitionPrefix)) {
      // A partition's own record (counters, product statistics, input offset).
      const std::string_view rest =
          std::string_view(op.key).substr(partition_ranges::kMetaPartitionPrefix.size());
      if (const auto parsed = keys::parse_partitioned_key(rest)) {
        write.partition = parsed->partition;
        write.key = parsed->key;
      }
    } else if (partitioned && partition_ranges::is_partitioned(op.family)) {
      const auto parsed = keys::parse_partitioned_key(op.key);
      if (parsed) {
        write.partition = parsed->partition;
        write.key = parsed->key;
        if (op.kind == WriteKind::kDeleteRange) write.value = write.value.substr(2);
      }
    }
    out.push_back(write);
  });
  return out;
}

Status Store::Impl::write(rocksdb::WriteBatch* batch, std::string_view what) {
  std::lock_guard lock(write_mutex);
  if (write_failure) return *write_failure;
  if (Status s = check_free_space(batch->GetDataSize(), what); !s.ok()) return s;
  Status status = from_rocks(db->Write(write_options, batch), what);
  if (status.code == StoreErrc::kIoError || status.code == StoreErrc::kNoSpace) {
    write_failure = status;
  }
  return status;
}

Status Store::Impl::check_free_space(std::size_t write_bytes, std::string_view what) const {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) return Status::Ok();  // unknown: let RocksDB tell
  const std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  if (free_bytes >= options.min_free_bytes + write_bytes) return Status::Ok();
  return {StoreErrc::kNoSpace,
          std::string(what) + ": " + std::to_string(free_bytes >> 20) + " MiB free on the file " +
              "system of " + dir.string() + ", less than the " +
              std::to_string(options.min_free_bytes >> 20) +
              " MiB the store keeps free (No space left on device); free space and restart"};
}

namespace {

// Marks stored[indices[k]] for each keys[k] found in `events` (one MultiGet). MultiGet wants its
// keys in bytewise order and otherwise sorts them itself, through the comparator (a memcmp call
// per comparison: half of the dedupe's cost with 50,000 ids); sorted here by their first 16
// bytes as two integers, the rest compared only on a tie.
Status mark_stored(const Store::Impl& impl, std::span<const std::string_view> keys,
                   std::span<const std::size_t> indices, std::vector<char>* stored) {
  if (keys.empty()) return Status::Ok();
  const std::vector<std::uint32_t> order = bytewise_order(keys);
  std::vector<rocksdb::Slice> sorted;
  sorted.reserve(keys.size());
  for (std::uint32_t i : order) sorted.push_back(slice(keys[i]));
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  impl.db->MultiGet(rocksdb::ReadOptions(), impl.cf(kEvents), sorted.size(), sorted.data(),
                    values.data(), statuses.data(), /*sorted_input=*/true);
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (statuses[k].ok()) {
      (*stored)[indices[order[k]]] = 1;
    } else if (!statuses[k].IsNotFound()) {
      return from_rocks(statuses[k], "look up event id");
    }
  }
  return Status::Ok();
}

// Appends the indices of the ids neither stored nor repeated earlier in the span.
void append_new(std::span<const std::string_view> event_ids, const std::vector<char>& stored,
                std::vector<std::size_t>* new_indices) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(event_ids.size());
  for (std::size_t i = 0; i < event_ids.size(); ++i) {
    if (stored[i] != 0) continue;                       // already stored
    if (!seen.insert(event_ids[i]).second) continue;  // repeated within this batch
    new_indices->push_back(i);
  }
}

}  // namespace

Status Store::filter_new_events(std::span<const std::string_view> event_ids,
                                std::vector<std::size_t>* new_indices) const {
  if (event_ids.empty()) return Status::Ok();
  std::vector<char> stored(event_ids.size(), 0);
  std::vector<std::string> owned;
  std::vector<std::string_view> keys;
  std::vector<std::size_t> indices;
  for (std::int32_t p : impl_->read_partitions()) {
    owned.clear();
    indices.clear();
    for (std::size_t i = 0; i < event_ids.size(); ++i) {
      if (stored[i] != 0) continue;
      owned.push_back(impl_->key_in(kEvents, p, event_ids[i]));
      indices.push_back(i);
    }
    keys.assign(owned.begin(), owned.end());
    if (Status s = mark_stored(*impl_, keys, indices, &stored); !s.ok()) return s;
  }
  append_new(event_ids, stored, new_indices);
  return Status::Ok();
}

Status Store::filter_new_events(std::span<const std::string_view> event_ids,
                                std::span<const std::int32_t> partitions,
                                std::vector<std::size_t>* new_indices) const {
  if (event_ids.empty()) return Status::Ok();
  if (partitions.size() != event_ids.size()) {
    return {StoreErrc::kInvalidArgument, "one partition per event id expected"};
  }
  std::vector<char> stored(event_ids.size(), 0);
  if (!impl_->partitioned) {
    std::vector<std::size_t> indices(event_ids.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
    if (Status s = mark_stored(*impl_, event_ids, indices, &stored); !s.ok()) return s;
  } else {
    // Prefixed keys sort by partition first, so one MultiGet covers every partition.
    std::vector<std::string> owned(event_ids.size());
    for (std::size_t i = 0; i < event_ids.size(); ++i) {
      if (!keys::valid_partition(partitions[i])) {
        return {StoreErrc::kInvalidArgument, "event " + std::string(event_ids[i]) +
                                                 " of invalid partition " +
                                                 std::to_string(partitions[i])};
      }
      owned[i] = keys::partitioned_key(partitions[i], event_ids[i]);
    }
    const std::vector<std::string_view> keys(owned.begin(), owned.end());
    std::vector<std::size_t> indices(event_ids.size());
    for (std::size_t i = 0; i < indices.size(); ++i) indices[i] = i;
    if (Status s = mark_stored(*impl_, keys, indices, &stored); !s.ok()) return s;
  }
  append_new(event_ids, stored, new_indices);
  return Status::Ok();
}

namespace {

// The time of a membership's event if the batch stores it. Memberships usually come in the
// order of the events (the stage adds both per event), so the event at the same position is
// tried first; the map of every event's time is built only when that fails.
class BatchEventTimes {
 public:
  explicit BatchEventTimes(const std::vector<v1::StoredEvent>& events) : events_(events) {}

  std::optional<std::int64_t> find(std::size_t position, std::string_view event_id) {
    if (position < events_.size() && events_[position].event().event_id() == event_id) {
      return to_micros(events_[position].event().occurred_at());
    }
    if (!built_) {
      built_ = true;
      times_.reserve(events_.size());
      for (const v1::StoredEvent& stored : events_) {
        times_.emplace(stored.event().event_id(), to_micros(stored.event().occurred_at()));
      }
    }
    if (auto found = times_.find(event_id); found != times_.end()) return found->second;
    return std::nullopt;
  }

 private:
  const std::vector<v1::StoredEvent>& events_;
  std::unordered_map<std::string_view, std::int64_t> times_;
  bool built_ = false;
};

// kInvalidArgument unless batch.product_partitions is empty or names a valid partition for every
// product the batch's records name, the events' own input partitions included.
Status check_product_partitions(const CommitBatch& batch) {
  const auto& partitions = batch.product_partitions;
  if (partitions.empty()) return Status::Ok();
  for (const auto& [product, partition] : partitions) {
    if (!keys::valid_partition(partition)) {
      return {StoreErrc::kInvalidArgument,
              "product " + product + ": partition " + std::to_string(partition) + " is invalid"};
    }
  }
  auto missing = [&](std::string_view product, std::string_view what,
                     std::string_view name) -> Status {
    if (partitions.contains(product)) return Status::Ok();
    return {StoreErrc::kInvalidArgument, "no partition for product " + std::string(product) +
                                             " of " + std::string(what) + " " + std::string(name)};
  };
  for (const v1::StoredEvent& e : batch.events) {
    const auto it = partitions.find(e.event().product_id());
    if (it == partitions.end() || it->second != e.input_partition()) {
      return {StoreErrc::kInvalidArgument,
              "event " + e.event().event_id() + " of input partition " +
                  std::to_string(e.input_partition()) + " has another partition for product " +
                  e.event().product_id()};
    }
  }
  for (const KeyWrite& w : batch.aggregator_state) {
    if (Status s = missing(w.product_id, "state key", w.key); !s.ok()) return s;
  }
  for (const MembershipWrite& m : batch.memberships) {
    if (Status s = missing(m.product_id, "the membership of", m.event_id); !s.ok()) return s;
  }
  for (const auto* summaries : {&batch.summaries, &batch.outbox}) {
    for (const v1::PainPointSummary& summary : *summaries) {
      if (Status s = missing(summary.product_id(), "pain point", summary.id()); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

}  // namespace

// Builds the writes of one CommitBatch, one step per kind of record, in the order the
// WriteBatch has always held them. Reads only: the store changes in write_prepared().
class Store::Impl::CommitPreparation {
 public:
  CommitPreparation(const Impl& impl, const CommitBatch& batch, CommitWrites& out)
      : impl_(impl),
        batch_(batch),
        out_(out),
        saved_products_(batch.state_saved_for.begin(), batch.state_saved_for.end()) {}

  Status run() {
    if (Status s = check_product_partitions(batch_); !s.ok()) return s;
    take_counters();
    if (Status s = resolve_partitions(); !s.ok()) return s;
    add_events();
    if (Status s = add_listing_counts(); !s.ok()) return s;
    add_counters();
    add_offsets();
    add_aggregator_state();
    if (Status s = add_removed_memberships(); !s.ok()) return s;
    if (Status s = add_memberships(); !s.ok()) return s;
    add_summaries_and_outbox();
    add_alerts();
    out_.order_keys();
    return Status::Ok();
  }

 private:
  void take_counters() {
    std::shared_lock lock(impl_.counters_mutex);
    out_.before = {impl_.commit_generation, impl_.event_count, impl_.next_arrival,
                   impl_.next_outbox_sequence, impl_.next_alert_sequence};
    out_.after = out_.before;
    ++out_.after.generation;
  }

  // The partition of every product the batch names (kNoPartition in schema 2): the batch's map,
  // else an event's input partition, else where the store holds the product already.
  Status resolve_partitions() {
    // `what` and `name` say which record named the product, for the error only.
    auto resolve = [&](const std::string& product, std::string_view what,
                       std::string_view name) -> Status {
      if (out_.product_partitions.contains(product)) return Status::Ok();
      std::int32_t p = kNoPartition;
      if (impl_.partitioned) {
        const std::optional<std::int32_t> stored = impl_.partition_of_product(product);
        if (const auto named = batch_.product_partitions.find(product);
            named != batch_.product_partitions.end()) {
          p = named->second;
        } else if (stored) {
          p = *stored;
        } else if (batch_.product_partitions.empty()) {
          p = 0;  // a batch naming no partition: the layout of a single-partition input
        } else {
          return {StoreErrc::kInvalidArgument,
                  "no partition for product " + product + " of " + std::string(what) + " " +
                      std::string(name) + " (CommitBatch::product_partitions)"};
        }
        if (stored && *stored != p) {
          return {StoreErrc::kInvalidArgument, "product " + product + " is stored in partition " +
                                                   std::to_string(*stored) + ", not " +
                                                   std::to_string(p)};
        }
        out_.partitions.insert(p);
      }
      out_.product_partitions.emplace(product, p);
      return Status::Ok();
    };
    for (const v1::StoredEvent& e : batch_.events) {
      const std::string& product = e.event().product_id();
      if (impl_.partitioned && !batch_.product_partitions.contains(product) &&
          !out_.product_partitions.contains(product) && !impl_.partition_of_product(product)) {
        if (!keys::valid_partition(e.input_partition())) {
          return {StoreErrc::kInvalidArgument, "event " + e.event().event_id() +
                                                   " has an invalid input partition"};
        }
        out_.product_partitions.emplace(product, e.input_partition());
        out_.partitions.insert(e.input_partition());
      }
      if (Status s = resolve(product, "event", e.event().event_id()); !s.ok()) return s;
    }
    for (const KeyWrite& w : batch_.aggregator_state) {
      if (Status s = resolve(w.product_id, "state key", w.key); !s.ok()) return s;
    }
    for (const MembershipWrite& m : batch_.memberships) {
      if (Status s = resolve(m.product_id, "the membership of", m.event_id); !s.ok()) return s;
    }
    for (const auto* summaries : {&batch_.summaries, &batch_.outbox}) {
      for (const v1::PainPointSummary& summary : *summaries) {
        if (Status s = resolve(summary.product_id(), "pain point", summary.id()); !s.ok()) {
          return s;
        }
      }
    }
    return Status::Ok();
  }

  std::int32_t partition(const std::string& product) const {
    return out_.product_partitions.at(product);
  }

  // The counters of a product this commit changes, starting from the stored ones.
  v1::ProductStats& stats_for(const std::string& product) {
    auto [it, inserted] = out_.products.try_emplace(product);
    if (inserted) {
      std::shared_lock lock(impl_.counters_mutex);
      if (auto existing = impl_.products.find(product); existing != impl_.products.end()) {
        it->second = existing->second;
      } else {
        it->second.set_product_id(product);
      }
    }
    return it->second;
  }

  // Events are numbered in arrival order; event_count is the next number (events are never
  // deleted, so numbers are unique and grow across commits and restarts). The number goes into
  // the event record (for replay in arrival order) and, until the next checkpoint, into the
  // arrival log.
  void add_events() {
    for (const v1::StoredEvent& stored : batch_.events) {
      const v1::FeedbackEvent& event = stored.event();
      const std::int32_t p = partition(event.product_id());
      std::uint64_t& arrival = out_.after.next_arrival[p];  // 0 for a new partition
      buffer_.clear();
      stored.SerializeToString(&buffer_);
      append_arrival(buffer_, arrival);
      out_.put(kEvents, impl_.key_in(kEvents, p, event.event_id()), buffer_);
      if (!batch_.aggregator_checkpoint && !saved_products_.contains(event.product_id())) {
        out_.put_in_order(kUnsaved, impl_.key_in(kUnsaved, p, be64_value(arrival)),
                          event.event_id());
        out_.arrival_log.first_logged.try_emplace(event.product_id(), p, arrival);
      }
      ++arrival;
      const std::string tkey = keys::time_key(to_micros(event.occurred_at()), event.event_id());
      out_.put(kByTime, impl_.key_in(kByTime, p, tkey), event.product_id());
      count_event(stats_for(event.product_id()), event.source());
    }
    out_.after.event_count =
        out_.before.event_count + static_cast<std::int64_t>(batch_.events.size());
  }

  static void count_event(v1::ProductStats& stats, v1::Source source) {
    stats.set_event_count(stats.event_count() + 1);
    switch (source) {
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
  Status add_listing_counts() {
    listings::CountDeltas count_deltas;
    listing_keys_.clear();
    listing_keys_.reserve(batch_.summaries.size());
    for (const v1::PainPointSummary& summary : batch_.summaries) {
      listing_keys_.push_back(
          impl_.key_in(kPainPointsByProduct, partition(summary.product_id()),
                       keys::product_item_key(summary.product_id(), summary.id())));
    }
    if (Status s = listings::prepare_upserts(*impl_.db, impl_.cf(kPainPointsByProduct),
                                             batch_.summaries, listing_keys_, &listing_values_,
                                             &count_deltas);
        !s.ok()) {
      return s;
    }
    for (const auto& [product, delta] : count_deltas) {
      if (delta.active == 0 && delta.versions == 0) continue;
      v1::ProductStats& stats = stats_for(product);
      stats.set_active_pain_points(stats.active_pain_points() + delta.active);
      stats.set_summary_versions(stats.summary_versions() + delta.versions);
    }
    return Status::Ok();
  }

  void add_counters() {
    if (!batch_.aggregator_checkpoint) mark_saved_states();
    for (const auto& [product, stats] : out_.products) {
      out_.put_in_order(kMeta, impl_.meta_in(partition(product), product_key(product)),
                        stats.SerializeAsString());
    }
    // A partition's next arrival number is written with its first record of any kind: open()
    // lists the partitions from these.
    for (std::int32_t p : out_.partitions) out_.after.next_arrival.try_emplace(p, 0);
    for (const auto& [p, next] : out_.after.next_arrival) {
      const auto before = out_.before.next_arrival.find(p);
      if (before != out_.before.next_arrival.end() && before->second == next) continue;
      out_.put_in_order(kMeta, impl_.meta_in(p, kEventCountKey), be64_value(next));
    }
    if (batch_.aggregator_checkpoint) {
      // The aggregator state of this batch covers every event stored so far.
      for (const auto& [p, next] : out_.after.next_arrival) {
        out_.in_order.push_back(CommitWrites::Op{kUnsaved, WriteKind::kDeleteRange,
                                                 impl_.key_in(kUnsaved, p, be64_value(0)),
                                                 impl_.key_in(kUnsaved, p, be64_value(next))});
      }
      out_.arrival_log.cleared = true;
      return;
    }
    clear_covered_logs();
  }

  // The products whose whole state this commit saves: their statistics record the arrival
  // number it covers their events below (this batch's own are not logged). A product without
  // statistics has no events, so nothing of it is logged.
  void mark_saved_states() {
    for (const std::string& product : batch_.state_saved_for) {
      if (!out_.products.contains(product) && !has_stored_stats(product)) continue;
      const auto named = out_.product_partitions.find(product);
      const std::optional<std::int32_t> p = named != out_.product_partitions.end()
                                                ? std::optional(named->second)
                                                : impl_.partition_of_product(product);
      if (!p) continue;
      const auto next = out_.after.next_arrival.find(*p);
      if (next == out_.after.next_arrival.end()) continue;
      out_.product_partitions.emplace(product, *p);
      stats_for(product).set_state_saved_through(next->second);
      out_.arrival_log.saved.emplace_back(product, *p);
    }
  }

  bool has_stored_stats(const std::string& product) const {
    std::shared_lock lock(impl_.counters_mutex);
    return impl_.products.contains(product);
  }

  // Each partition with a product saved here: its log is deleted below the oldest entry that a
  // saved state does not cover yet, with one range deletion from where it was last cut.
  void clear_covered_logs() {
    std::set<std::int32_t> touched;
    for (const auto& [product, p] : out_.arrival_log.saved) touched.insert(p);
    std::shared_lock lock(impl_.counters_mutex);
    for (std::int32_t p : touched) {
      std::uint64_t bound = out_.after.next_arrival.at(p);
      std::uint64_t cleared = 0;
      if (const auto log = impl_.arrival_logs.find(p); log != impl_.arrival_logs.end()) {
        cleared = log->second.cleared_through;
        for (const auto& [product, oldest] : log->second.oldest_unsaved) {
          if (!saved_products_.contains(product)) bound = std::min(bound, oldest);
        }
      }
      for (const auto& [product, first] : out_.arrival_log.first_logged) {
        if (first.first == p) bound = std::min(bound, first.second);
      }
      if (bound <= cleared) continue;
      out_.in_order.push_back(CommitWrites::Op{kUnsaved, WriteKind::kDeleteRange,
                                               impl_.key_in(kUnsaved, p, be64_value(cleared)),
                                               impl_.key_in(kUnsaved, p, be64_value(bound))});
      out_.arrival_log.cleared_through[p] = bound;
    }
  }

  // In schema 3 an input offset is a record of its partition (the input topic's partitions are
  // the store's); an offset of no valid partition stays process-wide.
  void add_offsets() {
    for (const InputOffset& offset : batch_.offsets) {
      std::string key(kOffsetPrefix);
      key += keys::offset_key(offset.topic, offset.partition);
      const std::int32_t p =
          keys::valid_partition(offset.partition) ? offset.partition : kNoPartition;
      if (p != kNoPartition && impl_.partitioned) out_.partitions.insert(p);
      out_.put_in_order(kMeta, impl_.meta_in(p, key),
                        be64_value(static_cast<std::uint64_t>(offset.next_offset)));
    }
    if (batch_.kafka_cluster_id) {
      out_.put_in_order(kMeta, std::string(kClusterIdKey), *batch_.kafka_cluster_id);
    }
  }

  void add_aggregator_state() {
    for (const KeyWrite& write : batch_.aggregator_state) {
      std::string key = impl_.key_in(kAggregatorState, partition(write.product_id), write.key);
      if (write.value) {
        out_.put(kAggregatorState, std::move(key), *write.value);
      } else {
        out_.erase(kAggregatorState, std::move(key));
      }
    }
  }

  Status add_removed_memberships() {
    for (const std::string& event_id : batch_.removed_memberships) {
      std::optional<std::string> previous;
      std::int32_t p = kNoPartition;
      if (Status s = impl_.find(kMembers, event_id, &previous, &p); !s.ok()) return s;
      if (!previous) continue;
      out_.erase(kMembers, impl_.key_in(kMembers, p, event_id));
      std::optional<v1::StoredEvent> stored;
      if (Status s = read_event(p, event_id, &stored); !s.ok()) return s;
      if (!stored) continue;
      out_.erase(kMembersByPainPoint,
                 impl_.key_in(kMembersByPainPoint, p,
                              keys::member_key(*previous,
                                               keys::member_position(
                                                   to_micros(stored->event().occurred_at()),
                                                   event_id))));
    }
    return Status::Ok();
  }

  Status read_event(std::int32_t p, std::string_view event_id,
                    std::optional<v1::StoredEvent>* out) const {
    std::optional<std::string> bytes;
    out->reset();
    if (Status s = impl_.get(kEvents, impl_.key_in(kEvents, p, event_id), &bytes); !s.ok()) {
      return s;
    }
    if (!bytes) return Status::Ok();
    v1::StoredEvent event;
    if (!event.ParseFromString(*bytes)) return {StoreErrc::kCorruption, "undecodable event record"};
    *out = std::move(event);
    return Status::Ok();
  }

  Status add_memberships() {
    if (!batch_.memberships_known.empty() &&
        batch_.memberships_known.size() != batch_.memberships.size()) {
      return {StoreErrc::kInvalidArgument, "memberships_known must match memberships"};
    }
    BatchEventTimes batch_times(batch_.events);
    for (std::size_t mi = 0; mi < batch_.memberships.size(); ++mi) {
      const MembershipWrite& m = batch_.memberships[mi];
      const std::optional<KnownMembership>* known =
          batch_.memberships_known.empty() ? nullptr : &batch_.memberships_known[mi];
      const std::int32_t p = partition(m.product_id);
      out_.put(kMembers, impl_.key_in(kMembers, p, m.event_id), m.pain_point_id);
      std::int64_t micros = 0;
      if (const std::optional<std::int64_t> in_batch = batch_times.find(mi, m.event_id)) {
        micros = *in_batch;
      } else if (known != nullptr && known->has_value()) {
        micros = (*known)->occurred_at_micros;
        const auto& previous = (*known)->current_pain_point_id;
        if (previous && *previous != m.pain_point_id) {
          out_.erase(kMembersByPainPoint,
                     impl_.key_in(kMembersByPainPoint, p,
                                  keys::member_key(*previous,
                                                   keys::member_position(micros, m.event_id))));
        }
      } else {
        bool listed = false;
        if (Status s = move_stored_membership(m, p, &micros, &listed); !s.ok()) return s;
        if (!listed) continue;  // no event to list; the membership alone is kept as before
      }
      std::string key = impl_.key_in(
          kMembersByPainPoint, p,
          keys::member_key(m.pain_point_id, keys::member_position(micros, m.event_id)));
      out_.put(kMembersByPainPoint, std::move(key), {});
    }
    return Status::Ok();
  }

  // An event stored by an earlier batch changes pain point (curation): move its index entry.
  // *listed: the event is stored (*micros is its time), so the new entry can be written.
  Status move_stored_membership(const MembershipWrite& m, std::int32_t p, std::int64_t* micros,
                                bool* listed) {
    std::optional<v1::StoredEvent> stored;
    if (Status s = read_event(p, m.event_id, &stored); !s.ok()) return s;
    if (!stored) return Status::Ok();
    *listed = true;
    *micros = to_micros(stored->event().occurred_at());
    std::optional<std::string> previous;
    if (Status s = impl_.get(kMembers, impl_.key_in(kMembers, p, m.event_id), &previous);
        !s.ok()) {
      return s;
    }
    if (previous && *previous != m.pain_point_id) {
      out_.erase(kMembersByPainPoint,
                 impl_.key_in(kMembersByPainPoint, p,
                              keys::member_key(*previous,
                                               keys::member_position(*micros, m.event_id))));
    }
    return Status::Ok();
  }

  // Outbox sequences count per partition, from 1.
  void add_summaries_and_outbox() {
    std::set<std::int32_t> outbox_partitions;
    auto append_outbox = [&](std::int32_t p, std::string value) {
      auto [it, inserted] = out_.after.next_outbox_sequence.try_emplace(p, 1);
      out_.put_in_order(kOutbox, impl_.key_in(kOutbox, p, be64_value(it->second++)),
                        std::move(value));
      outbox_partitions.insert(p);
    };
    for (std::size_t i = 0; i < batch_.summaries.size(); ++i) {
      const v1::PainPointSummary& summary = batch_.summaries[i];
      const std::int32_t p = partition(summary.product_id());
      buffer_.clear();
      summary.SerializeToString(&buffer_);
      out_.put(kPainPoints, impl_.key_in(kPainPoints, p, summary.id()), buffer_);
      out_.put(kPainPointsByProduct, listing_keys_[i], listing_values_[i]);
      if (batch_.publish_summaries) append_outbox(p, buffer_);
    }
    for (const v1::PainPointSummary& summary : batch_.outbox) {
      append_outbox(partition(summary.product_id()), summary.SerializeAsString());
    }
    for (std::int32_t p : outbox_partitions) {
      out_.put_in_order(kMeta, impl_.meta_in(p, kOutboxSequenceKey),
                        be64_value(out_.after.next_outbox_sequence.at(p)));
    }
  }

  void add_alerts() {
    alert_records::append(batch_.alerts, &out_.after.next_alert_sequence,
                          [this](std::string_view key, std::string_view value) {
                            out_.put_in_order(kAlerts, std::string(key), std::string(value));
                          });
  }

  const Impl& impl_;
  const CommitBatch& batch_;
  CommitWrites& out_;
  std::string buffer_;  // serialized records, reused
  std::vector<std::string> listing_keys_;
  const std::set<std::string_view, std::less<>> saved_products_;
  std::vector<std::string> listing_values_;
};

Status Store::prepare_commit(const CommitBatch& batch, PreparedCommit* out) const {
  out->impl_ = std::make_unique<PreparedCommit::Impl>();
  out->impl_->partitioned = impl_->partitioned;
  Impl::CommitPreparation preparation(*impl_, batch, out->impl_->writes);
  Status s = preparation.run();
  if (!s.ok()) out->impl_.reset();
  return s;
}

Status Store::write_prepared(PreparedCommit prepared) {
  Impl& impl = *impl_;
  if (!prepared.impl_) return {StoreErrc::kInvalidArgument, "no prepared commit to write"};
  CommitWrites& writes = prepared.impl_->writes;
  {
    std::shared_lock lock(impl.counters_mutex);
    if (impl.commit_generation != writes.before.generation) {
      return {StoreErrc::kInvalidArgument,
              "another commit was written after this one was prepared; prepare it again"};
    }
  }
  rocksdb::WriteBatch& wb = impl.commit_batch;
  wb.Clear();
  rocksdb::Status built;
  writes.for_each([&](const CommitWrites::Op& op) {
    if (!built.ok()) return;
    rocksdb::ColumnFamilyHandle* cf = impl.cf(op.family);
    switch (op.kind) {
      case WriteKind::kPut:
        built = wb.Put(cf, op.key, op.value);
        break;
      case WriteKind::kDelete:
        built = wb.Delete(cf, op.key);
        break;
      case WriteKind::kDeleteRange:
        built = wb.DeleteRange(cf, op.key, op.value);
        break;
    }
  });
  for (const auto& [key, value] : prepared.impl_->local) {
    if (built.ok()) built = wb.Put(impl.cf(kMeta), key, value);
  }
  if (Status s = from_rocks(built, "build write batch"); !s.ok()) return s;
  const Status written = impl.write(&wb, "commit batch");
  if (wb.Data().capacity() > Impl::kRetainedCommitBytes) wb = rocksdb::WriteBatch();
  if (!written.ok()) return written;
  std::unique_lock lock(impl.counters_mutex);
  impl.commit_generation = writes.after.generation;
  impl.event_count = writes.after.event_count;
  impl.next_arrival = std::move(writes.after.next_arrival);
  impl.next_outbox_sequence = std::move(writes.after.next_outbox_sequence);
  impl.next_alert_sequence = writes.after.next_alert_sequence;
  for (auto& [product, stats] : writes.products) impl.products[product] = std::move(stats);
  for (const auto& [product, p] : writes.product_partitions) {
    if (impl.products.contains(product)) impl.product_partition.insert_or_assign(product, p);
  }
  for (std::int32_t p : writes.partitions) {
    const auto at = std::lower_bound(impl.partitions.begin(), impl.partitions.end(), p);
    if (at == impl.partitions.end() || *at != p) impl.partitions.insert(at, p);
  }
  CommitWrites::ArrivalLogChange& log = writes.arrival_log;
  if (log.cleared) {
    impl.arrival_logs.clear();
    for (const auto& [p, next] : impl.next_arrival) impl.arrival_logs[p].cleared_through = next;
  }
  for (const auto& [product, p] : log.saved) impl.arrival_logs[p].oldest_unsaved.erase(product);
  for (const auto& [product, first] : log.first_logged) {
    impl.arrival_logs[first.first].oldest_unsaved.try_emplace(product, first.second);
  }
  for (const auto& [p, bound] : log.cleared_through) impl.arrival_logs[p].cleared_through = bound;
  return Status::Ok();
}

Status Store::commit(const CommitBatch& batch) {
  PreparedCommit prepared;
  if (Status s = prepare_commit(batch, &prepared); !s.ok()) return s;
  return write_prepared(std::move(prepared));
}


Status Store::add_local_record(PreparedCommit* prepared, std::int32_t partition,
                               std::string_view name, std::string value) const {
  if (prepared == nullptr || !prepared->impl_) {
    return {StoreErrc::kInvalidArgument, "no prepared commit to add a local record to"};
  }
  if (!impl_->partitioned || !keys::valid_partition(partition)) {
    return {StoreErrc::kInvalidArgument,
            "a local record needs a valid partition of a schema 3 store"};
  }
  prepared->impl_->local.emplace_back(impl_->meta_in(partition, local_record_name(name)),
                                      std::move(value));
  return Status::Ok();
}

}  // namespace painpoint::store

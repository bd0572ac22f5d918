#include "painpoint/store/store.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "alert_records.h"
#include "listings.h"
#include "painpoint/base/time.h"
#include "painpoint/store/keys.h"
#include "store_internal.h"

namespace painpoint::store {

std::string_view errc_name(StoreErrc code) {
  switch (code) {
    case StoreErrc::kOk:
      return "ok";
    case StoreErrc::kIoError:
      return "io_error";
    case StoreErrc::kNoSpace:
      return "no_space";
    case StoreErrc::kCorruption:
      return "corruption";
    case StoreErrc::kSchemaMismatch:
      return "schema_mismatch";
    case StoreErrc::kLocked:
      return "locked";
    case StoreErrc::kInvalidArgument:
      return "invalid_argument";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string text(errc_name(code_));
  text += ": ";
  text += message_;
  return text;
}

Status from_rocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::ok();
  std::string message(what);
  message += ": ";
  message += status.ToString();
  if (status.IsNoSpace()) return {StoreErrc::kNoSpace, message};
  if (status.IsCorruption()) return {StoreErrc::kCorruption, message};
  if (status.IsIOError() && status.ToString().find("lock") != std::string::npos) {
    return {StoreErrc::kLocked,
            message + " (is another painpoint process using this data directory?)"};
  }
  if (status.IsInvalidArgument()) return {StoreErrc::kInvalidArgument, message};
  return {StoreErrc::kIoError, message};
}

namespace {

// Column families: one per kind of record, so each gets the tuning its access pattern needs
// (bloom filters for point lookups of event ids, plain scans for time and outbox).
enum Family : std::size_t {
  kMeta = 0,  // RocksDB's default family
  kEvents,
  kByTime,
  kMembers,
  kPainPoints,
  kPainPointsByProduct,
  kAggregatorState,
  kOutbox,
  // pain point id -> its member events, newest first (keys::member_key); values are empty.
  kMembersByPainPoint,
  // Arrival number -> event id of every event stored since the last aggregator checkpoint: the
  // events to replay through the aggregator to rebuild its deferred state after a crash.
  kUnsaved,
  // Fired alerts, their per-product index and their outbox (alert_records.h).
  kAlerts,
  kFamilyCount,
};

constexpr std::array<const char*, kFamilyCount> kFamilyNames = {
    "default",          "events",      "by_time",
    "members",          "pain_points", "pain_points_by_product",
    "aggregator_state", "outbox",      "members_by_pain_point",
    "unsaved_arrivals", "alerts"};

constexpr std::string_view kSchemaVersionKey = "schema_version";
constexpr std::string_view kClusterIdKey = "kafka_cluster_id";
constexpr std::string_view kInputPartitionsKey = "input_partitions";
constexpr std::string_view kClusteringKey = "clustering";
constexpr std::string_view kEventCountKey = "event_count";
constexpr std::string_view kOutboxSequenceKey = "outbox_next_sequence";
constexpr std::string_view kOffsetPrefix = "offset/";
constexpr std::string_view kProductPrefix = "product/";
// A read-write open upgrades this version in place; a read-only one reads it as it is (the
// listing falls back to the summaries, the pain point counters read 0).
constexpr std::uint32_t kUpgradableSchemaVersion = 1;
// Present once members_by_pain_point covers every membership (the family was added after the
// first stores were written; open() fills it from `members` until this marker exists).
constexpr std::string_view kMembersIndexedKey = "members_by_pain_point_complete";

std::string product_key(std::string_view product_id) {
  std::string key(kProductPrefix);
  key += product_id;
  return key;
}

std::string be64_value(std::uint64_t value) {
  std::string out;
  keys::append_be64(out, value);
  return out;
}

// Appends StoredEvent.arrival_seq to a serialized StoredEvent. A protobuf parser takes the last
// occurrence of a singular scalar field, so the bytes read back as the record with arrival_seq
// set (replacing any value the caller left in it), without copying the event to set the field.
void append_arrival(std::string& serialized, std::uint64_t arrival) {
  using google::protobuf::internal::WireFormatLite;
  serialized.push_back(static_cast<char>(WireFormatLite::MakeTag(
      v1::StoredEvent::kArrivalSeqFieldNumber, WireFormatLite::WIRETYPE_VARINT)));
  while (arrival >= 0x80) {
    serialized.push_back(static_cast<char>((arrival & 0x7F) | 0x80));
    arrival >>= 7;
  }
  serialized.push_back(static_cast<char>(arrival));
}

// The arrival number of a serialized StoredEvent without decoding the rest of it (the event's
// strings are skipped, not copied). nullopt in *out: a record from before arrival numbers.
// False: the bytes are not a StoredEvent.
bool read_arrival(std::string_view serialized, std::optional<std::uint64_t>* out) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const std::uint8_t*>(serialized.data()),
      static_cast<int>(serialized.size()));
  out->reset();
  while (const std::uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(v1::StoredEvent::kArrivalSeqFieldNumber,
                                       WireFormatLite::WIRETYPE_VARINT)) {
      std::uint64_t value = 0;
      if (!in.ReadVarint64(&value)) return false;
      *out = value;  // the last occurrence wins, as in a full parse
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

rocksdb::ColumnFamilyOptions family_options(Family family, const StoreOptions& options,
                                            const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = options.write_buffer_bytes;
  // No compression in L0 and L1: their files are rewritten soon by compaction, so compressing
  // them spent CPU on data that lives minutes (LZ4 was ~4% of serve's CPU in bench/e2e.sh, in the
  // flush and compaction threads); the deeper levels, where the data stays, are compressed.
  cf.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression};
  cf.compression_per_level.resize(static_cast<std::size_t>(cf.num_levels),
                                  rocksdb::kLZ4Compression);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (family == kEvents || family == kMembers || family == kPainPoints) {
    // Most event-id lookups are misses (new events): a bloom filter answers those from memory.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = true;
  }
  if (family == kEvents) {
    // The same for the memtables: every batch looks up all its event ids (dedupe), and without a
    // filter each miss searched the skip list (~2 µs per event of the stage thread's time).
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.02;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

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

struct Store::Impl {
  StoreOptions options;
  std::unique_ptr<rocksdb::DB> db;
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> families{};
  rocksdb::WriteOptions write_options;
  // commit()'s WriteBatch, kept between commits (only commit() touches it: one call at a time).
  // A batch of 50,000 events is ~30 MB; built afresh each time, its buffer grew by doubling into
  // newly mapped pages, and the page faults and copies were ~2% of serve's CPU in bench/e2e.sh.
  // A buffer that grew past kRetainedCommitBytes is released after its commit.
  rocksdb::WriteBatch commit_batch;
  static constexpr std::size_t kRetainedCommitBytes = std::size_t{64} << 20;

  // Every write after open goes through write(). After a failed write (a full disk, an I/O
  // error) RocksDB's log writer must not be written again (assertion-enabled builds of RocksDB,
  // Debian's among them, abort), so later writes fail with the first failure, untried.
  std::mutex write_mutex;
  std::optional<Status> write_failure;
  std::filesystem::path dir;
  Status write(rocksdb::WriteBatch* batch, std::string_view what) {
    std::lock_guard lock(write_mutex);
    if (write_failure) return *write_failure;
    if (Status s = check_free_space(batch->GetDataSize(), what); !s.is_ok()) return s;
    Status status = from_rocks(db->Write(write_options, batch), what);
    if (status.code() == StoreErrc::kIoError || status.code() == StoreErrc::kNoSpace) {
      write_failure = status;
    }
    return status;
  }

  Status check_free_space(std::size_t write_bytes, std::string_view what) const {
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

  // Counters kept in memory and written with every commit. Guarded for concurrent readers.
  mutable std::shared_mutex counters_mutex;
  std::int64_t event_count = 0;
  std::uint64_t next_outbox_sequence = 1;
  std::uint64_t next_alert_sequence = 1;
  std::map<std::string, v1::ProductStats, std::less<>> products;

  ~Impl() {
    if (!db) return;
    for (std::size_t i = 1; i < kFamilyCount; ++i) {
      if (families[i] != nullptr) {
        // Destroying a handle only releases memory; the status cannot fail meaningfully here.
        const rocksdb::Status ignored = db->DestroyColumnFamilyHandle(families[i]);
        (void)ignored;
      }
    }
    const rocksdb::Status closed = db->Close();
    (void)closed;  // Close() reports only errors of unsynced data we do not promise to keep.
  }

  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return family == kMeta ? db->DefaultColumnFamily() : families[family];
  }

  Status get(Family family, std::string_view key, std::optional<std::string>* out) const {
    std::string value;
    const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf(family), slice(key), &value);
    if (s.IsNotFound()) {
      out->reset();
      return Status::ok();
    }
    if (!s.ok()) return from_rocks(s, "read");
    *out = std::move(value);
    return Status::ok();
  }

  Status scan(Family family, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf(family)));
    for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
      const std::string_view key = view(it->key());
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!fn(key, view(it->value()))) break;
    }
    return from_rocks(it->status(), "scan");
  }

  Status load_counters() {
    std::optional<std::string> value;
    if (Status s = get(kMeta, kEventCountKey, &value); !s.is_ok()) return s;
    if (value) event_count = static_cast<std::int64_t>(keys::read_be64(*value).value_or(0));
    if (Status s = get(kMeta, kOutboxSequenceKey, &value); !s.is_ok()) return s;
    if (value) next_outbox_sequence = keys::read_be64(*value).value_or(1);
    if (families[kAlerts] != nullptr) {
      if (Status s = from_rocks(
              alert_records::load_next_sequence(*db, families[kAlerts], &next_alert_sequence),
              "read alert sequence");
          !s.is_ok()) {
        return s;
      }
    }
    bool corrupt = false;
    Status s = scan(kMeta, kProductPrefix, [&](std::string_view key, std::string_view bytes) {
      v1::ProductStats stats;
      if (!stats.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        corrupt = true;
        return false;
      }
      products.emplace(std::string(key.substr(kProductPrefix.size())), std::move(stats));
      return true;
    });
    if (!s.is_ok()) return s;
    if (corrupt) return {StoreErrc::kCorruption, "undecodable product statistics record"};
    return Status::ok();
  }

  // Fills members_by_pain_point from `members` for stores written before the index existed.
  // Idempotent (re-putting an entry is harmless), so a crash midway just redoes it next open.
  Status index_members_if_needed() {
    std::optional<std::string> marker;
    if (Status s = get(kMeta, kMembersIndexedKey, &marker); !s.is_ok() || marker) return s;
    rocksdb::WriteBatch wb;
    Status inner = Status::ok();
    Status s = scan(kMembers, "", [&](std::string_view event_id, std::string_view pain_point) {
      std::optional<std::string> bytes;
      inner = get(kEvents, event_id, &bytes);
      if (!inner.is_ok()) return false;
      v1::StoredEvent stored;
      if (!bytes || !stored.ParseFromString(*bytes)) return true;  // nothing to list it with
      const std::string position =
          keys::member_position(to_micros(stored.event().occurred_at()), event_id);
      inner = from_rocks(
          wb.Put(cf(kMembersByPainPoint), keys::member_key(pain_point, position), rocksdb::Slice()),
          "index members");
      if (inner.is_ok() && wb.Count() >= 10'000) {
        inner = from_rocks(db->Write(write_options, &wb), "index members");
        wb.Clear();
      }
      return inner.is_ok();
    });
    if (!s.is_ok()) return s;
    if (!inner.is_ok()) return inner;
    if (Status st = from_rocks(wb.Put(slice(kMembersIndexedKey), "1"), "index members");
        !st.is_ok()) {
      return st;
    }
    return from_rocks(db->Write(write_options, &wb), "index members");
  }

  // Schema 1 -> 2 (see listings.h): the index values are rewritten first (idempotent); the
  // product counters and the new version follow in one WriteBatch, so a crash midway leaves a
  // version 1 store that the next open upgrades again.
  Status upgrade_listings() {
    listings::CountDeltas totals;
    if (Status s = listings::build_listings(*db, write_options, cf(kPainPoints),
                                            cf(kPainPointsByProduct), &totals);
        !s.is_ok()) {
      return s;
    }
    rocksdb::WriteBatch wb;
    for (const auto& [product, total] : totals) {
      v1::ProductStats& stats = products[product];
      stats.set_product_id(product);
      stats.set_active_pain_points(total.active);
      stats.set_summary_versions(total.versions);
      if (Status s = from_rocks(wb.Put(product_key(product), stats.SerializeAsString()),
                                "upgrade product counters");
          !s.is_ok()) {
        return s;
      }
    }
    std::string encoded;
    keys::append_be32(encoded, kSchemaVersion);
    if (Status s = from_rocks(wb.Put(slice(kSchemaVersionKey), encoded), "upgrade schema");
        !s.is_ok()) {
      return s;
    }
    return from_rocks(db->Write(write_options, &wb), "upgrade the store to schema 2");
  }

  // *found: the version the directory holds (kSchemaVersion once written for a new store).
  Status check_schema(bool created, std::uint32_t* found) {
    *found = kSchemaVersion;
    std::optional<std::string> value;
    if (Status s = get(kMeta, kSchemaVersionKey, &value); !s.is_ok()) return s;
    if (!value) {
      if (!created && options.read_only) {
        return {StoreErrc::kSchemaMismatch, "data directory has no schema version"};
      }
      if (options.read_only) return Status::ok();
      std::string encoded;
      keys::append_be32(encoded, kSchemaVersion);
      return from_rocks(db->Put(write_options, slice(kSchemaVersionKey), encoded),
                        "write schema version");
    }
    const auto version = keys::read_be32(*value);
    if (version == kUpgradableSchemaVersion) {
      *found = *version;
      return Status::ok();
    }
    if (!version || *version != kSchemaVersion) {
      return {StoreErrc::kSchemaMismatch,
              "data directory was written by schema version " +
                  (version ? std::to_string(*version) : std::string("<unreadable>")) +
                  ", this build reads version " + std::to_string(kSchemaVersion) +
                  "; use a matching painpoint build or rebuild the directory with `painpoint "
                  "replay`"};
    }
    return Status::ok();
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Status Store::open(const std::filesystem::path& dir, const StoreOptions& options,
                   std::unique_ptr<Store>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->dir = dir;
  impl->write_options.sync = options.sync_writes;

  std::error_code ec;
  const bool existed = std::filesystem::exists(dir / "CURRENT", ec);
  if (!existed && (options.read_only || !options.create_if_missing)) {
    return {StoreErrc::kInvalidArgument, "no painpoint store in " + dir.string()};
  }
  if (!existed) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return {StoreErrc::kIoError, "create " + dir.string() + ": " + ec.message()};
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.db_write_buffer_size = options.total_write_buffer_bytes;
  db_options.bytes_per_sync = 1 << 20;
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);

  // A read-only open cannot create families, so it opens only those that exist (an older store
  // has no members_by_pain_point; scan_members() then reports that instead of failing open()).
  std::vector<std::string> existing_families;
  if (existed && options.read_only) {
    const rocksdb::Status listed =
        rocksdb::DB::ListColumnFamilies(db_options, dir.string(), &existing_families);
    if (!listed.ok()) return from_rocks(listed, "list column families of " + dir.string());
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::vector<std::size_t> opened;
  for (std::size_t i = 0; i < kFamilyCount; ++i) {
    if (!existing_families.empty() && std::find(existing_families.begin(), existing_families.end(),
                                                kFamilyNames[i]) == existing_families.end()) {
      continue;
    }
    descriptors.emplace_back(kFamilyNames[i],
                             family_options(static_cast<Family>(i), options, cache));
    opened.push_back(i);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, dir.string(), descriptors, &handles, &raw)
          : rocksdb::DB::Open(db_options, dir.string(), descriptors, &handles, &raw);
  if (!s.ok()) return from_rocks(s, "open " + dir.string());
  impl->db.reset(raw);
  for (std::size_t h = 0; h < handles.size(); ++h) {
    const std::size_t i = opened[h];
    if (i == kMeta) {
      // The default family's handle is owned by the DB; keep using DefaultColumnFamily().
      const rocksdb::Status ignored = impl->db->DestroyColumnFamilyHandle(handles[h]);
      (void)ignored;
      continue;
    }
    impl->families[i] = handles[h];
  }

  std::uint32_t version = 0;
  if (Status st = impl->check_schema(!existed, &version); !st.is_ok()) return st;
  if (Status st = impl->load_counters(); !st.is_ok()) return st;
  if (!options.read_only) {
    if (Status st = impl->index_members_if_needed(); !st.is_ok()) return st;
    if (version == kUpgradableSchemaVersion) {
      if (Status st = impl->upgrade_listings(); !st.is_ok()) return st;
    }
  }
  out->reset(new Store(std::move(impl)));
  return Status::ok();
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

Status Store::delete_outbox(std::span<const std::uint64_t> sequences) {
  rocksdb::WriteBatch wb;
  for (std::uint64_t sequence : sequences) {
    if (Status s = from_rocks(wb.Delete(impl_->cf(kOutbox), be64_value(sequence)), "outbox");
        !s.is_ok()) {
      return s;
    }
  }
  return impl_->write(&wb, "delete outbox entries");
}

Status Store::load_offsets(std::vector<InputOffset>* out) const {
  bool corrupt = false;
  Status s = impl_->scan(kMeta, kOffsetPrefix, [&](std::string_view key, std::string_view value) {
    auto parsed = keys::parse_offset_key(key.substr(kOffsetPrefix.size()));
    auto offset = keys::read_be64(value);
    if (!parsed || !offset) {
      corrupt = true;
      return false;
    }
    out->push_back(
        {std::string(parsed->topic), parsed->partition, static_cast<std::int64_t>(*offset)});
    return true;
  });
  if (!s.is_ok()) return s;
  if (corrupt) return {StoreErrc::kCorruption, "undecodable input offset record"};
  return Status::ok();
}

Status Store::kafka_cluster_id(std::optional<std::string>* out) const {
  return impl_->get(kMeta, kClusterIdKey, out);
}

Status Store::record_input_partitions(std::int32_t partitions) {
  std::string encoded;
  keys::append_be32(encoded, static_cast<std::uint32_t>(partitions));
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(wb.Put(slice(kInputPartitionsKey), encoded), "input partitions");
      !s.is_ok()) {
    return s;
  }
  return impl_->write(&wb, "write input partitions");
}

Status Store::record_clustering(std::string_view description) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(wb.Put(slice(kClusteringKey), slice(description)), "clustering");
      !s.is_ok()) {
    return s;
  }
  return impl_->write(&wb, "write clustering");
}

Status Store::clustering(std::optional<std::string>* out) const {
  return impl_->get(kMeta, kClusteringKey, out);
}

Status Store::input_partitions(std::optional<std::int32_t>* out) const {
  std::optional<std::string> value;
  if (Status s = impl_->get(kMeta, kInputPartitionsKey, &value); !s.is_ok()) return s;
  if (!value) {
    out->reset();
    return Status::ok();
  }
  const auto partitions = keys::read_be32(*value);
  if (!partitions) return {StoreErrc::kCorruption, "undecodable input partition count"};
  *out = static_cast<std::int32_t>(*partitions);
  return Status::ok();
}

namespace {
template <typename Message>
Status decode(const std::optional<std::string>& bytes, std::optional<Message>* out,
              std::string_view what) {
  if (!bytes) {
    out->reset();
    return Status::ok();
  }
  Message message;
  if (!message.ParseFromString(*bytes)) {
    return {StoreErrc::kCorruption, "undecodable " + std::string(what)};
  }
  *out = std::move(message);
  return Status::ok();
}
}  // namespace

Status Store::get_event(std::string_view event_id, std::optional<v1::StoredEvent>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->get(kEvents, event_id, &bytes); !s.is_ok()) return s;
  return decode(bytes, out, "event record");
}

Status Store::get_membership(std::string_view event_id, std::optional<std::string>* out) const {
  return impl_->get(kMembers, event_id, out);
}

Status Store::get_memberships(std::span<const std::string_view> event_ids,
                              std::vector<std::optional<std::string>>* out) const {
  out->assign(event_ids.size(), std::nullopt);
  if (event_ids.empty()) return Status::ok();
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
  return Status::ok();
}

Status Store::get_summary(std::string_view pain_point_id,
                          std::optional<v1::PainPointSummary>* out) const {
  std::optional<std::string> bytes;
  if (Status s = impl_->get(kPainPoints, pain_point_id, &bytes); !s.is_ok()) return s;
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
  Status inner = Status::ok();
  Status s = impl_->scan(kPainPointsByProduct, prefix, [&](std::string_view key, std::string_view) {
    std::optional<v1::PainPointSummary> summary;
    inner = get_summary(key.substr(prefix.size()), &summary);
    if (!inner.is_ok()) return false;
    if (!summary) return true;  // index entry without record: cannot happen within one batch
    return fn(*summary);
  });
  return s.is_ok() ? inner : s;
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

std::int64_t micros_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// Walks the time index over [since, until) in (occurred_at, event id) order, skipping the
// products want_product (if set) rejects, and calls visit(event id) while it returns ok and
// sets *more. The index's value is the product id, so rejected events cost no event read.
Status walk_time_index(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* by_time,
                       const rocksdb::ReadOptions& read,
                       std::chrono::system_clock::time_point since,
                       std::chrono::system_clock::time_point until,
                       const std::function<bool(std::string_view product_id)>& want_product,
                       const std::function<Status(std::string_view event_id, bool* more)>& visit) {
  const std::int64_t until_us = micros_since_epoch(until);
  std::string start;
  keys::append_be64(start, keys::order_preserving(micros_since_epoch(since)));
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(read, by_time));
  for (it->Seek(start); it->Valid(); it->Next()) {
    auto parsed = keys::parse_time_key(view(it->key()));
    if (!parsed) return {StoreErrc::kCorruption, "undecodable time index key"};
    if (parsed->occurred_at_micros >= until_us) break;
    if (want_product && !want_product(view(it->value()))) continue;
    bool more = true;
    if (Status s = visit(parsed->event_id, &more); !s.is_ok()) return s;
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
                           if (Status s = get_event(event_id, &event); !s.is_ok()) return s;
                           if (!event)
                             return {StoreErrc::kCorruption, "time index names a missing event"};
                           *more = fn(*event);
                           return Status::ok();
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
                            return Status::ok();
                          });
      !s.is_ok()) {
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
      if (!fn(stored)) return Status::ok();
    }
  }
  return Status::ok();
}

Status Store::scan_unsaved_events(const std::function<bool(const v1::StoredEvent&)>& fn) const {
  rocksdb::ColumnFamilyHandle* unsaved = impl_->families[kUnsaved];
  if (unsaved == nullptr) return Status::ok();  // read-only open of a store from before
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), unsaved));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::optional<v1::StoredEvent> event;
    if (Status s = get_event(view(it->value()), &event); !s.is_ok()) return s;
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
    if (Status st = from_rocks(source.it->status(), "scan members"); !st.is_ok()) return st;
  }
  return Status::ok();
}

Status Store::read_outbox(std::size_t max_entries, std::vector<OutboxEntry>* out) const {
  return read_outbox_after(0, max_entries, out);
}

Status Store::read_outbox_after(std::uint64_t after_sequence, std::size_t max_entries,
                                std::vector<OutboxEntry>* out) const {
  if (max_entries == 0) return Status::ok();
  if (after_sequence == std::numeric_limits<std::uint64_t>::max()) return Status::ok();
  const std::string start = be64_value(after_sequence + 1);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kOutbox)));
  for (it->Seek(slice(start)); it->Valid() && out->size() < max_entries; it->Next()) {
    const std::string_view key = view(it->key());
    const std::string_view value = view(it->value());
    OutboxEntry entry;
    auto sequence = keys::read_be64(key);
    if (!sequence || !entry.summary.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return {StoreErrc::kCorruption, "undecodable outbox entry"};
    }
    entry.sequence = *sequence;
    out->push_back(std::move(entry));
  }
  return from_rocks(it->status(), "read outbox");
}

std::uint64_t Store::outbox_next_sequence() const {
  std::shared_lock lock(impl_->counters_mutex);
  return impl_->next_outbox_sequence;
}

Status Store::delete_alert_outbox(std::span<const std::uint64_t> sequences) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(alert_records::delete_outbox(wb, impl_->cf(kAlerts), sequences),
                            "alert outbox");
      !s.is_ok()) {
    return s;
  }
  return impl_->write(&wb, "delete alert outbox entries");
}

// A read-only open of a store written before alerts existed has no alerts family: nothing fired.
Status Store::alert_fired(std::string_view alert_id, bool* out) const {
  *out = false;
  if (impl_->families[kAlerts] == nullptr) return Status::ok();
  return from_rocks(alert_records::fired(*impl_->db, impl_->families[kAlerts], alert_id, out),
                    "look up alert");
}

Status Store::scan_alerts(std::string_view product_id, std::uint64_t before_sequence,
                          const std::function<bool(const StoredAlert&)>& fn) const {
  if (impl_->families[kAlerts] == nullptr) return Status::ok();
  return from_rocks(
      alert_records::scan(*impl_->db, impl_->families[kAlerts], product_id, before_sequence, fn),
      "scan alerts");
}

Status Store::read_alert_outbox_after(std::uint64_t after_sequence, std::size_t max_entries,
                                      std::vector<StoredAlert>* out) const {
  if (impl_->families[kAlerts] == nullptr) return Status::ok();
  return from_rocks(alert_records::read_outbox_after(*impl_->db, impl_->families[kAlerts],
                                                     after_sequence, max_entries, out),
                    "read alert outbox");
}

Status Store::read_alerts_after(std::uint64_t after_sequence, std::size_t max_entries,
                                std::vector<StoredAlert>* out) const {
  if (impl_->families[kAlerts] == nullptr) return Status::ok();
  return from_rocks(alert_records::read_after(*impl_->db, impl_->families[kAlerts], after_sequence,
                                              max_entries, out),
                    "read alerts");
}

Status Store::webhook_position(std::string_view name, std::optional<std::uint64_t>* out) const {
  out->reset();
  if (impl_->families[kAlerts] == nullptr) return Status::ok();
  return from_rocks(
      alert_records::webhook_position(*impl_->db, impl_->families[kAlerts], name, out),
      "read webhook position");
}

Status Store::record_webhook_position(std::string_view name, std::uint64_t sequence) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(
          alert_records::put_webhook_position(wb, impl_->cf(kAlerts), name, sequence), "webhook");
      !s.is_ok()) {
    return s;
  }
  return impl_->write(&wb, "record webhook position");
}

std::uint64_t Store::alert_next_sequence() const {
  std::shared_lock lock(impl_->counters_mutex);
  return impl_->next_alert_sequence;
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

}  // namespace painpoint::store

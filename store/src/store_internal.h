#pragma once

// Helpers shared by the store's source files (private: never included by a public header, so
// RocksDB types stay out of the store's interface), and Store::Impl, which they implement
// together: store_open.cc (open, schema, upgrades), store_commit.cc (the write path),
// store_read.cc (point reads and scans), store_meta.cc (offsets, counters, recorded settings),
// store_outbox.cc (the summary and alert outboxes, alerts).

#include <google/protobuf/timestamp.pb.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/base/time.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/status.h"
#include "painpoint/store/store.h"
#include "rocks_slice.h"

namespace painpoint::store {

// A RocksDB status as the store's Status, `what` naming the operation.
Status from_rocks(const rocksdb::Status& status, std::string_view what);

inline std::int64_t to_micros(const google::protobuf::Timestamp& ts) { return base::micros_of(ts); }

// A RocksDB snapshot released at scope exit: reads through options() see one consistent state.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {
    options_.snapshot = snapshot_;
  }
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  [[nodiscard]] const rocksdb::ReadOptions& options() const { return options_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

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

inline constexpr std::array<const char*, kFamilyCount> kFamilyNames = {
    "default",          "events",      "by_time",
    "members",          "pain_points", "pain_points_by_product",
    "aggregator_state", "outbox",      "members_by_pain_point",
    "unsaved_arrivals", "alerts"};
static_assert(kArrivalLogFamily == std::string_view(kFamilyNames[kUnsaved]));

// Keys of the default family.
inline constexpr std::string_view kSchemaVersionKey = "schema_version";
inline constexpr std::string_view kClusterIdKey = "kafka_cluster_id";
inline constexpr std::string_view kInputPartitionsKey = "input_partitions";
inline constexpr std::string_view kClusteringKey = "clustering";
inline constexpr std::string_view kEventCountKey = "event_count";
inline constexpr std::string_view kOutboxSequenceKey = "outbox_next_sequence";
inline constexpr std::string_view kOffsetPrefix = "offset/";
inline constexpr std::string_view kProductPrefix = "product/";

// A partition's local record (Store::put_local_record) in its meta range: never on the changelog.
inline constexpr std::string_view kLocalRecordPrefix = "local/";
inline std::string local_record_name(std::string_view name) {
  std::string key(kLocalRecordPrefix);
  key += name;
  return key;
}

inline std::string product_key(std::string_view product_id) {
  std::string key(kProductPrefix);
  key += product_id;
  return key;
}

inline std::string be64_value(std::uint64_t value) {
  std::string out;
  keys::append_be64(out, value);
  return out;
}

// Appends StoredEvent.arrival_seq to a serialized StoredEvent. A protobuf parser takes the last
// occurrence of a singular scalar field, so the bytes read back as the record with arrival_seq
// set (replacing any value the caller left in it), without copying the event to set the field.
void append_arrival(std::string& serialized, std::uint64_t arrival);

// The arrival number of a serialized StoredEvent without decoding the rest of it (the event's
// strings are skipped, not copied). nullopt in *out: a record from before arrival numbers.
// False: the bytes are not a StoredEvent.
bool read_arrival(std::string_view serialized, std::optional<std::uint64_t>* out);

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
  // The schema version of the directory as opened (after any upgrade).
  std::uint32_t schema_version = 0;
  // Schema 3: the keys of the partitioned families and the default family's per-partition
  // records carry their input partition. False only for StoreOptions::legacy_schema2.
  bool partitioned = true;
  Status write(rocksdb::WriteBatch* batch, std::string_view what);
  [[nodiscard]] Status check_free_space(std::size_t write_bytes, std::string_view what) const;

  // Counters kept in memory and written with every commit. Guarded for concurrent readers.
  // Per input partition (kNoPartition in schema 2): the next arrival number and outbox sequence.
  mutable std::shared_mutex counters_mutex;
  std::int64_t event_count = 0;  // the sum of the products' event counts
  std::map<std::int32_t, std::uint64_t> next_arrival;
  std::map<std::int32_t, std::uint64_t> next_outbox_sequence;
  std::uint64_t next_alert_sequence = 1;
  std::map<std::string, v1::ProductStats, std::less<>> products;
  // The partition of every product with statistics (each has one), and the partitions with
  // records; schema 2 knows only kNoPartition.
  std::map<std::string, std::int32_t, std::less<>> product_partition;
  std::vector<std::int32_t> partitions;  // ascending
  // Per partition, what of its arrival log is still needed (read-write opens only). A commit
  // saving some products' state (CommitBatch::state_saved_for) does not delete their entries one
  // by one: it records in their ProductStats the arrival number their saved state covers, and
  // clears the partition's log with one range deletion below the oldest entry still needed.
  struct ArrivalLog {
    // Products with entries their saved state does not cover -> the oldest such arrival number.
    std::map<std::string, std::uint64_t, std::less<>> oldest_unsaved;
    // Entries below this arrival number are deleted.
    std::uint64_t cleared_through = 0;
  };
  std::map<std::int32_t, ArrivalLog> arrival_logs;
  // Commits written since open: a prepared commit is written only onto the state it was
  // prepared on.
  std::uint64_t commit_generation = 0;

  ~Impl();

  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return family == kMeta ? db->DefaultColumnFamily() : families[family];
  }

  Status get(Family family, std::string_view key, std::optional<std::string>* out) const;
  // The key of `key` in `family` for partition `p`: prefixed in a partitioned family of a
  // schema 3 store, else `key` itself.
  [[nodiscard]] std::string key_in(Family family, std::int32_t p, std::string_view key) const;
  // The default family's key of partition p's record `name` (`name` in schema 2).
  [[nodiscard]] std::string meta_in(std::int32_t p, std::string_view name) const;
  // The partitions a read visits: those with records (schema 3), or kNoPartition (schema 2).
  [[nodiscard]] std::vector<std::int32_t> read_partitions() const;
  // The partition of a product with statistics; nullopt for an unknown product.
  [[nodiscard]] std::optional<std::int32_t> partition_of_product(std::string_view product) const;
  // The arrival number below which the product's saved aggregator state covers its events
  // (ProductStats.state_saved_through; 0 for an unknown product). Takes counters_mutex.
  [[nodiscard]] std::uint64_t state_saved_through(std::string_view product) const;
  // get() in each of read_partitions() until found; *partition: where.
  Status find(Family family, std::string_view key, std::optional<std::string>* out,
              std::int32_t* partition = nullptr) const;
  Status scan(Family family, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const;

  // Builds a PreparedCommit (store_commit.cc).
  class CommitPreparation;

  // Open-time steps (store_open.cc).
  Status open_db(bool existed);
  Status load_partitioned_counters();
  Status load_counters();
  Status index_members_if_needed();
  Status index_unsaved();
  Status index_unsaved_of(std::span<const std::int32_t> restored);
  Status index_partition_unsaved(std::int32_t p);
  Status upgrade_listings();
  Status check_schema(bool created, std::uint32_t* found);
  Status upgrade_arrival_log(std::uint32_t* found);
};

// The smallest key above every key that starts with `prefix` (empty: no such bound), for
// ReadOptions::iterate_upper_bound: a prefix scan then ends at the prefix's end instead of
// skipping every deleted key after it up to the next live one (after a restore or a
// checkpoint, the arrival logs of all later partitions).
std::string prefix_end(std::string_view prefix);

// ReadOptions whose iterators stop at the end of `prefix` (prefix_end); owns the bound they
// point to, so it must outlive the iterators made with options().
class PrefixReadOptions {
 public:
  explicit PrefixReadOptions(std::string_view prefix) : end_(prefix_end(prefix)), bound_(end_) {
    if (!end_.empty()) options_.iterate_upper_bound = &bound_;
  }
  PrefixReadOptions(const PrefixReadOptions&) = delete;
  PrefixReadOptions& operator=(const PrefixReadOptions&) = delete;
  const rocksdb::ReadOptions& options() const { return options_; }

 private:
  std::string end_;
  rocksdb::Slice bound_;
  rocksdb::ReadOptions options_;
};

}  // namespace painpoint::store

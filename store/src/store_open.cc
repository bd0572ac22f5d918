// Store::open: the column families and their options, the schema check and the upgrades an
// older data directory gets on a read-write open.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <vector>

#include "alert_records.h"
#include "listings.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "partition_ranges.h"
#include "partition_upgrade.h"
#include "store_internal.h"

namespace painpoint::store {
namespace {

// A read-write open upgrades this version in place; a read-only one reads it as it is (the
// listing falls back to the summaries, the pain point counters read 0).
constexpr std::uint32_t kUpgradableSchemaVersion = 1;
// Present once members_by_pain_point covers every membership (the family was added after the
// first stores were written; open() fills it from `members` until this marker exists).
constexpr std::string_view kMembersIndexedKey = "members_by_pain_point_complete";

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

// The family's name in a layout: schema 3 keeps the upgrade's "<name>@p" for partitioned ones.
std::string family_name(Family family, bool partitioned) {
  if (partitioned && partition_ranges::is_partitioned(family)) {
    return partition_upgrade::partitioned_family_name(family);
  }
  return kFamilyNames[family];
}

}  // namespace

Store::Impl::~Impl() {
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

Status Store::Impl::load_counters() {
  if (families[kAlerts] != nullptr) {
    if (Status s = from_rocks(
            alert_records::load_next_sequence(*db, families[kAlerts], &next_alert_sequence),
            "read alert sequence");
        !s.ok()) {
      return s;
    }
  }
  if (partitioned) return load_partitioned_counters();
  std::optional<std::string> value;
  if (Status s = get(kMeta, kEventCountKey, &value); !s.ok()) return s;
  if (value) {
    event_count = static_cast<std::int64_t>(keys::read_be64(*value).value_or(0));
    next_arrival[kNoPartition] = static_cast<std::uint64_t>(event_count);
  }
  if (Status s = get(kMeta, kOutboxSequenceKey, &value); !s.ok()) return s;
  if (value) next_outbox_sequence[kNoPartition] = keys::read_be64(*value).value_or(1);
  bool corrupt = false;
  Status s = scan(kMeta, kProductPrefix, [&](std::string_view key, std::string_view bytes) {
    v1::ProductStats stats;
    if (!stats.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      corrupt = true;
      return false;
    }
    std::string product(key.substr(kProductPrefix.size()));
    product_partition.emplace(product, kNoPartition);
    products.emplace(std::move(product), std::move(stats));
    return true;
  });
  if (!s.ok()) return s;
  if (corrupt) return {StoreErrc::kCorruption, "undecodable product statistics record"};
  return Status::Ok();
}

// Schema 3: each partition's counters and product statistics under its meta_prefix(); the
// event count is the sum of the products' (after the upgrade every partition's next arrival
// number starts from the former process-wide count, so those do not add up to it). Every
// partition with records has its next arrival number there (the upgrade and commit() write it),
// so this one scan also lists the partitions, without reading the other families.
Status Store::Impl::load_partitioned_counters() {
  std::set<std::int32_t> seen;
  const std::string prefix(partition_ranges::kMetaPartitionPrefix);
  bool corrupt = false;
  Status s = scan(kMeta, prefix, [&](std::string_view key, std::string_view bytes) {
    const auto parsed = keys::parse_partitioned_key(key.substr(prefix.size()));
    if (!parsed) {
      corrupt = true;
      return false;
    }
    const std::int32_t p = parsed->partition;
    const std::string_view name = parsed->key;
    seen.insert(p);
    if (name == kEventCountKey) {
      next_arrival[p] = keys::read_be64(bytes).value_or(0);
    } else if (name == kOutboxSequenceKey) {
      next_outbox_sequence[p] = keys::read_be64(bytes).value_or(1);
    } else if (name.starts_with(kProductPrefix)) {
      v1::ProductStats stats;
      if (!stats.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        corrupt = true;
        return false;
      }
      event_count += stats.event_count();
      std::string product(name.substr(kProductPrefix.size()));
      product_partition.insert_or_assign(product, p);
      products.insert_or_assign(std::move(product), std::move(stats));
    }
    return true;
  });
  if (!s.ok()) return s;
  if (corrupt) return {StoreErrc::kCorruption, "undecodable per-partition record"};
  partitions.assign(seen.begin(), seen.end());
  return Status::Ok();
}

// The arrival logs' index (arrival_logs), from the logs and their events' records: per partition
// each product's oldest entry that its saved state does not cover. An entry whose event cannot be
// read stays out of the index (it then holds no range deletion back: only what recovery reads
// matters, and recovery, which reads every entry's event, reports it).
Status Store::Impl::index_unsaved() {
  {
    std::unique_lock lock(counters_mutex);
    arrival_logs.clear();
  }
  for (std::int32_t p : read_partitions()) {
    if (Status s = index_partition_unsaved(p); !s.ok()) return s;
  }
  return Status::Ok();
}

// Only `restored` partitions (each one's index is replaced): the other partitions' entries stay
// as indexed, so that a restore that ends while others are still writing their arrival logs
// reads no more than its own.
Status Store::Impl::index_unsaved_of(std::span<const std::int32_t> restored) {
  for (std::int32_t p : restored) {
    if (Status s = index_partition_unsaved(p); !s.ok()) return s;
  }
  return Status::Ok();
}

Status Store::Impl::index_partition_unsaved(std::int32_t p) {
  const std::string prefix = key_in(kUnsaved, p, "");
  Status inner = Status::Ok();
  ArrivalLog log;
  std::optional<std::uint64_t> first;  // the log's oldest entry
  Status s = scan(kUnsaved, prefix, [&](std::string_view key, std::string_view event_id) {
    const std::optional<std::uint64_t> arrival = keys::read_be64(key.substr(prefix.size()));
    if (arrival && !first) first = *arrival;
    std::optional<std::string> bytes;
    inner = get(kEvents, key_in(kEvents, p, event_id), &bytes);
    if (!inner.ok()) return false;
    v1::StoredEvent stored;
    if (!arrival || !bytes || !stored.ParseFromString(*bytes)) return true;
    const std::string& product = stored.event().product_id();
    if (*arrival >= state_saved_through(product)) log.oldest_unsaved.try_emplace(product, *arrival);
    return true;
  });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  std::unique_lock lock(counters_mutex);
  if (first) {
    log.cleared_through = *first;
  } else {
    const auto next = next_arrival.find(p);
    log.cleared_through = next == next_arrival.end() ? 0 : next->second;
  }
  arrival_logs[p] = std::move(log);
  return Status::Ok();
}

// Fills members_by_pain_point from `members` for stores written before the index existed.
// Idempotent (re-putting an entry is harmless), so a crash midway just redoes it next open.
Status Store::Impl::index_members_if_needed() {
  std::optional<std::string> marker;
  if (Status s = get(kMeta, kMembersIndexedKey, &marker); !s.ok() || marker) return s;
  rocksdb::WriteBatch wb;
  Status inner = Status::Ok();
  Status s = scan(kMembers, "", [&](std::string_view event_id, std::string_view pain_point) {
    std::optional<std::string> bytes;
    inner = get(kEvents, event_id, &bytes);
    if (!inner.ok()) return false;
    v1::StoredEvent stored;
    if (!bytes || !stored.ParseFromString(*bytes)) return true;  // nothing to list it with
    const std::string position =
        keys::member_position(to_micros(stored.event().occurred_at()), event_id);
    inner = from_rocks(
        wb.Put(cf(kMembersByPainPoint), keys::member_key(pain_point, position), rocksdb::Slice()),
        "index members");
    if (inner.ok() && wb.Count() >= 10'000) {
      inner = from_rocks(db->Write(write_options, &wb), "index members");
      wb.Clear();
    }
    return inner.ok();
  });
  if (!s.ok()) return s;
  if (!inner.ok()) return inner;
  if (Status st = from_rocks(wb.Put(slice(kMembersIndexedKey), "1"), "index members");
      !st.ok()) {
    return st;
  }
  return from_rocks(db->Write(write_options, &wb), "index members");
}

// Schema 1 -> 2 (see listings.h): the index values are rewritten first (idempotent); the
// product counters and the new version follow in one WriteBatch, so a crash midway leaves a
// version 1 store that the next open upgrades again.
Status Store::Impl::upgrade_listings() {
  listings::CountDeltas totals;
  if (Status s = listings::build_listings(*db, write_options, cf(kPainPoints),
                                          cf(kPainPointsByProduct), &totals);
      !s.ok()) {
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
        !s.ok()) {
      return s;
    }
  }
  std::string encoded;
  keys::append_be32(encoded, kUnpartitionedSchemaVersion);
  if (Status s = from_rocks(wb.Put(slice(kSchemaVersionKey), encoded), "upgrade schema");
      !s.ok()) {
    return s;
  }
  return from_rocks(db->Write(write_options, &wb), "upgrade the store to schema 2");
}

// *found: the version the directory holds (the layout's version once written for a new store).
Status Store::Impl::check_schema(bool created, std::uint32_t* found) {
  const std::uint32_t expected = partitioned ? kSchemaVersion : kUnpartitionedSchemaVersion;
  *found = expected;
  std::optional<std::string> value;
  if (Status s = get(kMeta, kSchemaVersionKey, &value); !s.ok()) return s;
  if (!value) {
    if (!created && options.read_only) {
      return {StoreErrc::kSchemaMismatch, "data directory has no schema version"};
    }
    if (options.read_only) return Status::Ok();
    std::string encoded;
    keys::append_be32(encoded, expected);
    return from_rocks(db->Put(write_options, slice(kSchemaVersionKey), encoded),
                      "write schema version");
  }
  const auto version = keys::read_be32(*value);
  if (!partitioned && version == kUpgradableSchemaVersion) {
    *found = *version;
    return Status::Ok();
  }
  if (partitioned && version == kPartitionedSchemaVersion) return upgrade_arrival_log(found);
  if (!version || *version != expected) {
    return {StoreErrc::kSchemaMismatch,
            "data directory was written by schema version " +
                (version ? std::to_string(*version) : std::string("<unreadable>")) +
                ", this build reads version " + std::to_string(kSchemaVersion) +
                " (and upgrades 1 to 3 on a read-write open); use a matching painpoint build "
                "or rebuild the directory with `painpoint replay`"};
  }
  return Status::Ok();
}

// Schema 3 -> 4: the records stay as they are (a version 3 arrival log holds no covered
// entries, which is all a version 4 log adds); only the version changes, so that a version 3
// build, which would replay covered entries again after a crash, refuses the directory. A
// read-only open reads version 3 as it is.
Status Store::Impl::upgrade_arrival_log(std::uint32_t* found) {
  *found = kPartitionedSchemaVersion;
  if (options.read_only) return Status::Ok();
  std::string encoded;
  keys::append_be32(encoded, kSchemaVersion);
  if (Status s = from_rocks(db->Put(write_options, slice(kSchemaVersionKey), encoded),
                            "upgrade schema 3 to 4");
      !s.ok()) {
    return s;
  }
  *found = kSchemaVersion;
  spdlog::info("store {}: upgraded schema 3 to schema 4 (arrival log cut by range deletions)",
               dir.string());
  return Status::Ok();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

// Opens the RocksDB instance in `dir` with the store's families (only those that exist for a
// read-only open) and keeps their handles.
Status Store::Impl::open_db(bool existed) {
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
    const std::string name = family_name(static_cast<Family>(i), partitioned);
    if (!existing_families.empty() &&
        std::find(existing_families.begin(), existing_families.end(), name) ==
            existing_families.end()) {
      continue;
    }
    descriptors.emplace_back(name, family_options(static_cast<Family>(i), options, cache));
    opened.push_back(i);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, dir.string(), descriptors, &handles, &raw)
          : rocksdb::DB::Open(db_options, dir.string(), descriptors, &handles, &raw);
  if (!s.ok()) return from_rocks(s, "open " + dir.string());
  db.reset(raw);
  for (std::size_t h = 0; h < handles.size(); ++h) {
    const std::size_t i = opened[h];
    if (i == kMeta) {
      // The default family's handle is owned by the DB; keep using DefaultColumnFamily().
      const rocksdb::Status ignored = db->DestroyColumnFamilyHandle(handles[h]);
      (void)ignored;
      continue;
    }
    families[i] = handles[h];
  }
  return Status::Ok();
}

namespace {

enum class Layout { kNone, kSchema2, kUpgrading, kSchema3 };

// Which layout the families of an existing directory are in: schema 2 families only, both (an
// upgrade under way), or schema 3's only.
Status find_layout(const std::filesystem::path& dir, Layout* out) {
  std::vector<std::string> names;
  const rocksdb::Status listed = rocksdb::DB::ListColumnFamilies({}, dir.string(), &names);
  if (!listed.ok()) return from_rocks(listed, "list column families of " + dir.string());
  auto has = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  const bool old_families = has(kFamilyNames[kEvents]);
  const bool new_families = has(partition_upgrade::partitioned_family_name(kEvents));
  *out = new_families ? (old_families ? Layout::kUpgrading : Layout::kSchema3)
                      : (old_families ? Layout::kSchema2 : Layout::kNone);
  return Status::Ok();
}

// The input partition count recorded in a closed directory (default family only, read only).
Status recorded_partition_count(const std::filesystem::path& dir,
                                std::optional<std::int32_t>* out) {
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened = rocksdb::DB::OpenForReadOnly({}, dir.string(), &raw);
  if (!opened.ok()) return from_rocks(opened, "open " + dir.string());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  const rocksdb::Status got = db->Get({}, slice(kInputPartitionsKey), &value);
  if (got.IsNotFound()) return Status::Ok();
  if (!got.ok()) return from_rocks(got, "read input partitions");
  const auto count = keys::read_be32(value);
  if (!count) return {StoreErrc::kCorruption, "undecodable input partition count"};
  *out = static_cast<std::int32_t>(*count);
  return Status::Ok();
}

// Schema 2 -> 3 of a closed directory (partition_upgrade.h) with the caller's rule.
Status upgrade_to_partitions(const std::filesystem::path& dir, const StoreOptions& options) {
  if (!options.upgrade_rule) {
    return {StoreErrc::kInvalidArgument,
            dir.string() + " is in schema 2; upgrading it to schema 3 needs the partition rule, "
                           "which this open was not given"};
  }
  const PartitionRule& rule = *options.upgrade_rule;
  std::optional<std::int32_t> count;
  if (Status s = recorded_partition_count(dir, &count); !s.ok()) return s;
  if (!count) count = rule.partition_count;
  if (!count || *count <= 0) {
    return {StoreErrc::kInvalidArgument,
            dir.string() + " is in schema 2 and records no input partition count, which its "
                           "upgrade to schema 3 needs; start serve once with the embedded broker "
                           "and the topic's --partitions"};
  }
  partition_assignment::PartitionRule private_rule;
  private_rule.of_product = [&rule, n = *count](std::string_view product) {
    return rule.of_product(product, n);
  };
  private_rule.state_key_owner = rule.state_key_owner;
  spdlog::info("store {}: upgrading schema 2 to schema 3 (records keyed by input partition, {} "
               "partitions); an interrupted upgrade resumes at the next open",
               dir.string(), *count);
  const auto started = std::chrono::steady_clock::now();
  partition_upgrade::UpgradeStats stats;
  if (Status s = from_rocks(partition_upgrade::run(dir, private_rule, {}, &stats),
                            "upgrade " + dir.string() + " to schema 3");
      !s.ok()) {
    return s;
  }
  spdlog::info("store {}: upgraded to schema 3 in {} ms ({} records copied)", dir.string(),
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count(),
               stats.copy.records);
  return Status::Ok();
}

}  // namespace

Status Store::open_layout(const std::filesystem::path& dir, const StoreOptions& options,
                          bool partitioned, std::unique_ptr<Store>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->dir = dir;
  impl->partitioned = partitioned;
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
  if (Status st = impl->open_db(existed); !st.ok()) return st;

  std::uint32_t version = 0;
  if (Status st = impl->check_schema(!existed, &version); !st.ok()) return st;
  impl->schema_version = version;
  if (Status st = impl->load_counters(); !st.ok()) return st;
  if (!options.read_only && !partitioned) {
    if (Status st = impl->index_members_if_needed(); !st.ok()) return st;
    if (version == kUpgradableSchemaVersion) {
      if (Status st = impl->upgrade_listings(); !st.ok()) return st;
      impl->schema_version = kUnpartitionedSchemaVersion;
    }
  }
  if (!options.read_only) {
    if (Status st = impl->index_unsaved(); !st.ok()) return st;
  }
  out->reset(new Store(std::move(impl)));
  return Status::Ok();
}

// A schema 1 or 2 directory opened read-write is brought to schema 2 by the old layout's open
// (member index, listings), closed, and upgraded to schema 3 before the open proper.
Status Store::open(const std::filesystem::path& dir, const StoreOptions& options,
                   std::unique_ptr<Store>* out) {
  std::error_code ec;
  Layout layout = Layout::kNone;
  if (std::filesystem::exists(dir / "CURRENT", ec)) {
    if (Status s = find_layout(dir, &layout); !s.ok()) return s;
  }
  if (options.legacy_schema2) {
    if (layout == Layout::kUpgrading || layout == Layout::kSchema3) {
      return {StoreErrc::kSchemaMismatch, dir.string() + " is no schema 2 directory"};
    }
    return open_layout(dir, options, /*partitioned=*/false, out);
  }
  if (layout == Layout::kSchema2 || layout == Layout::kUpgrading) {
    if (options.read_only) {
      return {StoreErrc::kSchemaMismatch,
              dir.string() + " is in schema 2 (or older), whose records carry no input " +
                  "partition; open it read-write once (start serve, or run `painpoint replay " +
                  "rebuild`) to upgrade it to schema " + std::to_string(kSchemaVersion)};
    }
    if (layout == Layout::kSchema2) {
      std::unique_ptr<Store> old;
      StoreOptions old_options = options;
      old_options.create_if_missing = false;
      if (Status s = open_layout(dir, old_options, /*partitioned=*/false, &old); !s.ok()) {
        return s;
      }
    }
    if (Status s = upgrade_to_partitions(dir, options); !s.ok()) return s;
  }
  return open_layout(dir, options, /*partitioned=*/true, out);
}

}  // namespace painpoint::store

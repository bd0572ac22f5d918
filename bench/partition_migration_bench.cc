// What the one-time migration of a schema 2 store into the per-partition layout costs
// (store/src/partition_migration.h), for docs/adr-005-scale-out.md. Prints figures only.
//
//   partition_migration_bench DIR [--events N] [--products P] [--partitions K]
//
// Writes a schema 2 store with Store::commit() (N events of 200-byte texts over P products, a
// membership each, 20 pain points and one aggregator state key per product), then copies it into
// the partitioned families (products to partitions by ingest's murmur2 over K), lists the
// partitions present and drops one.

#include <rocksdb/db.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/ingest/partitioner.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "partition_migration.h"
#include "partition_ranges.h"

namespace {

using Clock = std::chrono::steady_clock;
using painpoint::store::Family;
using painpoint::store::kFamilyCount;
using painpoint::store::kFamilyNames;
namespace partition_migration = painpoint::store::partition_migration;
namespace partition_ranges = painpoint::store::partition_ranges;

struct Args {
  std::filesystem::path dir;
  int events = 200'000;
  int products = 50;
  int partitions = 12;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "%s\n", what.c_str());
    std::exit(1);
  }
}

std::string product_of(int i, const Args& args) {
  return "product-" + std::to_string(i % args.products);
}
std::string pain_point_of(int i, const Args& args) {
  return "pp-" + std::to_string(i % args.products) + "-" + std::to_string(i % 20);
}

void write_schema2_store(const Args& args) {
  std::unique_ptr<painpoint::store::Store> store;
  painpoint::store::StoreOptions options;
  options.legacy_schema2 = true;
  auto s = painpoint::store::Store::open(args.dir, options, &store);
  check(s.ok(), "open: " + s.to_string());
  constexpr int kBatch = 5'000;
  const std::string text(200, 'x');
  for (int begin = 0; begin < args.events; begin += kBatch) {
    painpoint::store::CommitBatch batch;
    for (int i = begin; i < std::min(args.events, begin + kBatch); ++i) {
      painpoint::v1::StoredEvent& stored = batch.events.emplace_back();
      auto* event = stored.mutable_event();
      event->set_event_id("ev-" + std::to_string(i * 7919 % args.events) + "-" + std::to_string(i));
      event->set_product_id(product_of(i, args));
      event->set_source(painpoint::v1::SOURCE_CUSTOMER);
      event->set_text(text);
      event->mutable_occurred_at()->set_seconds(1'700'000'000 + i);
      batch.memberships.push_back({event->event_id(), event->product_id(), pain_point_of(i, args)});
    }
    batch.aggregator_checkpoint = true;
    check(store->commit(batch).ok(), "commit");
  }
  painpoint::store::CommitBatch summaries;
  for (int i = 0; i < args.products * 20; ++i) {
    painpoint::v1::PainPointSummary& summary = summaries.summaries.emplace_back();
    summary.set_id(pain_point_of(i, args));
    summary.set_product_id(product_of(i, args));
    summary.set_status(painpoint::v1::STATUS_ACTIVE);
    summary.set_version(1);
  }
  for (int p = 0; p < args.products; ++p) {
    summaries.aggregator_state.push_back({"agg/product-" + std::to_string(p) + "/m", "state"});
  }
  check(store->commit(summaries).ok(), "commit summaries");
}

struct Raw {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<std::string> names;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* family(std::string_view name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return handles[i];
    }
    return nullptr;
  }
};

// The store's families plus an empty "<name>@p" beside each partitioned one.
Raw open_with_partitioned_families(const Args& args) {
  Raw raw;
  check(rocksdb::DB::ListColumnFamilies({}, args.dir.string(), &raw.names).ok(), "list families");
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    if (partition_ranges::is_partitioned(static_cast<Family>(f))) {
      raw.names.push_back(std::string(kFamilyNames[f]) + "@p");
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : raw.names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DBOptions options;
  options.create_missing_column_families = true;
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::Open(options, args.dir.string(), descriptors, &raw.handles, &db).ok(), "open");
  raw.db.reset(db);
  return raw;
}

Args parse(int argc, char** argv) {
  Args args;
  check(argc >= 2,
        "usage: partition_migration_bench DIR [--events N] [--products P] [--partitions K]");
  args.dir = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--events")
      args.events = value;
    else if (flag == "--products")
      args.products = value;
    else if (flag == "--partitions")
      args.partitions = value;
    else
      check(false, "unknown option " + std::string(flag));
  }
  check(args.events > 0 && args.products > 0 && args.partitions > 0, "counts must be positive");
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::filesystem::remove_all(args.dir);
  auto start = Clock::now();
  write_schema2_store(args);
  std::printf("schema 2 store: %d events, %d products, written in %.2f s\n", args.events,
              args.products, seconds_since(start));

  Raw raw = open_with_partitioned_families(args);
  partition_migration::Families families;
  std::vector<rocksdb::ColumnFamilyHandle*> partitioned;
  for (std::size_t f = 0; f < kFamilyCount; ++f) {
    families.from[f] = raw.family(kFamilyNames[f]);
    if (partition_ranges::is_partitioned(static_cast<Family>(f))) {
      families.to[f] = raw.family(std::string(kFamilyNames[f]) + "@p");
      partitioned.push_back(families.to[f]);
    }
  }
  painpoint::store::partition_assignment::PartitionRule rule;
  rule.of_product = [&args](std::string_view product) {
    return painpoint::ingest::partition_for_key(product, args.partitions);
  };
  rule.state_key_owner = [](std::string_view key)
      -> std::optional<painpoint::store::partition_assignment::StateKeyOwner> {
    const std::string_view rest = key.substr(4);  // "agg/"
    return painpoint::store::partition_assignment::StateKeyOwner{
        std::string(rest.substr(0, rest.find('/'))), ""};
  };

  partition_migration::CopyStats stats;
  const double cpu_before = cpu_seconds();
  start = Clock::now();
  const rocksdb::Status copied = partition_migration::copy(*raw.db, {}, families, rule, {}, &stats);
  const double copy_seconds = seconds_since(start);
  check(copied.ok(), "copy: " + copied.ToString());
  std::printf("copy: %llu records in %llu batches, %.2f s wall, %.2f s CPU, %.0f records/s\n",
              static_cast<unsigned long long>(stats.records),
              static_cast<unsigned long long>(stats.batches), copy_seconds,
              cpu_seconds() - cpu_before, static_cast<double>(stats.records) / copy_seconds);

  std::vector<std::int32_t> present;
  start = Clock::now();
  check(partition_ranges::present(*raw.db, {}, partitioned, families.from[painpoint::store::kMeta],
                                  &present)
            .ok(),
        "present");
  std::printf("partitions present: %zu, listed in %.2f ms\n", present.size(),
              seconds_since(start) * 1e3);
  check(!present.empty(), "no partition present");
  rocksdb::WriteBatch drop;
  start = Clock::now();
  check(partition_ranges::add_drop(drop, partitioned, families.from[painpoint::store::kMeta],
                                   present.front())
            .ok(),
        "drop");
  check(raw.db->Write({}, &drop).ok(), "write drop");
  std::printf("drop partition %d: %.2f ms (one WriteBatch of %d range deletions)\n",
              present.front(), seconds_since(start) * 1e3, drop.Count());

  for (auto* handle : raw.handles) check(raw.db->DestroyColumnFamilyHandle(handle).ok(), "close");
  check(raw.db->Close().ok(), "close");
  std::filesystem::remove_all(args.dir);
  return 0;
}

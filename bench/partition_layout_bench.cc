// What separating the aggregator state per input partition costs in RocksDB, for
// docs/adr-005-scale-out.md: (a) one RocksDB per partition, (b) one RocksDB with the partition as
// a key prefix, (c) one RocksDB with column families per partition. Prints figures only.
//
//   partition_layout_bench DIR [--partitions P] [--events-per-partition N]
//
// Every layout gets the store's eight column families per partition (default, events, by_time,
// members, pain_points, pain_points_by_product, aggregator_state, outbox) and N events per
// partition: a 300-byte value in "events", 40-byte values in the others.

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const std::vector<std::string> kFamilies = {"default",     "events",     "by_time",
                                            "members",     "pain_points", "pain_points_by_product",
                                            "aggregator_state", "outbox"};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

struct Db {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  void close() {
    for (auto* h : handles) check(db->DestroyColumnFamilyHandle(h), "destroy handle");
    handles.clear();
    check(db->Close(), "close");
    db.reset();
  }
};

Db open(const std::string& path, const std::vector<std::string>& families) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : families) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  Db out;
  rocksdb::DB* raw = nullptr;
  check(rocksdb::DB::Open(options, path, descriptors, &out.handles, &raw), "open");
  out.db.reset(raw);
  return out;
}

std::string prefixed(int partition, const std::string& key) {
  std::string out;
  out.push_back(static_cast<char>(partition >> 8));
  out.push_back(static_cast<char>(partition & 0xff));
  return out + key;
}

// N events of one partition into `db`, family i of the store in handles[first + i].
void fill(Db& db, std::size_t first, int partition, int events, bool prefix) {
  rocksdb::WriteBatch batch;
  for (int e = 0; e < events; ++e) {
    const std::string key = "evt-" + std::to_string(e);
    for (std::size_t f = 1; f < kFamilies.size(); ++f) {
      const std::string value(f == 1 ? 300 : 40, 'x');
      check(batch.Put(db.handles[first + f], prefix ? prefixed(partition, key) : key, value), "put");
    }
  }
  check(db.db->Write(rocksdb::WriteOptions(), &batch), "write");
  check(db.db->Flush(rocksdb::FlushOptions(), db.handles), "flush");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: %s DIR [--partitions P] [--events-per-partition N]\n", argv[0]), 2;
  const std::string dir = argv[1];
  int partitions = 128, events = 1000;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--partitions") partitions = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--events-per-partition") events = std::atoi(argv[i + 1]);
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::printf("%d partitions, %d events each, RSS at start %ld KiB\n", partitions, events, rss_kib());

  {  // (a) one RocksDB per partition
    std::vector<Db> dbs;
    auto start = Clock::now();
    for (int p = 0; p < partitions; ++p) dbs.push_back(open(dir + "/a-" + std::to_string(p), kFamilies));
    std::printf("(a) create %d DBs: %.0f ms\n", partitions, ms_since(start));
    for (int p = 0; p < partitions; ++p) fill(dbs[static_cast<std::size_t>(p)], 0, p, events, false);
    std::printf("(a) RSS with %d DBs open and filled: %ld KiB\n", partitions, rss_kib());
    start = Clock::now();
    for (auto& db : dbs) db.close();
    std::printf("(a) close all: %.0f ms\n", ms_since(start));
    dbs.clear();
    start = Clock::now();
    for (int p = 0; p < partitions; ++p) dbs.push_back(open(dir + "/a-" + std::to_string(p), kFamilies));
    std::printf("(a) reopen all: %.0f ms (%.2f ms per DB)\n", ms_since(start), ms_since(start) / partitions);
    start = Clock::now();
    dbs.back().close();
    check(rocksdb::DestroyDB(dir + "/a-" + std::to_string(partitions - 1), rocksdb::Options()), "destroy");
    std::printf("(a) drop one partition (close + DestroyDB): %.1f ms\n", ms_since(start));
    dbs.pop_back();
    for (auto& db : dbs) db.close();
  }
  {  // (b) one RocksDB, the partition as a 2-byte key prefix
    Db db = open(dir + "/b", kFamilies);
    for (int p = 0; p < partitions; ++p) fill(db, 0, p, events, true);
    std::printf("(b) RSS with one DB filled: %ld KiB\n", rss_kib());
    auto start = Clock::now();
    const int victim = partitions / 2;
    const std::string from = prefixed(victim, ""), to = prefixed(victim + 1, "");
    rocksdb::WriteBatch batch;
    for (std::size_t f = 1; f < kFamilies.size(); ++f) check(batch.DeleteRange(db.handles[f], from, to), "delete range");
    check(db.db->Write(rocksdb::WriteOptions(), &batch), "write");
    std::printf("(b) drop one partition (DeleteRange in 7 families, one write): %.2f ms\n", ms_since(start));
    start = Clock::now();
    long left = 0;
    for (std::size_t f = 1; f < kFamilies.size(); ++f) {
      std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(rocksdb::ReadOptions(), db.handles[f]));
      for (it->Seek(from); it->Valid() && it->key().compare(to) < 0; it->Next()) ++left;
    }
    std::printf("(b) scan the dropped range afterwards: %ld keys, %.2f ms\n", left, ms_since(start));
    start = Clock::now();
    rocksdb::Slice begin(from), end(to);
    for (std::size_t f = 1; f < kFamilies.size(); ++f) check(db.db->CompactRange(rocksdb::CompactRangeOptions(), db.handles[f], &begin, &end), "compact");
    std::printf("(b) compact that range in 7 families: %.0f ms\n", ms_since(start));
    start = Clock::now();
    db.close();
    std::printf("(b) close: %.0f ms\n", ms_since(start));
    start = Clock::now();
    db = open(dir + "/b", kFamilies);
    std::printf("(b) reopen: %.0f ms\n", ms_since(start));
    db.close();
  }
  {  // (c) one RocksDB, the store's families per partition
    std::vector<std::string> families = {"default"};
    for (int p = 0; p < partitions; ++p) {
      for (std::size_t f = 1; f < kFamilies.size(); ++f) families.push_back(kFamilies[f] + "-" + std::to_string(p));
    }
    auto start = Clock::now();
    Db db = open(dir + "/c", families);
    std::printf("(c) create one DB with %zu column families: %.0f ms\n", families.size(), ms_since(start));
    for (int p = 0; p < partitions; ++p) fill(db, static_cast<std::size_t>(p) * 7, p, events, false);
    std::printf("(c) RSS filled: %ld KiB\n", rss_kib());
    start = Clock::now();
    db.close();
    std::printf("(c) close: %.0f ms\n", ms_since(start));
    start = Clock::now();
    db = open(dir + "/c", families);
    std::printf("(c) reopen: %.0f ms\n", ms_since(start));
    start = Clock::now();
    for (std::size_t f = 1; f <= 7; ++f) check(db.db->DropColumnFamily(db.handles[f]), "drop");
    std::printf("(c) drop one partition (7 DropColumnFamily): %.1f ms\n", ms_since(start));
    db.close();
  }
  std::filesystem::remove_all(dir);
  return 0;
}

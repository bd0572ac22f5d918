// Test helper for the fault suites: changes a stopped Painpoint data directory behind the store's
// back, as another build or a damaged disk would have left it, so that the tests can check what
// `painpoint serve` says about it. Uses RocksDB directly: the store's API refuses on purpose.
//
// usage: store_surgery stamp-schema DATA_DIR VERSION
//          rewrites the schema version marker
//        store_surgery damage DATA_DIR COLUMN_FAMILY KEY_PREFIX
//          overwrites the value of the first key starting with KEY_PREFIX with bytes that do not
//          decode, and prints that key

#include <rocksdb/db.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace {

// An open data directory with every column family, closed in the right order.
struct OpenDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<std::string> names;
  ~OpenDb() {
    for (auto* handle : handles) (void)db->DestroyColumnFamilyHandle(handle);
  }
  rocksdb::ColumnFamilyHandle* family(const std::string& name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return handles[i];
    }
    return nullptr;
  }
};

rocksdb::Status open(const std::string& dir, OpenDb& out) {
  if (auto s = rocksdb::DB::ListColumnFamilies({}, dir, &out.names); !s.ok()) return s;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : out.names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open({}, dir, descriptors, &out.handles, &raw);
  out.db.reset(raw);
  return s;
}

int stamp_schema(const OpenDb& db, std::uint32_t version) {
  // The store keeps it big-endian in the default column family.
  const std::string encoded{static_cast<char>(version >> 24), static_cast<char>(version >> 16),
                            static_cast<char>(version >> 8), static_cast<char>(version)};
  if (auto s = db.db->Put({}, "schema_version", encoded); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

int damage(const OpenDb& db, const std::string& family_name, const std::string& prefix) {
  rocksdb::ColumnFamilyHandle* family = db.family(family_name);
  if (family == nullptr) {
    std::cerr << "no column family " << family_name << "\n";
    return 1;
  }
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator({}, family));
  it->Seek(prefix);
  if (!it->Valid() || !it->key().starts_with(prefix)) {
    std::cerr << "no key starts with " << prefix << "\n";
    return 1;
  }
  const std::string key = it->key().ToString();
  it.reset();
  if (auto s = db.db->Put({}, family, key, std::string(8, '\xff')); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  std::cout << key << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const bool stamp = args.size() == 3 && args[0] == "stamp-schema";
  const bool damage_record = args.size() == 4 && args[0] == "damage";
  if (!stamp && !damage_record) {
    std::cerr << "usage: store_surgery stamp-schema DATA_DIR VERSION\n"
                 "       store_surgery damage DATA_DIR COLUMN_FAMILY KEY_PREFIX\n";
    return 2;
  }
  OpenDb db;
  if (auto s = open(args[1], db); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  if (stamp) return stamp_schema(db, static_cast<std::uint32_t>(std::stoul(args[2])));
  return damage(db, args[2], args[3]);
}

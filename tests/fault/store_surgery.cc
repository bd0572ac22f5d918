// Test helper for the fault suites: changes a stopped Painpoint data directory behind the store's
// back, as another build or a damaged disk would have left it, so that the tests can check what
// `painpoint serve` says about it. Uses RocksDB directly: the store's API refuses on purpose.
//
// usage: store_surgery stamp-schema DATA_DIR VERSION
//          rewrites the schema version marker
//        store_surgery damage DATA_DIR COLUMN_FAMILY KEY_PREFIX
//          overwrites the value of the first key starting with KEY_PREFIX (after the partition,
//          in a schema 3 directory) with bytes that do not decode, and prints that key
//        store_surgery erase DATA_DIR KEY
//          deletes KEY from the default column family (a record an older build did not write)

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

// In a schema 3 directory the family is "<name>@p" and every key begins with its 2-byte
// partition: the prefix is matched after it, and the key is printed without it (as the store's
// callers know it).
int damage(const OpenDb& db, const std::string& family_name, const std::string& prefix) {
  rocksdb::ColumnFamilyHandle* family = db.family(family_name);
  std::size_t skip = 0;
  if (family == nullptr) {
    family = db.family(family_name + "@p");
    skip = 2;
  }
  if (family == nullptr) {
    std::cerr << "no column family " << family_name << "\n";
    return 1;
  }
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator({}, family));
  std::string key;
  for (skip == 0 ? it->Seek(prefix) : it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice found = it->key();
    if (found.size() >= skip &&
        rocksdb::Slice(found.data() + skip, found.size() - skip).starts_with(prefix)) {
      key = found.ToString();
      break;
    }
    if (skip == 0) break;
  }
  if (key.empty()) {
    std::cerr << "no key starts with " << prefix << "\n";
    return 1;
  }
  it.reset();
  if (auto s = db.db->Put({}, family, key, std::string(8, '\xff')); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  std::cout << key.substr(skip) << "\n";
  return 0;
}

int erase(const OpenDb& db, const std::string& key) {
  if (auto s = db.db->Delete({}, key); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const bool stamp = args.size() == 3 && args[0] == "stamp-schema";
  const bool damage_record = args.size() == 4 && args[0] == "damage";
  const bool erase_key = args.size() == 3 && args[0] == "erase";
  if (!stamp && !damage_record && !erase_key) {
    std::cerr << "usage: store_surgery stamp-schema DATA_DIR VERSION\n"
                 "       store_surgery damage DATA_DIR COLUMN_FAMILY KEY_PREFIX\n"
                 "       store_surgery erase DATA_DIR KEY\n";
    return 2;
  }
  OpenDb db;
  if (auto s = open(args[1], db); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  if (stamp) return stamp_schema(db, static_cast<std::uint32_t>(std::stoul(args[2])));
  if (erase_key) return erase(db, args[2]);
  return damage(db, args[2], args[3]);
}

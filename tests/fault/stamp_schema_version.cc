// Test helper for storage_test.py: rewrites the schema version marker of a stopped Painpoint data
// directory, as a build with another on-disk layout would have left it, so that the test can check
// what `painpoint serve` says about it. Uses RocksDB directly: the store's API refuses on purpose.
//
// usage: stamp_schema_version DATA_DIR VERSION

#include <rocksdb/db.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: stamp_schema_version DATA_DIR VERSION\n";
    return 2;
  }
  const std::string dir = argv[1];
  const auto version = static_cast<std::uint32_t>(std::stoul(argv[2]));
  std::vector<std::string> names;
  if (auto s = rocksdb::DB::ListColumnFamilies({}, dir, &names); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::Open({}, dir, descriptors, &handles, &raw); !s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  // The store keeps it big-endian in the default column family.
  const std::string encoded{static_cast<char>(version >> 24), static_cast<char>(version >> 16),
                            static_cast<char>(version >> 8), static_cast<char>(version)};
  const auto put = db->Put({}, "schema_version", encoded);
  for (auto* handle : handles) (void)db->DestroyColumnFamilyHandle(handle);
  if (!put.ok()) {
    std::cerr << put.ToString() << "\n";
    return 1;
  }
  return 0;
}

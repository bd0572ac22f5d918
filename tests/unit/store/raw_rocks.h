#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace painpoint::store {

namespace fs = std::filesystem;

// The store's RocksDB opened directly with all its column families, to write what another
// build would have left behind. Closed at scope exit.
struct RawRocks {
  explicit RawRocks(fs::path directory) : dir(std::move(directory)) {}
  RawRocks(const RawRocks&) = delete;
  RawRocks& operator=(const RawRocks&) = delete;
  ~RawRocks() {
    for (auto* h : handles) EXPECT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }

  [[nodiscard]] bool open() {
    if (!rocksdb::DB::ListColumnFamilies({}, dir.string(), &names).ok()) return false;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    if (!rocksdb::DB::Open({}, dir.string(), descriptors, &handles, &raw).ok()) return false;
    db.reset(raw);
    return true;
  }
  [[nodiscard]] rocksdb::ColumnFamilyHandle* family(const std::string& name) const {
    return handles[static_cast<std::size_t>(std::find(names.begin(), names.end(), name) -
                                            names.begin())];
  }

  fs::path dir;
  std::vector<std::string> names;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<rocksdb::DB> db;
};

}  // namespace painpoint::store

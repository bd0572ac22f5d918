#pragma once

// Helpers shared by the store's source files (private: never included by a public header, so
// RocksDB types stay out of the store's interface).

#include <google/protobuf/timestamp.pb.h>
#include <rocksdb/db.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "painpoint/base/time.h"
#include "painpoint/store/status.h"

namespace painpoint::store {

// A RocksDB status as the store's Status, `what` naming the operation.
Status from_rocks(const rocksdb::Status& status, std::string_view what);

inline rocksdb::Slice slice(std::string_view view) { return {view.data(), view.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

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

}  // namespace painpoint::store

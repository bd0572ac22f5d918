// The store's Status and its mapping from RocksDB's.
#include "painpoint/store/status.h"

#include <string>

#include "store_internal.h"

namespace painpoint::store {

std::string_view to_string(StoreErrc code) {
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


Status from_rocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
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

}  // namespace painpoint::store

#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "painpoint/base/status.h"

namespace painpoint::store {

enum class StoreErrc {
  kOk = 0,
  kIoError,         // the disk or file system failed (includes a read-only directory)
  kNoSpace,         // the disk is full; the Store writes no more (a restart resumes)
  kCorruption,      // checksums or our own records do not decode
  kSchemaMismatch,  // the directory was written by another schema version
  kLocked,          // another process (a live `painpoint serve`) holds the directory
  kInvalidArgument,
};

// Stable lowercase name, e.g. "no_space"; meant for logs and metric labels.
std::string_view to_string(StoreErrc code);
// The code base::Result uses when it is built from an OK status (a programming error).
constexpr StoreErrc result_without_value_code(StoreErrc) { return StoreErrc::kInvalidArgument; }

// Outcome of a store operation, in the style of rocksdb::Status: never ignore it.
using Status = base::Status<StoreErrc>;

}  // namespace painpoint::store

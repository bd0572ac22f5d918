#pragma once

#include <string>
#include <string_view>
#include <utility>

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

std::string_view errc_name(StoreErrc code);

// Outcome of a store operation, in the style of rocksdb::Status: never ignore it.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StoreErrc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  [[nodiscard]] bool is_ok() const { return code_ == StoreErrc::kOk; }
  [[nodiscard]] StoreErrc code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  // "<code>: <message>" for logs and errors shown to operators.
  [[nodiscard]] std::string to_string() const;

 private:
  StoreErrc code_ = StoreErrc::kOk;
  std::string message_;
};

}  // namespace painpoint::store

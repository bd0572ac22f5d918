#pragma once

// Error values of the changelog module. Kafka trouble and a superseded owner are expected
// operating conditions, so they travel as values the caller must look at.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace painpoint::changelog {

enum class ChangelogErrc {
  kOk = 0,
  kKafka,            // the broker or the client failed (message says which; kafka_error keeps it)
  kTimedOut,         // acknowledgements or the end of the changelog did not come in time
  kFenced,           // another owner has taken the partition over: stop writing, do not commit
  kCorrupt,          // a record on the changelog cannot be read as Painpoint's changelog format
  kInvalidArgument,  // bad family, partition or checkpoint passed by the caller
  kApplyFailed,      // the caller's apply callback failed; the restore stopped before that batch
  kState,            // call not valid in the current state (a failed writer, a finished restore)
};

// Stable lowercase name, e.g. "fenced"; meant for logs and metric labels.
std::string_view to_string(ChangelogErrc code);

struct [[nodiscard]] Status {
  ChangelogErrc code = ChangelogErrc::kOk;
  std::string message;
  int kafka_error = 0;  // librdkafka's rd_kafka_resp_err_t when the failure came from it

  static Status Ok() { return {}; }
  static Status Error(ChangelogErrc c, std::string msg, int native = 0) {
    return Status{c, std::move(msg), native};
  }
  bool ok() const { return code == ChangelogErrc::kOk; }
  std::string to_string() const;  // "fenced: ..." — for logs
};

// Either a value or a failed Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status error) : status_(std::move(error)) {
    if (status_.ok()) status_ = Status::Error(ChangelogErrc::kState, "Result built from OK");
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace painpoint::changelog

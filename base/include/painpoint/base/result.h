#pragma once

// The one Result template of the modules whose errors travel as values. Each module keeps its
// own error enum and Status type (ingest::KafkaErrc, changelog::ChangelogErrc) and names its
// Result as an alias: `template <class T> using Result = base::Result<T, Status>;`.

#include <optional>
#include <utility>

namespace painpoint::base {

// Either a value or a failed StatusT. StatusT has `bool ok() const` and a static
// `result_without_value()`: the failed status that stands in when a Result is built from an OK
// status, a programming error that must not pass for success. Accessing value() of a failed
// result is a programming error too.
template <class T, class StatusT>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
  Result(StatusT error) : status_(std::move(error)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = StatusT::result_without_value();
  }

  bool ok() const { return value_.has_value(); }
  const StatusT& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  StatusT status_;
};

}  // namespace painpoint::base

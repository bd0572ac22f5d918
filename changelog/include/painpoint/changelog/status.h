#pragma once

// Error values of the changelog module. Kafka trouble and a superseded owner are expected
// operating conditions, so they travel as values the caller must look at.

#include <string>
#include <string_view>
#include <utility>

#include "painpoint/base/result.h"

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
  // What a Result built from an OK status holds instead (base::Result).
  static Status result_without_value() {
    return Error(ChangelogErrc::kState, "Result built from OK");
  }
  std::string to_string() const;  // "fenced: ..." — for logs
};

// Either a value or a failed Status (base/result.h).
template <class T>
using Result = base::Result<T, Status>;

}  // namespace painpoint::changelog

#pragma once

// Error values of the changelog module. Kafka trouble and a superseded owner are expected
// operating conditions, so they travel as values the caller must look at.

#include <string>
#include <string_view>
#include <utility>

#include "painpoint/base/result.h"
#include "painpoint/base/status.h"

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

// The code base::Result uses when it is built from an OK status (a programming error).
constexpr ChangelogErrc result_without_value_code(ChangelogErrc) { return ChangelogErrc::kState; }

// native_error() keeps librdkafka's rd_kafka_resp_err_t when the failure came from it.
using Status = base::Status<ChangelogErrc>;

// Either a value or a failed Status (base/result.h).
template <class T>
using Result = base::Result<T, Status>;

}  // namespace painpoint::changelog

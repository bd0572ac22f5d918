// The `painpoint` binary's exit statuses. Scripts, deploy/ and the tests rely on the numbers, so
// they never change; several names share a number where commands report the same kind of outcome
// in their own words (docs/cli.md lists them per command).
#pragma once

namespace painpoint::base {

enum class ExitCode : int {
  kOk = 0,
  // 1: the command ran, and part of its work failed or was rejected; its output says which.
  kFailed = 1,
  kInputRejected = 1,   // produce, import: lines or rows rejected (the others were sent)
  kTopicsMismatch = 1,  // topics ensure: a topic's partitions or configuration differ
  kStartFailed = 1,     // serve: the embedded broker, store, HTTP server or a stage did not start
  // 2: nothing was done: the arguments, configuration or model files cannot be used, or the Kafka
  // cluster or the store is not in a state the command can work on.
  kBadUsage = 2,
  kCannotProceed = 2,
  // 3: the store: held by another process (replay), stopped writing (serve); or an import that
  // Kafka did not fully acknowledge (rerun it to resume).
  kStoreLocked = 3,
  kStoreFailed = 3,
  kImportIncomplete = 3,
};

[[nodiscard]] constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

}  // namespace painpoint::base

#include "painpoint/changelog/status.h"

namespace painpoint::changelog {

std::string_view to_string(ChangelogErrc code) {
  switch (code) {
    case ChangelogErrc::kOk:
      return "ok";
    case ChangelogErrc::kKafka:
      return "kafka";
    case ChangelogErrc::kTimedOut:
      return "timed_out";
    case ChangelogErrc::kFenced:
      return "fenced";
    case ChangelogErrc::kCorrupt:
      return "corrupt";
    case ChangelogErrc::kInvalidArgument:
      return "invalid_argument";
    case ChangelogErrc::kApplyFailed:
      return "apply_failed";
    case ChangelogErrc::kState:
      return "state";
  }
  return "unknown";
}

}  // namespace painpoint::changelog

#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

std::string_view to_string(KafkaErrc code) {
  switch (code) {
    case KafkaErrc::kOk:
      return "ok";
    case KafkaErrc::kInvalidConfig:
      return "invalid_config";
    case KafkaErrc::kInvalidArgument:
      return "invalid_argument";
    case KafkaErrc::kQueueFull:
      return "queue_full";
    case KafkaErrc::kTimedOut:
      return "timed_out";
    case KafkaErrc::kTransport:
      return "transport";
    case KafkaErrc::kUnknownTopic:
      return "unknown_topic";
    case KafkaErrc::kMessageTooLarge:
      return "message_too_large";
    case KafkaErrc::kOffsetOutOfRange:
      return "offset_out_of_range";
    case KafkaErrc::kFatal:
      return "fatal";
    case KafkaErrc::kState:
      return "state";
    case KafkaErrc::kUnsupported:
      return "unsupported";
    case KafkaErrc::kOther:
      return "other";
  }
  return "unknown";
}

}  // namespace painpoint::ingest

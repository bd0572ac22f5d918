#pragma once

// Decoding, validation and normalization of incoming FeedbackEvents.
// Shared by `painpoint serve` (ingest stage), `painpoint produce`, `painpoint cluster` and the
// HTTP webhook, so that every entry point accepts and rejects exactly the same events.
// All functions are pure and thread-safe.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/v1/feedback.pb.h"

namespace painpoint::ingest {

enum class RejectReason {
  kUndecodable,  // bytes are not a FeedbackEvent (protobuf) / line is not proto3 JSON
  kMissingEventId,
  kBadEventId,  // too long or control characters
  kMissingProductId,
  kBadProductId,  // outside [A-Za-z0-9._:-], or too long
  kMissingText,   // empty or whitespace only
  kTextTooLong,
  kInvalidUtf8,   // in text or any other string field
  kBadTimestamp,  // out of range, or too far in the future
  kBadField,      // any other field out of range (negative ARR, oversize attribute, ...)
};

// Stable machine-readable code, e.g. "missing_event_id"; used in dead-letter headers and errors.
std::string_view reason_code(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string detail;  // human-readable, names the field
};

struct ValidationConfig {
  std::size_t max_text_bytes = 16 * 1024;
  std::size_t max_id_bytes = 128;
  std::size_t max_attributes = 64;
  std::size_t max_attribute_bytes = 1024;
  std::chrono::hours max_future_skew{24};
  // Earliest accepted occurred_at; older timestamps are data errors, not history.
  std::chrono::sys_seconds min_occurred_at{std::chrono::sys_days{std::chrono::year{2000} / 1 / 1}};
};

// The source a topic implies: feedback.support -> SOURCE_SUPPORT, etc.; UNSPECIFIED otherwise.
v1::Source source_for_topic(std::string_view topic);

// Validates `event` and normalizes it in place: trims and collapses whitespace, scrubs PII
// (emails, phone numbers, card-like digit runs become placeholders), fills `source` from
// `topic_source` when unspecified, and sets occurred_at to `now` when absent.
// Returns the first problem found, or nullopt when the event is valid.
[[nodiscard]] std::optional<Rejection> validate_and_normalize(
    v1::FeedbackEvent& event, v1::Source topic_source, const ValidationConfig& config,
    std::chrono::system_clock::time_point now);

// The text cleanup validate_and_normalize() applies to `text`: emails -> "<email>", phone
// numbers -> "<phone>", card-like digit runs (13+ digits) -> "<number>"; control characters
// dropped; Unicode whitespace runs collapsed to one ASCII space; trimmed. `text` must be valid
// UTF-8. Heuristic by nature: it favours scrubbing over keeping an odd number.
std::string normalize_text(std::string_view text);

// Parses one proto3-JSON line into *out (unknown fields rejected). nullopt on success.
[[nodiscard]] std::optional<Rejection> parse_json_event(std::string_view line,
                                                        v1::FeedbackEvent* out);

// Parses protobuf wire bytes into *out. nullopt on success.
[[nodiscard]] std::optional<Rejection> parse_wire_event(std::string_view bytes,
                                                        v1::FeedbackEvent* out);

}  // namespace painpoint::ingest

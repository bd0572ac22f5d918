#pragma once

// Invariants every accepted FeedbackEvent must satisfy, shared by the event fuzz targets.

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>
#include <string>

#include "checks.h"
#include "painpoint/base/utf8.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::fuzz {

// A fixed clock keeps runs reproducible: the same input always takes the same path.
inline std::chrono::system_clock::time_point fixed_now() {
  using namespace std::chrono;
  return sys_days{year{2026} / 10 / 1} + hours{12};
}

// Limits far below the defaults so short fuzz inputs reach every boundary; a second run with
// the defaults keeps the production configuration covered too.
inline ingest::ValidationConfig small_limits() {
  ingest::ValidationConfig config;
  config.max_text_bytes = 64;
  config.max_id_bytes = 16;
  config.max_attributes = 3;
  config.max_attribute_bytes = 24;
  return config;
}

inline bool is_product_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

// Validates `event` (already decoded) under `config` and checks what acceptance promises:
// limits hold, text is clean UTF-8, the source and timestamp are filled in, and validating the
// result again accepts it unchanged (produce validates before sending and serve validates again,
// so a second pass must be a no-op). A rejection must leave the event as it came.
inline void validate_and_check(const v1::FeedbackEvent& decoded,
                               const ingest::ValidationConfig& config) {
  using google::protobuf::util::MessageDifferencer;
  v1::FeedbackEvent event = decoded;
  const auto now = fixed_now();
  const auto rejection = ingest::validate_and_normalize(event, v1::SOURCE_SUPPORT, config, now);
  if (rejection) {
    check(ingest::reason_code(rejection->reason) != "unknown", "reason code is unknown");
    check(!rejection->detail.empty(), "rejection without detail");
    check(MessageDifferencer::Equals(event, decoded), "rejected event was modified");
    return;
  }

  check(!event.event_id().empty() && event.event_id().size() <= config.max_id_bytes,
        "event_id empty or too long");
  check(!event.product_id().empty() && event.product_id().size() <= config.max_id_bytes,
        "product_id empty or too long");
  for (char c : event.product_id()) check(is_product_id_char(c), "product_id character");
  check(!event.text().empty(), "accepted text is empty");
  check(event.text().size() <= config.max_text_bytes, "normalized text exceeds max_text_bytes",
        std::to_string(event.text().size()));
  check(base::is_valid_utf8(event.text()), "normalized text is not valid UTF-8");
  check(event.text().front() != ' ' && event.text().back() != ' ', "text not trimmed");
  check(event.text().find("  ") == std::string::npos, "text has a double space");
  if (const std::string twice = ingest::normalize_text(event.text()); twice != event.text()) {
    fail("normalize_text is not idempotent", "'" + event.text() + "' -> '" + twice + "'");
  }
  check(event.source() != v1::SOURCE_UNSPECIFIED, "source left unspecified");
  check(event.has_occurred_at(), "occurred_at not filled in");
  const std::chrono::sys_seconds when{std::chrono::seconds{event.occurred_at().seconds()}};
  check(when >= config.min_occurred_at, "occurred_at before the minimum");
  check(when <= std::chrono::floor<std::chrono::seconds>(now) + config.max_future_skew,
        "occurred_at too far in the future");

  v1::FeedbackEvent again = event;
  if (auto second = ingest::validate_and_normalize(again, v1::SOURCE_SUPPORT, config, now)) {
    fail("a validated event is rejected on re-validation",
         std::string(ingest::reason_code(second->reason)) + ": " + second->detail);
  }
  if (!MessageDifferencer::Equals(again, event)) {
    fail("validation is not idempotent",
         again.ShortDebugString() + " vs " + event.ShortDebugString());
  }

  // What ingest forwards is what the aggregator stage decodes.
  std::string wire;
  check(event.SerializeToString(&wire), "cannot serialize an accepted event");
  v1::FeedbackEvent decoded_again;
  if (auto r = ingest::parse_wire_event(wire, &decoded_again)) fail("re-decode failed", r->detail);
  check(MessageDifferencer::Equals(decoded_again, event), "wire round trip changed the event");
}

}  // namespace painpoint::fuzz

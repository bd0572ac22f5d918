// libFuzzer target: one line of proto3 JSON as `painpoint produce` and `painpoint cluster` read
// it, through parse_json_event + validate + normalize, with a fixed clock.

#include <google/protobuf/util/json_util.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "event_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  painpoint::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace painpoint;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  // The readers split on '\n' (std::getline), so a line never holds one.
  line = line.substr(0, line.find('\n'));
  v1::FeedbackEvent event;
  const auto rejection = ingest::parse_json_event(line, &event);

  // parse_json_event has a hand-written fast path for the usual line; protobuf's parser is the
  // reference it must agree with, on acceptance and on the message.
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  v1::FeedbackEvent reference;
  const bool reference_ok =
      base::is_valid_utf8(line) &&
      google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(line.data(), line.size()), &reference, options)
          .ok();
  if (reference_ok == rejection.has_value()) {
    fuzz::fail("parse_json_event disagrees with protobuf's JSON parser",
               std::string(reference_ok ? "protobuf accepts" : "protobuf rejects") + ": " +
                   std::string(line));
  }
  if (reference_ok && !google::protobuf::util::MessageDifferencer::Equals(event, reference)) {
    fuzz::fail("parse_json_event and protobuf's parser give different events",
               event.ShortDebugString() + " vs " + reference.ShortDebugString());
  }

  if (rejection) {
    const auto code = ingest::reason_code(rejection->reason);
    fuzz::check(code == "undecodable" || code == "invalid_utf8", "unexpected parse reason",
                std::string(code));
    fuzz::check(event.ByteSizeLong() == 0, "a failed parse left data behind");
    return 0;
  }
  fuzz::validate_and_check(event, ingest::ValidationConfig{});
  fuzz::validate_and_check(event, fuzz::small_limits());

  // What the JSON printer writes (the HTTP API, kcat users), the JSON reader must take back.
  std::string printed;
  fuzz::check(google::protobuf::util::MessageToJsonString(event, &printed).ok(),
              "cannot print a parsed event as JSON");
  v1::FeedbackEvent reparsed;
  if (auto r = ingest::parse_json_event(printed, &reparsed)) {
    fuzz::fail("printed JSON does not parse back", r->detail + " in " + printed);
  }
  fuzz::check(google::protobuf::util::MessageDifferencer::Equals(reparsed, event),
              "JSON round trip changed the event", printed);
  return 0;
}

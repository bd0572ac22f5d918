// libFuzzer target: protobuf wire bytes as a Kafka message value on a feedback topic, through
// the ingest stage's decode + validate + normalize (painpoint::ingest), with a fixed clock.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "event_checks.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  painpoint::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace painpoint;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  v1::FeedbackEvent event;
  if (auto rejection = ingest::parse_wire_event(bytes, &event)) {
    const auto code = ingest::reason_code(rejection->reason);
    fuzz::check(code == "undecodable" || code == "invalid_utf8", "unexpected decode reason",
                std::string(code));
    return 0;
  }
  fuzz::validate_and_check(event, ingest::ValidationConfig{});
  fuzz::validate_and_check(event, fuzz::small_limits());
  return 0;
}

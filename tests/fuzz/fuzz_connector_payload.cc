// libFuzzer target: one connector's payload mapping (compiled once per system, see
// CMakeLists.txt) on arbitrary bytes, then the product and ARR resolution. A payload is either
// refused with a reason, acknowledged as carrying no feedback, or mapped to an event whose id is
// derived from the system's own ids.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "checks.h"
#include "connectors/connectors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  painpoint::fuzz::quiet_protobuf();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace painpoint;
  using service::ConnectorSystem;
  constexpr ConnectorSystem kSystem = ConnectorSystem::PAINPOINT_FUZZ_SYSTEM;
  const std::string_view body(reinterpret_cast<const char*>(data), size);

  service::EnabledConnector connector;
  connector.config.default_product = "fallback";
  connector.config.url_base = "https://support.example.com";
  connector.config.product_by = {{"tag.billing", "billing"}, {"project.SD", "desk"}};
  connector.config.pointers = {{"id", "/id"},     {"text", "/text"}, {"product", "/product"},
                               {"account", "/a"}, {"arr", "/arr"},   {"time", "/t"},
                               {"url", "/links/0"}};
  service::Connectors connectors;
  connectors.arr_by_account["acct-1"] = 100;

  service::MappedPayload mapped;
  const service::ConnectorStatus s = service::map_payload(kSystem, body, connector.config, &mapped);
  if (!s.ok()) {
    fuzz::check(s.code == service::ConnectorErrc::kMalformed, "a mapping error is not kMalformed");
    fuzz::check(!s.message.empty(), "a refused payload has no reason");
    return 0;
  }
  if (!mapped.ignored.empty()) return 0;
  const std::string prefix = std::string(service::system_name(kSystem)) + ":";
  const v1::FeedbackEvent& event = mapped.event;
  fuzz::check(event.event_id().size() > prefix.size() && event.event_id().starts_with(prefix),
              "event id not derived from the system's id", event.event_id());
  fuzz::check(!event.text().empty(), "mapped event without text");
  fuzz::check(event.source() == v1::SOURCE_SUPPORT, "mapped event not from support");
  service::resolve_product_and_arr(connector, connectors, &mapped);
  fuzz::check(!mapped.event.product_id().empty(), "no product after resolution");
  return 0;
}

#include <spdlog/spdlog.h>

#include "../api.h"
#include "../http_server.h"
#include "connectors.h"

namespace painpoint::service {

namespace {

HttpResponse handle_webhook(const Connectors& connectors, FeedbackSink* sink,
                            const ApiConfig& config, const HttpRequest& request) {
  const std::string_view name = request.path_param("system");
  const auto system = parse_system(name);
  const auto enabled = system ? connectors.enabled.find(*system) : connectors.enabled.end();
  // Unknown and unconfigured systems look the same: a disabled connector is never open.
  if (enabled == connectors.enabled.end()) {
    return HttpResponse::error(404, "not_found", "no connector " + std::string(name));
  }
  const EnabledConnector& connector = enabled->second;
  ConnectorStatus s =
      verify_signature(*system, request, connector.secret, connectors.max_timestamp_skew,
                       std::chrono::system_clock::now());
  if (!s.ok()) {
    spdlog::info("POST /v1/connectors/{}: refused: {}", name, s.message);
    HttpResponse response = HttpResponse::error(
        401, s.code == ConnectorErrc::kStaleTimestamp ? "stale_timestamp" : "bad_signature",
        s.message);
    return response;
  }
  MappedPayload mapped;
  s = map_payload(*system, request.body, connector.config, &mapped);
  if (!s.ok()) return HttpResponse::error(400, "bad_payload", s.message);
  if (!mapped.ignored.empty()) {
    // Acknowledged, so the system does not retry a delivery that will never carry feedback.
    return HttpResponse::json(202,
                              "{\"accepted\":[],\"ignored\":" + json_quote(mapped.ignored) + "}");
  }
  resolve_product_and_arr(connector, connectors, &mapped);
  const std::string event_name = std::string(name) + " event (" + mapped.event.event_id() + ")";
  return submit_feedback(std::span<v1::FeedbackEvent>(&mapped.event, 1), v1::SOURCE_SUPPORT, sink,
                         config, [&](std::size_t) { return event_name; });
}

}  // namespace

void add_connector_routes(Router& router, const Connectors& connectors, FeedbackSink* sink,
                          const ApiConfig& config) {
  auto shared_config = std::make_shared<const ApiConfig>(config);
  router.post("/v1/connectors/{system}",
              [&connectors, sink, shared_config](const HttpRequest& request) {
                return handle_webhook(connectors, sink, *shared_config, request);
              });
}

}  // namespace painpoint::service

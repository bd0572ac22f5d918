#include "alerts/alerts_api.h"

#include <charconv>
#include <string>

#include "painpoint/v1/alert.pb.h"

namespace painpoint::service {

namespace {

// The cursor is the sequence of the last alert listed; the next page starts below it.
std::optional<std::uint64_t> parse_cursor(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value == 0) return std::nullopt;
  return value;
}

HttpResponse list_alerts(const store::Store& store, const HttpRequest& request) {
  const auto limit = parse_limit(request);
  if (!limit) return HttpResponse::error(400, "bad_limit", "limit must be 1..500");
  std::uint64_t before = 0;
  if (auto text = request.query_param("cursor"); text && !text->empty()) {
    const auto parsed = parse_cursor(*text);
    if (!parsed) return HttpResponse::error(400, "bad_cursor", "malformed cursor");
    before = *parsed;
  }
  const std::string product(request.query_param("product").value_or(""));
  v1::AlertList page;
  std::uint64_t last_sequence = 0;
  bool more = false;
  store::Status s = store.scan_alerts(product, before, [&](const store::StoredAlert& stored) {
    // One alert past the page tells whether a next page exists.
    if (page.alerts_size() == *limit) {
      more = true;
      return false;
    }
    *page.add_alerts() = stored.alert;
    last_sequence = stored.sequence;
    return true;
  });
  if (!s.ok()) return store_error(s);
  if (more) page.set_next_cursor(std::to_string(last_sequence));
  return json_message(200, page);
}

}  // namespace

void add_alerts_routes(Router& router, const store::Store& store, const ApiAuth& auth) {
  router.get("/v1/alerts", with_read_auth(auth, with_etag([&store](const HttpRequest& request) {
                                            return list_alerts(store, request);
                                          })));
}

}  // namespace painpoint::service

#include "api.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <tuple>

#include "painpoint/v1/api.pb.h"

namespace painpoint::service {

namespace {

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
// A merge chain longer than this means corrupt data, not history.
constexpr int kMaxMergeHops = 64;

HttpResponse json_message(int status, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string body;
  auto s = google::protobuf::util::MessageToJsonString(message, &body, options);
  if (!s.ok()) return HttpResponse::error(500, "internal", "cannot render the response");
  return HttpResponse::json(status, std::move(body));
}

HttpResponse store_error(const store::Status& s) {
  return HttpResponse::error(503, "store_unavailable", s.to_string());
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

using Less = bool (*)(const v1::PainPointSummary&, const v1::PainPointSummary&);

std::int64_t micros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1'000'000 + t.nanos() / 1000;
}

// Every order ends on the id, so pages are stable between requests.
std::optional<Less> order_for(std::string_view sort) {
  if (sort == "severity") {
    return [](const v1::PainPointSummary& a, const v1::PainPointSummary& b) {
      return std::make_tuple(b.severity(), a.id()) < std::make_tuple(a.severity(), b.id());
    };
  }
  if (sort == "events") {
    return [](const v1::PainPointSummary& a, const v1::PainPointSummary& b) {
      return std::make_tuple(b.event_count(), a.id()) < std::make_tuple(a.event_count(), b.id());
    };
  }
  if (sort == "trend") {
    return [](const v1::PainPointSummary& a, const v1::PainPointSummary& b) {
      return std::make_tuple(b.trend(), a.id()) < std::make_tuple(a.trend(), b.id());
    };
  }
  if (sort == "recent") {
    return [](const v1::PainPointSummary& a, const v1::PainPointSummary& b) {
      return std::make_tuple(micros(b.last_seen()), a.id()) <
             std::make_tuple(micros(a.last_seen()), b.id());
    };
  }
  return std::nullopt;
}

}  // namespace

void add_read_api_routes(Router& router, const store::Store& store) {
  router.get("/v1/products", [&store](const HttpRequest&) {
    v1::ProductList list;
    for (const v1::ProductStats& stats : store.product_stats()) {
      v1::ProductInfo* info = list.add_products();
      info->set_product_id(stats.product_id());
      info->set_event_count(stats.event_count());
      info->set_customer_count(stats.customer_count());
      info->set_sales_count(stats.sales_count());
      info->set_support_count(stats.support_count());
      std::int64_t active = 0;
      store::Status s = store.scan_summaries(stats.product_id(), [&](const auto& summary) {
        active += summary.status() == v1::STATUS_ACTIVE ? 1 : 0;
        return true;
      });
      if (!s.is_ok()) return store_error(s);
      info->set_pain_point_count(active);
    }
    return json_message(200, list);
  });

  router.get("/v1/products/{product}/pain-points", [&store](const HttpRequest& request) {
    const auto sort = order_for(request.query_param("sort").value_or("severity"));
    if (!sort) {
      return HttpResponse::error(400, "bad_sort", "sort must be severity, events, trend or recent");
    }
    int limit = kDefaultLimit;
    if (auto text = request.query_param("limit")) {
      auto parsed = parse_int(*text);
      if (!parsed || *parsed < 1 || *parsed > kMaxLimit) {
        return HttpResponse::error(400, "bad_limit", "limit must be 1..500");
      }
      limit = *parsed;
    }
    int start = 0;
    if (auto text = request.query_param("cursor"); text && !text->empty()) {
      auto parsed = parse_int(*text);
      if (!parsed || *parsed < 0) return HttpResponse::error(400, "bad_cursor", "malformed cursor");
      start = *parsed;
    }
    std::vector<v1::PainPointSummary> active;
    store::Status s =
        store.scan_summaries(request.path_param("product"), [&](const v1::PainPointSummary& p) {
          if (p.status() == v1::STATUS_ACTIVE) active.push_back(p);
          return true;
        });
    if (!s.is_ok()) return store_error(s);
    std::sort(active.begin(), active.end(), *sort);
    v1::PainPointList page;
    const std::size_t begin = std::min<std::size_t>(static_cast<std::size_t>(start), active.size());
    const std::size_t end = std::min(active.size(), begin + static_cast<std::size_t>(limit));
    for (std::size_t i = begin; i < end; ++i) *page.add_pain_points() = std::move(active[i]);
    if (end < active.size()) page.set_next_cursor(std::to_string(end));
    return json_message(200, page);
  });

  router.get("/v1/pain-points/{id}", [&store](const HttpRequest& request) {
    std::string id(request.path_param("id"));
    for (int hop = 0; hop < kMaxMergeHops; ++hop) {
      std::optional<v1::PainPointSummary> summary;
      if (store::Status s = store.get_summary(id, &summary); !s.is_ok()) return store_error(s);
      if (!summary) return HttpResponse::error(404, "not_found", "no pain point " + id);
      if (summary->status() != v1::STATUS_MERGED || summary->merged_into().empty()) {
        return json_message(200, *summary);
      }
      id = summary->merged_into();
    }
    return HttpResponse::error(500, "merge_cycle", "merge chain too long");
  });
}

}  // namespace painpoint::service

// The read routes of the /v1 API (api.h): products, their pain points, a pain point's events.
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api_internal.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/base/hex.h"
#include "painpoint/v1/api.pb.h"
#include "response_cache.h"
#include "summary_json.h"

namespace painpoint::service {

namespace {

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 500;
constexpr int kMaxMergeHops = aggregator::Aggregator::kMaxMergeHops;
// Ids merged into one survivor that GET .../events lists together (one store iterator each).
// Merges need a pain point to double in size first, so real chains stay far below this.
constexpr std::size_t kMaxMergedSources = 256;
// Distinct summaries whose JSON the pain-point list keeps (~2 KB each).
constexpr std::size_t kSummaryJsonCacheEntries = 16'384;
// Rendered product lists and pain-point pages kept (a page of 50 summaries is ~100 KB).
constexpr std::size_t kResponseCacheBytes = std::size_t{64} << 20;

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<store::ListingOrder> order_for(std::string_view sort) {
  if (sort == "severity") return store::ListingOrder::kSeverity;
  if (sort == "events") return store::ListingOrder::kEvents;
  if (sort == "accounts") return store::ListingOrder::kAccounts;
  if (sort == "arr") return store::ListingOrder::kArr;
  if (sort == "trend") return store::ListingOrder::kTrend;
  if (sort == "recent") return store::ListingOrder::kRecent;
  return std::nullopt;
}

HttpResponse cached_response(const CachedBody& cached) {
  HttpResponse response = HttpResponse::json(200, cached.body);
  response.headers.emplace_back("ETag", cached.etag);  // with_etag keeps it
  return response;
}

}  // namespace

std::optional<int> parse_limit(const HttpRequest& request) {
  auto text = request.query_param("limit");
  if (!text) return kDefaultLimit;
  auto parsed = parse_int(*text);
  if (!parsed || *parsed < 1 || *parsed > kMaxLimit) return std::nullopt;
  return parsed;
}

namespace {

// ---------------------------------------------------------------------------- products

// GET /v1/products: the store's per-product counters, printed again only after they moved.
HttpResponse list_products(const store::Store& store, ResponseCache& cache) {
  const std::vector<v1::ProductStats> all = store.product_stats();
  DataVersion version;
  version.products = static_cast<std::int64_t>(all.size());
  for (const v1::ProductStats& stats : all) {
    version.events += stats.event_count();
    version.summary_versions += stats.summary_versions();
  }
  const std::string key = "products";
  if (auto cached = cache.find(key, version)) return cached_response(*cached);
  v1::ProductList list;
  for (const v1::ProductStats& stats : all) {
    v1::ProductInfo* info = list.add_products();
    info->set_product_id(stats.product_id());
    info->set_event_count(stats.event_count());
    info->set_customer_count(stats.customer_count());
    info->set_sales_count(stats.sales_count());
    info->set_support_count(stats.support_count());
    info->set_pain_point_count(stats.active_pain_points());
    info->set_changes(stats.summary_versions());
  }
  HttpResponse printed = json_message(200, list);
  if (printed.status != 200) return printed;
  return cached_response(*cache.put(key, version, std::move(printed.body)));
}

// The counters a product's pain-point pages are rendered from: its summaries' versions (every
// change of a summary raises its version). Read before the listings, whose snapshot is then at
// least as new: a page is never cached under a version newer than its content.
DataVersion pages_version(const store::Store& store, std::string_view product) {
  DataVersion version;
  if (auto stats = store.product_stats(product)) {
    version.summary_versions = stats->summary_versions();
  }
  return version;
}

// GET /v1/products/{product}/pain-points?sort=&limit=&cursor=
HttpResponse list_pain_points(const store::Store& store, ResponseCache& pages,
                              SummaryJsonCache& summaries, const HttpRequest& request) {
  const auto sort = order_for(request.query_param("sort").value_or("severity"));
  if (!sort) {
    return HttpResponse::error(400, "bad_sort",
                               "sort must be severity, events, accounts, arr, trend or recent");
  }
  const auto limit = parse_limit(request);
  if (!limit) return HttpResponse::error(400, "bad_limit", "limit must be 1..500");
  int start = 0;
  if (auto text = request.query_param("cursor"); text && !text->empty()) {
    auto parsed = parse_int(*text);
    if (!parsed || *parsed < 0) return HttpResponse::error(400, "bad_cursor", "malformed cursor");
    start = *parsed;
  }
  const std::string_view product = request.path_param("product");
  const DataVersion version = pages_version(store, product);
  std::string key(product);
  for (const int part : {static_cast<int>(*sort), start, *limit}) {
    key += '\0';
    key += std::to_string(part);
  }
  if (auto cached = pages.find(key, version)) return cached_response(*cached);

  store::PainPointPage found;
  store::Status s =
      store.list_active_pain_points(product, *sort, static_cast<std::size_t>(start),
                                    static_cast<std::size_t>(*limit), &found);
  if (!s.ok()) return store_error(s);
  const std::size_t begin = std::min(static_cast<std::size_t>(start), found.active_total);
  const std::size_t end = std::min(found.active_total, begin + static_cast<std::size_t>(*limit));
  auto body = summaries.render_list(
      found.summaries, end < found.active_total ? std::to_string(end) : std::string());
  if (!body) return HttpResponse::error(500, "internal", "cannot render the response");
  return cached_response(*pages.put(key, version, std::move(*body)));
}

// ---------------------------------------------------------------------------- pain points

// Follows merged_into to the pain point that holds `id`'s events now. nullopt + *error set when
// there is none (404) or the store failed.
std::optional<v1::PainPointSummary> resolve(const store::Store& store, std::string id,
                                            HttpResponse* error) {
  for (int hop = 0; hop < kMaxMergeHops; ++hop) {
    std::optional<v1::PainPointSummary> summary;
    if (store::Status s = store.get_summary(id, &summary); !s.ok()) {
      *error = store_error(s);
      return std::nullopt;
    }
    if (!summary) {
      *error = HttpResponse::error(404, "not_found", "no pain point " + id);
      return std::nullopt;
    }
    if (summary->status() != v1::STATUS_MERGED || summary->merged_into().empty()) return summary;
    id = summary->merged_into();
  }
  *error = HttpResponse::error(500, "merge_cycle", "merge chain too long");
  return std::nullopt;
}

// The survivor plus every id of its product whose merge chain ends at it: one scan of the
// product's summaries (the same cost as listing them), chains followed in memory.
std::optional<std::vector<std::string>> member_sources(const store::Store& store,
                                                       const v1::PainPointSummary& survivor,
                                                       HttpResponse* error) {
  std::map<std::string, std::string, std::less<>> merged_into;
  store::Status s = store.scan_summaries(survivor.product_id(), [&](const auto& p) {
    if (p.status() == v1::STATUS_MERGED && !p.merged_into().empty()) {
      merged_into.emplace(p.id(), p.merged_into());
    }
    return true;
  });
  if (!s.ok()) {
    *error = store_error(s);
    return std::nullopt;
  }
  std::vector<std::string> ids{survivor.id()};
  for (const auto& [id, into] : merged_into) {
    std::string_view at = into;
    for (int hop = 0; hop < kMaxMergeHops && at != survivor.id(); ++hop) {
      auto next = merged_into.find(at);
      if (next == merged_into.end()) break;
      at = next->second;
    }
    if (at != survivor.id()) continue;
    if (ids.size() >= kMaxMergedSources) {
      spdlog::warn("pain point {} has more than {} merged ids; listing the events of the first {}",
                   survivor.id(), kMaxMergedSources, kMaxMergedSources);
      break;
    }
    ids.push_back(id);
  }
  return ids;
}

// GET /v1/pain-points/{id}/merged: the survivor and the ids whose merge chain ends at it.
HttpResponse merged_ids(const store::Store& store, const HttpRequest& request) {
  HttpResponse error;
  auto survivor = resolve(store, std::string(request.path_param("id")), &error);
  if (!survivor) return error;
  auto ids = member_sources(store, *survivor, &error);
  if (!ids) return error;
  std::string body = "{\"id\":" + json_quote(survivor->id()) + ",\"ids\":[";
  for (std::size_t i = 1; i < ids->size(); ++i) {
    body += (i > 1 ? "," : "") + json_quote((*ids)[i]);
  }
  body += "]}";
  return HttpResponse::json(200, std::move(body));
}

// GET /v1/pain-points/{id}/events?limit=&cursor=: member events newest first, merged ids included.
HttpResponse list_events(const store::Store& store, const HttpRequest& request) {
  const auto limit = parse_limit(request);
  if (!limit) return HttpResponse::error(400, "bad_limit", "limit must be 1..500");
  std::string after;
  if (auto text = request.query_param("cursor"); text && !text->empty()) {
    auto decoded = base::hex_decode(*text);
    if (!decoded) return HttpResponse::error(400, "bad_cursor", "malformed cursor");
    after = std::move(*decoded);
  }
  HttpResponse error;
  auto survivor = resolve(store, std::string(request.path_param("id")), &error);
  if (!survivor) return error;
  auto ids = member_sources(store, *survivor, &error);
  if (!ids) return error;
  v1::EventList page;
  std::string last_position;
  bool more = false;
  store::Status s = store.scan_members(
      *ids, after, [&](const v1::StoredEvent& stored, std::string_view position) {
        // One event past the page tells whether a next page exists.
        if (page.events_size() == *limit) {
          more = true;
          return false;
        }
        *page.add_events() = stored.event();
        last_position = position;
        return true;
      });
  if (!s.ok()) return store_error(s);
  if (more) page.set_next_cursor(base::hex_encode(last_position));
  return json_message(200, page);
}

}  // namespace

void add_product_routes(Router& router, const store::Store& store, const ReadGuard& read,
                        const InstanceRouting& routing) {
  auto products = std::make_shared<ResponseCache>(kResponseCacheBytes);
  router.get("/v1/products",
             read(wrapped(routing.product_list, [&store, products](const HttpRequest&) {
               return list_products(store, *products);
             })));
  auto pages = std::make_shared<ResponseCache>(kResponseCacheBytes);
  auto summaries = std::make_shared<SummaryJsonCache>(kSummaryJsonCacheEntries);
  router.get("/v1/products/{product}/pain-points",
             read(wrapped(routing.by_product,
                          [&store, pages, summaries](const HttpRequest& request) {
                            return list_pain_points(store, *pages, *summaries, request);
                          })));
}

void add_pain_point_routes(Router& router, const store::Store& store, const ReadGuard& read,
                           const InstanceRouting& routing) {
  auto route = [&](std::string_view pattern, HttpHandler handler) {
    router.get(pattern, read(wrapped(routing.by_pain_point, std::move(handler))));
  };
  route("/v1/pain-points/{id}", [&store](const HttpRequest& request) {
    HttpResponse error;
    auto summary = resolve(store, std::string(request.path_param("id")), &error);
    return summary ? json_message(200, *summary) : error;
  });
  route("/v1/pain-points/{id}/events",
        [&store](const HttpRequest& request) { return list_events(store, request); });
  route("/v1/pain-points/{id}/merged",
        [&store](const HttpRequest& request) { return merged_ids(store, request); });
}

}  // namespace painpoint::service

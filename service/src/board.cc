#include "board.h"

#include <algorithm>
#include <optional>
#include <string>

#include "board_assets.h"
#include "text_trim.h"

namespace painpoint::service {

namespace {

// The page may only load its own assets and call its own API.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'";
// HTTP's optional whitespace (RFC 9110 section 5.6.3) around header list items and parameters.
constexpr std::string_view kOptionalWhitespace = " \t";

bool iequals_ascii(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

// q=0 (or 0.0, 0.00, 0.000) refuses a coding (RFC 9110, 12.4.2).
bool is_zero_quality(std::string_view params) {
  while (!params.empty()) {
    const auto semicolon = params.find(';');
    std::string_view param = trim(params.substr(0, semicolon), kOptionalWhitespace);
    params =
        semicolon == std::string_view::npos ? std::string_view() : params.substr(semicolon + 1);
    if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
    std::string_view value = param.substr(2);
    return !value.empty() && value.find_first_not_of("0.") == std::string_view::npos;
  }
  return false;
}

const BoardAsset* find_asset(std::string_view path) {
  for (const BoardAsset& asset : board_assets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

HttpResponse serve_asset(const HttpRequest& request, const BoardAsset& asset) {
  HttpResponse response;
  response.content_type = std::string(asset.content_type);
  const bool gzip = accepts_gzip(request.header("Accept-Encoding").value_or(""));
  response.body = std::string(gzip ? asset.gzip : asset.identity);
  if (gzip) response.headers.emplace_back("Content-Encoding", "gzip");
  response.headers.emplace_back("Vary", "Accept-Encoding");
  response.headers.emplace_back(
      "Cache-Control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!asset.immutable) {
    response.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
    response.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  return response;
}

HttpResponse serve_index(const HttpRequest& request) {
  const BoardAsset* index = find_asset("/index.html");
  if (index == nullptr) return HttpResponse::error(500, "internal", "the board is not built in");
  return serve_asset(request, *index);
}

}  // namespace

bool accepts_gzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    const auto comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const auto semicolon = item.find(';');
    const std::string_view coding = trim(item.substr(0, semicolon), kOptionalWhitespace);
    const std::string_view params =
        semicolon == std::string_view::npos ? std::string_view() : item.substr(semicolon + 1);
    if ((iequals_ascii(coding, "gzip") || coding == "*") && !is_zero_quality(params)) return true;
  }
  return false;
}

void add_board_routes(Router& router) {
  router.get("/", serve_index);
  router.get("/products/{product}", serve_index);
  router.get("/pain-points/{id}", serve_index);
  router.get("/assets/{file}", [](const HttpRequest& request) {
    const BoardAsset* asset = find_asset("/assets/" + std::string(request.path_param("file")));
    if (asset == nullptr) return HttpResponse::error(404, "not_found", "no such asset");
    return serve_asset(request, *asset);
  });
}

}  // namespace painpoint::service

// The board's routes over the assets the build embedded: the app's index.html at the deep-link
// paths, hashed assets with their content type, caching and gzip.
#include "board.h"

#include <gtest/gtest.h>

#include <string>

#include "board_assets.h"

namespace painpoint::service {
namespace {

HttpResponse get(const Router& router, const std::string& path, const std::string& encoding) {
  HttpRequest request;
  request.method = "GET";
  request.target = path;
  request.path = path;
  if (!encoding.empty()) request.headers.emplace("Accept-Encoding", encoding);
  return router.dispatch(request);
}

std::string header(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "<none>";
}

const BoardAsset* asset_with_suffix(const std::string& suffix) {
  for (const BoardAsset& asset : board_assets()) {
    if (asset.path.size() >= suffix.size() &&
        asset.path.substr(asset.path.size() - suffix.size()) == suffix && asset.immutable) {
      return &asset;
    }
  }
  return nullptr;
}

TEST(AcceptsGzip, ReadsCodingsAndQuality) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("deflate, GZIP;q=0.5, br"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip; q=0.000, br"));
  EXPECT_FALSE(accepts_gzip("x-gzip2"));
}

TEST(BoardRoutes, DeepLinksAnswerWithTheApp) {
  Router router;
  add_board_routes(router);
  for (const std::string path : {"/", "/products/mobile-app", "/pain-points/pp-1"}) {
    auto response = get(router, path, "");
    EXPECT_EQ(response.status, 200) << path;
    EXPECT_EQ(response.content_type, "text/html; charset=utf-8") << path;
    EXPECT_NE(response.body.find("<div id=\"app\">"), std::string::npos) << path;
    EXPECT_EQ(header(response, "Cache-Control"), "no-cache") << path;
    EXPECT_NE(header(response, "Content-Security-Policy").find("default-src 'self'"),
              std::string::npos);
  }
  EXPECT_EQ(get(router, "/products", "").status, 404);
}

TEST(BoardRoutes, AssetsAreImmutableAndGzippedOnRequest) {
  Router router;
  add_board_routes(router);
  const BoardAsset* script = asset_with_suffix(".js");
  const BoardAsset* style = asset_with_suffix(".css");
  ASSERT_NE(script, nullptr);
  ASSERT_NE(style, nullptr);
  // The index refers to the hashed names the build embedded.
  auto index = get(router, "/", "");
  EXPECT_NE(index.body.find(std::string(script->path)), std::string::npos);
  EXPECT_NE(index.body.find(std::string(style->path)), std::string::npos);

  auto plain = get(router, std::string(script->path), "");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(plain.body, script->identity);
  EXPECT_EQ(header(plain, "Content-Encoding"), "<none>");
  EXPECT_EQ(header(plain, "Cache-Control"), "public, max-age=31536000, immutable");

  auto packed = get(router, std::string(script->path), "gzip, deflate");
  EXPECT_EQ(header(packed, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(packed, "Vary"), "Accept-Encoding");
  EXPECT_EQ(packed.body, script->gzip);
  ASSERT_GE(packed.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(packed.body[0]), 0x1f);  // gzip magic
  EXPECT_LT(packed.body.size(), plain.body.size());

  EXPECT_EQ(get(router, std::string(style->path), "").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(get(router, "/assets/nope.js", "").status, 404);
}

}  // namespace
}  // namespace painpoint::service

#include "http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

// GCC's -Wnull-dereference misfires inside Asio's scheduler (a known false positive); the
// pragma covers only the Boost headers so our own code keeps the warning.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

namespace painpoint::service {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Response = http::response<http::string_body>;

// A blocking client built on async operations with deadlines, so a server bug fails the test
// instead of hanging it.
class TestClient {
 public:
  explicit TestClient(std::uint16_t port) {
    stream_.expires_after(5s);
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [this](beast::error_code ec) { connect_error_ = ec; });
    run();
  }

  beast::error_code connect_error() const { return connect_error_; }

  beast::error_code write(std::string_view raw) {
    beast::error_code result;
    stream_.expires_after(5s);
    net::async_write(stream_, net::buffer(raw.data(), raw.size()),
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  std::optional<Response> read(std::chrono::milliseconds timeout = 5s) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    beast::error_code result;
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, parser,
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    if (result) return std::nullopt;
    return parser.release();
  }

  // True if the server closes the connection within `timeout` (any bytes before that are skipped).
  bool closed_within(std::chrono::milliseconds timeout) {
    bool closed = false;
    std::array<char, 4096> scratch{};
    std::function<void()> read_more = [&] {
      stream_.async_read_some(net::buffer(scratch), [&](beast::error_code ec, std::size_t) {
        if (!ec) return read_more();
        closed = ec == net::error::eof || ec == net::error::connection_reset;
      });
    };
    if (buffer_.size() > 0) buffer_.consume(buffer_.size());
    stream_.expires_after(timeout);
    read_more();
    run();
    return closed;
  }

  std::optional<Response> request(std::string_view raw) {
    if (write(raw)) return std::nullopt;
    return read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  net::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  beast::error_code connect_error_;
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) +
         "\r\n";
}

std::string post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class HttpServerTest : public ::testing::Test {
 protected:
  Router make_router() {
    Router router;
    router.get("/healthz", [](const HttpRequest&) { return HttpResponse::text(200, "ok"); });
    router.get("/v1/pain-points/{id}/events", [](const HttpRequest& req) {
      return HttpResponse::text(200, std::string(req.path_param("id")) + "|" +
                                         std::string(req.query_param("limit").value_or("-")) + "|" +
                                         std::string(req.query_param("cursor").value_or("-")) +
                                         "|" + std::string(req.query_param("q").value_or("-")) +
                                         "|" + std::string(req.header("x-custom").value_or("-")));
    });
    router.post("/echo", [](const HttpRequest& req) {
      HttpResponse r = HttpResponse::json(200, req.body);
      r.headers.emplace_back("X-Echo-Length", std::to_string(req.body.size()));
      return r;
    });
    router.get("/boom", [](const HttpRequest&) -> HttpResponse {
      throw std::runtime_error("secret internals");
    });
    router.get("/slow", [this](const HttpRequest&) {
      slow_entered_ = true;
      std::this_thread::sleep_for(300ms);
      return HttpResponse::text(200, "slow done");
    });
    return router;
  }

  void start(HttpServerConfig config = {}) {
    server_ = std::make_unique<HttpServer>(std::move(config), make_router());
    server_->start();
    ASSERT_NE(server_->port(), 0);
  }

  std::uint16_t port() const { return server_->port(); }

  std::atomic<bool> slow_entered_{false};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesRoutesWithKeepAlive) {
  start();
  TestClient client(port());
  ASSERT_FALSE(client.connect_error());
  for (int i = 0; i < 2; ++i) {
    auto res = client.request(get("/healthz"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200);
    EXPECT_EQ(res->body(), "ok");
    EXPECT_EQ((*res)[http::field::content_type], "text/plain; charset=utf-8");
    EXPECT_TRUE(res->keep_alive());
  }
  auto res = client.request(post("/echo", "{\"a\":1}"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "{\"a\":1}");
  EXPECT_EQ((*res)["X-Echo-Length"], "7");
  EXPECT_EQ((*res)[http::field::content_type], "application/json");
}

TEST_F(HttpServerTest, PathParamsQueryDecodingAndCaseInsensitiveHeaders) {
  start();
  TestClient client(port());
  auto res = client.request(get(
      "/v1/pain-points/pp%2F1/events?limit=10&cursor=a%20b&q=x+y&limit=99", "X-CUSTOM: Hi\r\n"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "pp/1|10|a b|x y|Hi");
}

TEST_F(HttpServerTest, UnknownPathIs404WithJsonError) {
  start();
  TestClient client(port());
  auto res = client.request(get("/nope"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 404);
  EXPECT_EQ((*res)[http::field::content_type], "application/json");
  EXPECT_EQ(res->body(), R"({"error":{"code":"not_found","message":"no route for /nope"}})");
  // An empty {param} segment does not match either.
  res = client.request(get("/v1/pain-points//events"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 404);
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  start();
  TestClient client(port());
  auto res = client.request(post("/healthz", ""));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 405);
  EXPECT_EQ((*res)[http::field::allow], "GET");
  EXPECT_NE(res->body().find("\"code\":\"method_not_allowed\""), std::string::npos);
  res = client.request("DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 405);
  EXPECT_EQ((*res)[http::field::allow], "POST");
}

TEST_F(HttpServerTest, HandlerExceptionIs500AndConnectionSurvives) {
  start();
  TestClient client(port());
  auto res = client.request(get("/boom"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500);
  EXPECT_EQ(res->body().find("secret"), std::string::npos);
  res = client.request(get("/healthz"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
}

TEST_F(HttpServerTest, OversizeBodyIs413) {
  HttpServerConfig config;
  config.body_limit_bytes = 1024;
  start(config);
  {
    TestClient client(port());
    auto res = client.request(post("/echo", std::string(1024, 'x')));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200);
  }
  {
    // Declared length over the limit: answered before the body is read.
    TestClient client(port());
    auto res = client.request(post("/echo", std::string(64 * 1024, 'x')));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 413);
    EXPECT_NE(res->body().find("\"code\":\"payload_too_large\""), std::string::npos);
    EXPECT_TRUE(client.closed_within(5s));
  }
  {
    // Chunked bodies are counted as they arrive.
    TestClient client(port());
    std::string chunk(800, 'y');
    auto res = client.request(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk +
        "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 413);
  }
}

TEST_F(HttpServerTest, OversizeHeadersAre431) {
  HttpServerConfig config;
  config.header_limit_bytes = 1024;
  start(config);
  TestClient client(port());
  auto res = client.request(get("/healthz", "X-Big: " + std::string(4096, 'h') + "\r\n"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 431);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  start();
  {
    TestClient client(port());
    auto res = client.request("THIS IS NOT HTTP\r\n\r\n");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 400);
    EXPECT_NE(res->body().find("\"code\":\"bad_request\""), std::string::npos);
    EXPECT_TRUE(client.closed_within(5s));
  }
  {
    TestClient client(port());
    auto res = client.request(get("/healthz?x=%zz"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 400);
  }
  {
    TestClient client(port());
    auto res = client.request(get("http://example.com/healthz"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 400);
  }
}

TEST_F(HttpServerTest, Expect100ContinueIsHonoured) {
  start();
  TestClient client(port());
  ASSERT_FALSE(client.write(
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100);
  ASSERT_FALSE(client.write("hello"));
  auto res = client.read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "hello");
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveIsClosedAfterResponse) {
  start();
  TestClient client(port());
  auto res = client.request("GET /healthz HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_TRUE(client.closed_within(5s));
}

TEST_F(HttpServerTest, SlowClientIsDisconnectedAfterReadTimeout) {
  HttpServerConfig config;
  config.read_timeout = 200ms;
  start(config);
  TestClient client(port());
  ASSERT_FALSE(client.write("GET /healthz HTTP/1.1\r\nHost: t\r\n"));  // never finished
  EXPECT_TRUE(client.closed_within(5s));
  // An idle keep-alive connection is closed the same way.
  TestClient idle(port());
  ASSERT_TRUE(idle.request(get("/healthz")));
  EXPECT_TRUE(idle.closed_within(5s));
}

TEST_F(HttpServerTest, ConnectionsOverTheCapGet503) {
  HttpServerConfig config;
  config.max_connections = 2;
  start(config);
  TestClient first(port());
  TestClient second(port());
  ASSERT_TRUE(first.request(get("/healthz")));
  ASSERT_TRUE(second.request(get("/healthz")));
  EXPECT_EQ(server_->active_connections(), 2u);

  TestClient third(port());
  auto res = third.read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 503);
  EXPECT_NE(res->body().find("\"code\":\"unavailable\""), std::string::npos);
  EXPECT_TRUE(third.closed_within(5s));

  first.close();
  ASSERT_TRUE(eventually([&] { return server_->active_connections() < 2; }));
  TestClient fourth(port());
  res = fourth.request(get("/healthz"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
}

TEST_F(HttpServerTest, GracefulStopFinishesRequestInFlight) {
  start();
  TestClient idle(port());
  ASSERT_TRUE(idle.request(get("/healthz")));
  TestClient busy(port());
  ASSERT_FALSE(busy.write(get("/slow")));
  ASSERT_TRUE(eventually([&] { return slow_entered_.load(); }));

  auto started = std::chrono::steady_clock::now();
  auto stopped = std::async(std::launch::async, [&] { server_->stop(10s); });
  auto res = busy.read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200);
  EXPECT_EQ(res->body(), "slow done");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(idle.closed_within(5s));
  stopped.get();
  // Generous: the point is that stop() did not sit out its whole grace period.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);

  TestClient late(port());
  EXPECT_TRUE(late.connect_error());
  server_->stop();  // idempotent
}

TEST_F(HttpServerTest, StopAfterGraceDoesNotCrashWithHandlerRunning) {
  start();
  TestClient busy(port());
  ASSERT_FALSE(busy.write(get("/slow")));
  ASSERT_TRUE(eventually([&] { return slow_entered_.load(); }));
  server_->stop(1ms);  // waits for the handler (cannot interrupt it), then drops the rest
  EXPECT_TRUE(busy.closed_within(5s));
}

TEST_F(HttpServerTest, DestructorStopsWithIdleClientsConnected) {
  start();
  TestClient idle(port());
  ASSERT_TRUE(idle.request(get("/healthz")));
  TestClient half(port());
  ASSERT_FALSE(half.write("GET /heal"));
  auto started = std::chrono::steady_clock::now();
  server_.reset();
  // Bounded by the default grace period (5 s): a half-received request may count as in flight
  // when stop() begins, and a loaded machine makes that race likely. Never longer than grace.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
  EXPECT_TRUE(idle.closed_within(5s));
  EXPECT_TRUE(half.closed_within(5s));
  HttpServer never_started(HttpServerConfig{}, Router{});
}

TEST_F(HttpServerTest, BindFailureThrows) {
  start();
  HttpServerConfig config;
  config.port = port();
  HttpServer second(config, Router{});
  EXPECT_THROW(second.start(), std::runtime_error);
  HttpServerConfig bad;
  bad.address = "not-an-address";
  HttpServer third(bad, Router{});
  EXPECT_THROW(third.start(), std::runtime_error);
}

TEST(Router, MostLiteralPatternWinsAndParamsAreDecoded) {
  Router router;
  router.get("/v1/pain-points/{id}", [](const HttpRequest& req) {
    return HttpResponse::text(200, "id=" + std::string(req.path_param("id")));
  });
  router.get("/v1/pain-points/search",
             [](const HttpRequest&) { return HttpResponse::text(200, "search"); });
  router.post("/v1/pain-points/{id}/merge", [](const HttpRequest& req) {
    return HttpResponse::text(200, "merge " + std::string(req.path_param("id")));
  });
  router.get("/", [](const HttpRequest&) { return HttpResponse::text(200, "root"); });

  auto dispatch = [&](std::string method, std::string path) {
    HttpRequest req;
    req.method = std::move(method);
    req.path = std::move(path);
    return router.dispatch(req);
  };
  EXPECT_EQ(dispatch("GET", "/v1/pain-points/search").body, "search");
  EXPECT_EQ(dispatch("GET", "/v1/pain-points/pp-7").body, "id=pp-7");
  EXPECT_EQ(dispatch("GET", "/v1/pain-points/%E2%9C%93").body, "id=\xE2\x9C\x93");
  EXPECT_EQ(dispatch("POST", "/v1/pain-points/a%20b/merge").body, "merge a b");
  EXPECT_EQ(dispatch("GET", "/").body, "root");
  EXPECT_EQ(dispatch("GET", "/v1/pain-points/search/").status, 404);
  EXPECT_EQ(dispatch("GET", "/v1/pain-points/bad%zz").status, 400);
  HttpResponse wrong = dispatch("GET", "/v1/pain-points/x/merge");
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].second, "POST");
}

TEST(Router, RejectsMalformedPatterns) {
  Router router;
  auto ok = [](const HttpRequest&) { return HttpResponse::text(200, ""); };
  EXPECT_THROW(router.get("no-slash", ok), std::invalid_argument);
  EXPECT_THROW(router.get("/a/{}", ok), std::invalid_argument);
  EXPECT_THROW(router.get("/a/x{id}", ok), std::invalid_argument);
  EXPECT_THROW(router.get("/a/{id}/{id}", ok), std::invalid_argument);
  EXPECT_THROW(router.add("G ET", "/a", ok), std::invalid_argument);
  EXPECT_THROW(router.get("/a", nullptr), std::invalid_argument);
  router.get("/a", ok);
  EXPECT_THROW(router.get("/a", ok), std::invalid_argument);
  EXPECT_NO_THROW(router.post("/a", ok));
}

TEST(HttpHelpers, PercentDecodingAndQueryParsing) {
  EXPECT_EQ(percent_decode("a%2Fb+c", false), "a/b+c");
  EXPECT_EQ(percent_decode("a%2fb+c", true), "a/b c");
  EXPECT_EQ(percent_decode("%", false), std::nullopt);
  EXPECT_EQ(percent_decode("%4", false), std::nullopt);
  EXPECT_EQ(percent_decode("%g0", false), std::nullopt);
  auto q = parse_query("a=1&&b=x%20y&c&=v&d=");
  ASSERT_TRUE(q);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"a", "1"}, {"b", "x y"}, {"c", ""}, {"", "v"}, {"d", ""}};
  EXPECT_EQ(*q, expected);
  EXPECT_EQ(parse_query("a=%"), std::nullopt);
}

TEST(HttpHelpers, JsonQuoteEscapesAndRepairsUtf8) {
  EXPECT_EQ(json_quote("a\"b\\c\n\t\x01"), R"("a\"b\\c\n\t\u0001")");
  EXPECT_EQ(json_quote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
  EXPECT_EQ(json_quote("bad\xFF\xC3"), R"("bad\ufffd\ufffd")");
  EXPECT_EQ(HttpResponse::error(404, "not_found", "no \"x\"").body,
            R"({"error":{"code":"not_found","message":"no \"x\""}})");
}

}  // namespace
}  // namespace painpoint::service

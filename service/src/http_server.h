// A small HTTP/1.1 server for the service's API (/healthz, /readyz, /metrics, later /v1/...),
// on Boost.Beast. Beast stays out of this header so including it is cheap.
//
// Contract:
// - Build a Router, register handlers, then hand it to HttpServer. Once the server is started the
//   routes are fixed (the router is read by all io threads without locking).
// - Handlers run on the server's io threads, possibly concurrently with each other (one request at
//   a time per connection). They must be thread-safe and must not block for long: a handler that
//   waits on a lock held across I/O, a Kafka round trip or a RocksDB compaction stalls every other
//   connection on that io thread and delays stop(). Hand slow work to another thread and answer
//   202, or keep it bounded (a point read, a short scan).
// - A handler that throws gets a 500 with a JSON error body; the exception is logged and the
//   connection lives on. Nothing a client sends can crash the server: oversized bodies get 413,
//   oversized headers 431, malformed requests 400, slow clients are disconnected after
//   read_timeout, and connections beyond max_connections get 503.
// - Error bodies are JSON: {"error":{"code":"...","message":"..."}}.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace painpoint::service {

// Case-insensitive ordering so header lookup ignores case, as HTTP requires.
struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept;
};

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // as sent, e.g. "/v1/pain-points/pp%2F1/events?limit=10"
  std::string path;    // target before '?', still percent-encoded
  // Decoded query parameters in request order ('+' means space); a repeated key appears twice.
  std::vector<std::pair<std::string, std::string>> query;
  // Decoded `{name}` segments of the matched route pattern.
  std::map<std::string, std::string, std::less<>> path_params;
  std::multimap<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;
  unsigned http_version = 11;  // 10 or 11

  // First value of a query parameter / header, if present.
  std::optional<std::string_view> query_param(std::string_view name) const;
  std::optional<std::string_view> header(std::string_view name) const;
  // The value of `{name}`; empty if the pattern has no such parameter.
  std::string_view path_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Extra headers. Content-Length, Connection and Transfer-Encoding are managed by the server and
  // ignored here.
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);
  // {"error":{"code":code,"message":message}} with both strings JSON-escaped.
  static HttpResponse error(int status, std::string_view code, std::string_view message);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Dispatch by method + path pattern. Patterns are '/'-separated; a segment is either literal or a
// whole-segment parameter `{name}` (matches one non-empty segment, percent-decoded, so an id with
// an encoded '/' stays one segment). When several patterns match, the most literal one wins
// segment by segment from the left (/v1/pain-points/search beats /v1/pain-points/{id}).
// Not thread-safe while adding; dispatch() is const and safe to call concurrently.
class Router {
 public:
  // Throws std::invalid_argument on a malformed pattern or a duplicate method + pattern.
  void add(std::string_view method, std::string_view pattern, HttpHandler handler);
  void get(std::string_view pattern, HttpHandler handler) {
    add("GET", pattern, std::move(handler));
  }
  void post(std::string_view pattern, HttpHandler handler) {
    add("POST", pattern, std::move(handler));
  }

  // Matches request.path, fills request.path_params and runs the handler. Unknown path -> 404,
  // known path with another method -> 405 with an Allow header, bad percent-encoding -> 400,
  // handler exception -> 500 (logged).
  HttpResponse dispatch(HttpRequest& request) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;
    std::map<std::string, HttpHandler, std::less<>> handlers;  // by method
  };
  std::vector<Route> routes_;  // kept most specific first
};

struct HttpServerConfig {
  std::string address = "127.0.0.1";  // loopback unless deliberately exposed
  std::uint16_t port = 0;             // 0 = ephemeral; HttpServer::port() tells the real one
  int io_threads = 2;
  std::size_t body_limit_bytes = 1024 * 1024;  // larger bodies -> 413
  std::size_t header_limit_bytes = 16 * 1024;  // larger request line + headers -> 431
  // Maximum time to receive one whole request (headers and body), and to write one response; it
  // is also how long an idle keep-alive connection is kept. Milliseconds so that tests can use a
  // short one; std::chrono::seconds converts implicitly.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::size_t max_connections = 256;  // further connections get 503 and are closed
};

class HttpServer {
 public:
  HttpServer(HttpServerConfig config, Router router);
  // Calls stop() with the default grace period.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the io threads. Throws std::runtime_error (e.g. address in use,
  // bad address). Call once; a stopped server cannot be started again.
  void start();

  // The bound port (the ephemeral one if config.port was 0). Valid after start().
  std::uint16_t port() const;

  // Stops accepting, closes idle connections, lets requests in flight get their response (with
  // Connection: close) until `grace` has passed, then closes whatever is left and joins the io
  // threads. Blocks the caller until then; a handler that is still running is waited for (it
  // cannot be interrupted). Idempotent; must not be called from a handler.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // Open connections being served (not counting the ones being turned away with 503).
  std::size_t active_connections() const;

  class Impl;  // public only so the .cc's session type can name it

 private:
  std::unique_ptr<Impl> impl_;
};

// What a connection answers when `bytes` arrive as one request and the client then half-closes:
// the same parser limits, 400/413/431 mapping and router dispatch, without sockets (for tests and
// fuzzing). nullopt when a connection would close without an answer (incomplete request). Only
// the first request is answered; pipelined bytes after it are ignored.
std::optional<HttpResponse> handle_request_bytes(std::string_view bytes,
                                                 const HttpServerConfig& config,
                                                 const Router& router);

// Minimal JSON helpers so handlers need no JSON library for small documents.
std::string json_quote(std::string_view text);  // "..." with JSON escaping (UTF-8 passes through)

// Percent-decoding (RFC 3986). Returns nullopt on a malformed escape. With plus_as_space, '+' is a
// space, as in application/x-www-form-urlencoded query strings.
std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space);
// "a=1&b=x%20y&c" -> {{"a","1"},{"b","x y"},{"c",""}}; nullopt on a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

}  // namespace painpoint::service

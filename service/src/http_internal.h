// The HTTP server's internals shared by its files (http_codec.cc, http_router.cc,
// http_session.cc, http_server.cc): Beast types, the request exchange without I/O, the session
// entry points and HttpServer::Impl. Not for users of the server: they include http_server.h.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_server.h"

// GCC's -Wnull-dereference misfires inside Asio's scheduler (a known false positive); the
// pragma covers only the Boost headers so our own code keeps the warning.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

namespace painpoint::service {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace http_detail {

std::string_view to_std(beast::string_view s);
// ASCII case-insensitive equality, as HTTP compares header names and tokens.
bool iequals(std::string_view a, std::string_view b);

// The request exchange without I/O, shared by the sessions and handle_request_bytes().
// The answer to a failed read, or nullopt when the connection is closed without one.
std::optional<HttpResponse> answer_read_error(beast::error_code ec, const HttpServerConfig& config);
// Fills `request` from the parsed message and answers it through the router.
HttpResponse answer_request(http::request<http::string_body>&& msg, const Router& router,
                            HttpRequest& request);
// A status outside 200..599 is a handler bug; the client gets a well-formed 500 instead.
HttpResponse with_valid_status(HttpResponse response);
void apply_limits(http::request_parser<http::string_body>& parser, const HttpServerConfig& config);

// One per connection (http_session.cc).
class Session;
// Serves `socket` (or, with `reject`, answers 503 and closes it) until the client or the server
// closes; the session registers itself with `server`.
void start_session(tcp::socket&& socket, HttpServer::Impl& server, bool reject);
// Called on stop(): idle readers go now, writers finish their response first.
void request_stop(const std::shared_ptr<Session>& session);
// Only once no io thread runs (end of stop()).
void close_now(const std::shared_ptr<Session>& session);

}  // namespace http_detail

class HttpServer::Impl {
 public:
  Impl(HttpServerConfig config, Router router)
      : config_(std::move(config)),
        router_(std::move(router)),
        ioc_(std::max(1, config_.io_threads)) {}

  ~Impl() { stop(std::chrono::seconds(5)); }

  void start();
  void stop(std::chrono::milliseconds grace);
  std::uint16_t port() const { return port_; }

  // Read by sessions.
  const HttpServerConfig config_;
  const Router router_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> serving_{0};
  std::atomic<std::size_t> rejecting_{0};

  void add_session(http_detail::Session* raw, std::weak_ptr<http_detail::Session> session);
  void remove_session(http_detail::Session* raw, bool rejected);

 private:
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void run_io_thread();

  // Declared before ioc_: sessions still queued in it at destruction remove themselves here.
  std::mutex mu_;
  std::condition_variable sessions_done_;
  std::unordered_map<http_detail::Session*, std::weak_ptr<http_detail::Session>> sessions_;

  net::io_context ioc_;
  net::strand<net::io_context::executor_type> accept_strand_{net::make_strand(ioc_)};
  tcp::acceptor acceptor_{accept_strand_};
  net::steady_timer accept_retry_{accept_strand_};
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;

  std::mutex lifecycle_mu_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace painpoint::service

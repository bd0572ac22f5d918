#include "http_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

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

#include "painpoint/base/hex.h"
#include "painpoint/base/utf8.h"

namespace painpoint::service {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// "/a/b" -> {"a","b"}; "/" -> {""}; "/a/" -> {"a",""}. `path` starts with '/'.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::string_view rest = path.substr(1);
  for (;;) {
    auto slash = rest.find('/');
    out.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return out;
}

bool is_param_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_token(std::string_view method) {
  return !method.empty() && std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Helpers

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return ascii_lower(x) < ascii_lower(y);
  });
}

std::string json_quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Invalid UTF-8 (a client-supplied path, say) would make the whole document invalid JSON.
      std::size_t len = base::utf8_sequence_length(text, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = base::hex_digit_value(text[i + 1]);
      int lo = base::hex_digit_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(
    std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (piece.empty()) continue;
    auto eq = piece.find('=');
    auto key = percent_decode(piece.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Request / response

std::optional<std::string_view> HttpRequest::query_param(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  auto it = headers.lower_bound(name);
  if (it == headers.end() || !iequals(it->first, name)) return std::nullopt;
  return std::string_view(it->second);
}

std::string_view HttpRequest::path_param(std::string_view name) const {
  auto it = path_params.find(name);
  return it == path_params.end() ? std::string_view() : std::string_view(it->second);
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view code, std::string_view message) {
  return json(status, "{\"error\":{\"code\":" + json_quote(code) +
                          ",\"message\":" + json_quote(message) + "}}");
}

// ---------------------------------------------------------------------------------------------
// Router

void Router::add(std::string_view method, std::string_view pattern, HttpHandler handler) {
  if (!is_token(method))
    throw std::invalid_argument("invalid HTTP method '" + std::string(method) + "'");
  if (!handler) throw std::invalid_argument("empty handler for " + std::string(pattern));
  if (pattern.empty() || pattern[0] != '/') {
    throw std::invalid_argument("route pattern must start with '/': '" + std::string(pattern) +
                                "'");
  }
  std::vector<Segment> segments;
  std::set<std::string, std::less<>> names;
  for (std::string_view part : split_path(pattern)) {
    bool opens = part.find('{') != std::string_view::npos;
    bool closes = part.find('}') != std::string_view::npos;
    if (opens || closes) {
      std::string_view name =
          part.size() >= 2 ? part.substr(1, part.size() - 2) : std::string_view();
      if (part.front() != '{' || part.back() != '}' || !is_param_name(name)) {
        throw std::invalid_argument("parameters must be whole segments like {id}: '" +
                                    std::string(pattern) + "'");
      }
      if (!names.emplace(name).second) {
        throw std::invalid_argument("duplicate parameter in '" + std::string(pattern) + "'");
      }
      segments.push_back(Segment{std::string(name), true});
    } else {
      segments.push_back(Segment{std::string(part), false});
    }
  }

  auto existing = std::find_if(routes_.begin(), routes_.end(),
                               [&](const Route& r) { return r.pattern == pattern; });
  if (existing == routes_.end()) {
    routes_.push_back(Route{std::string(pattern), std::move(segments), {}});
    existing = routes_.end() - 1;
  }
  if (!existing->handlers.emplace(std::string(method), std::move(handler)).second) {
    throw std::invalid_argument("duplicate route " + std::string(method) + " " +
                                std::string(pattern));
  }
  // Most specific first: at the first segment where two patterns differ in kind, the literal wins.
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    std::size_t n = std::min(a.segments.size(), b.segments.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (a.segments[i].is_param != b.segments[i].is_param) return !a.segments[i].is_param;
    }
    return false;
  });
}

HttpResponse Router::dispatch(HttpRequest& request) const {
  if (request.path.empty() || request.path[0] != '/') {
    return HttpResponse::error(400, "bad_request", "request target must be an absolute path");
  }
  std::vector<std::string> segments;
  for (std::string_view raw : split_path(request.path)) {
    auto decoded = percent_decode(raw, false);
    if (!decoded) return HttpResponse::error(400, "bad_request", "malformed percent-encoding");
    segments.push_back(std::move(*decoded));
  }

  std::set<std::string> allowed;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      const Segment& seg = route.segments[i];
      match = seg.is_param ? !segments[i].empty() : seg.text == segments[i];
    }
    if (!match) continue;
    auto handler = route.handlers.find(request.method);
    if (handler == route.handlers.end()) {
      for (const auto& entry : route.handlers) allowed.insert(entry.first);
      continue;
    }
    request.path_params.clear();
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (route.segments[i].is_param) request.path_params[route.segments[i].text] = segments[i];
    }
    try {
      return handler->second(request);
    } catch (const std::exception& e) {
      spdlog::error("http: handler for {} {} threw: {}", request.method, route.pattern, e.what());
    } catch (...) {
      spdlog::error("http: handler for {} {} threw a non-exception", request.method, route.pattern);
    }
    // The exception text may hold internals; the client gets a generic message.
    return HttpResponse::error(500, "internal", "internal server error");
  }
  if (!allowed.empty()) {
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    HttpResponse r = HttpResponse::error(405, "method_not_allowed",
                                         "method " + request.method + " not allowed here");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  return HttpResponse::error(404, "not_found", "no route for " + request.path);
}

// ---------------------------------------------------------------------------------------------
// Request handling without I/O, shared by the sessions and handle_request_bytes()

namespace {

// The answer to a failed read, or nullopt when the connection is closed without one.
std::optional<HttpResponse> answer_read_error(beast::error_code ec,
                                              const HttpServerConfig& config) {
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == beast::error::timeout || ec == net::error::operation_aborted) {
    // Client went away, was too slow, or we are stopping: nobody to answer.
    return std::nullopt;
  }
  if (ec == http::error::body_limit) {
    return HttpResponse::error(
        413, "payload_too_large",
        "request body exceeds " + std::to_string(config.body_limit_bytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return HttpResponse::error(431, "headers_too_large", "request headers too large");
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return HttpResponse::error(400, "bad_request", "malformed request: " + ec.message());
  }
  spdlog::debug("http: read failed: {}", ec.message());
  return std::nullopt;
}

// Fills `request` from the parsed message and answers it through the router.
HttpResponse answer_request(http::request<http::string_body>&& msg, const Router& router,
                            HttpRequest& request) {
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  request.http_version = msg.version();
  std::string_view target = request.target;
  auto qmark = target.find('?');
  request.path = std::string(target.substr(0, qmark));
  for (const auto& field : msg) {
    request.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(msg.body());

  std::optional<std::vector<std::pair<std::string, std::string>>> query;
  if (qmark != std::string_view::npos) query = parse_query(target.substr(qmark + 1));
  if (qmark != std::string_view::npos && !query) {
    return HttpResponse::error(400, "bad_request", "malformed percent-encoding in query");
  }
  if (query) request.query = std::move(*query);
  return router.dispatch(request);
}

// A status outside 200..599 is a handler bug; the client gets a well-formed 500 instead.
HttpResponse with_valid_status(HttpResponse response) {
  if (response.status < 200 || response.status > 599) {
    spdlog::error("http: handler returned invalid status {}", response.status);
    return HttpResponse::error(500, "internal", "internal server error");
  }
  return response;
}

void apply_limits(http::request_parser<http::string_body>& parser, const HttpServerConfig& config) {
  parser.body_limit(static_cast<std::uint64_t>(config.body_limit_bytes));
  parser.header_limit(
      static_cast<std::uint32_t>(std::min<std::size_t>(config.header_limit_bytes, UINT32_MAX)));
}

}  // namespace

std::optional<HttpResponse> handle_request_bytes(std::string_view bytes,
                                                 const HttpServerConfig& config,
                                                 const Router& router) {
  http::request_parser<http::string_body> parser;
  apply_limits(parser, config);
  parser.eager(true);
  beast::error_code ec;
  net::const_buffer rest(bytes.data(), bytes.size());
  // Mirrors Beast's read loop on a stream that ends after `bytes`.
  while (!parser.is_done()) {
    const std::size_t used = parser.put(rest, ec);
    rest += used;
    if (!ec && used > 0) continue;
    if (ec && ec != http::error::need_more) return answer_read_error(ec, config);
    if (!parser.got_some()) return answer_read_error(http::error::end_of_stream, config);
    ec = {};
    parser.put_eof(ec);
    if (ec) return answer_read_error(ec, config);
    break;
  }
  HttpRequest request;
  return with_valid_status(answer_request(parser.release(), router, request));
}

// ---------------------------------------------------------------------------------------------
// Server

namespace {
class Session;
}

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

  void add_session(Session* raw, std::weak_ptr<Session> session);
  void remove_session(Session* raw, bool rejected);

 private:
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void run_io_thread();

  // Declared before ioc_: sessions still queued in it at destruction remove themselves here.
  std::mutex mu_;
  std::condition_variable sessions_done_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;

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

namespace {

// One per connection; all of its work runs on its own strand (the socket's executor), so its
// members need no locking. Lifetime: owned by the pending async operation's handler.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server, bool reject)
      : stream_(std::move(socket)), server_(server), reject_(reject) {}

  ~Session() { server_.remove_session(this, reject_); }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() {
    server_.add_session(this, weak_from_this());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->reject_) {
        self->send(HttpResponse::error(503, "unavailable", "too many connections; retry later"), 11,
                   After::kLinger);
      } else {
        self->do_read();
      }
    });
  }

  // Only once no io thread runs (end of stop()).
  void close_now() { close(); }

  // Called on stop(): idle readers go now, writers finish their response first.
  void request_stop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->state_ == State::kReading || self->state_ == State::kDraining) {
        self->stream_.cancel();
      }
    });
  }

 private:
  enum class State { kIdle, kReading, kWriting, kDraining, kClosed };
  enum class After { kKeepAlive, kClose, kLinger };

  const HttpServerConfig& config() const { return server_.config_; }

  void do_read() {
    if (server_.stopping_.load()) return close();
    parser_.emplace();
    apply_limits(*parser_, config());
    state_ = State::kReading;
    // One deadline for the whole request (and the idle wait before it): a client that trickles
    // bytes cannot hold the connection beyond it.
    stream_.expires_after(config().read_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    const auto& msg = parser_->get();
    if (!parser_->is_done() && msg.version() == 11 &&
        iequals(to_std(msg[http::field::expect]), "100-continue")) {
      // curl and others wait for this before sending a body (1 s stall without it).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       beast::bind_front_handler(&Session::on_continue_sent, shared_from_this()));
      return;
    }
    read_body();
  }

  void on_continue_sent(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read_error(beast::error_code ec) {
    if (auto response = answer_read_error(ec, config())) {
      return send(std::move(*response), 11, After::kLinger);
    }
    close();
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    http::request<http::string_body> msg = parser_->release();
    parser_.reset();
    const bool keep_alive = msg.keep_alive();
    const unsigned version = msg.version();

    HttpRequest request;
    HttpResponse response = answer_request(std::move(msg), server_.router_, request);
    spdlog::debug("http: {} {} -> {}", request.method, request.path, response.status);
    send(std::move(response), version,
         keep_alive && !server_.stopping_.load() ? After::kKeepAlive : After::kClose);
  }

  void send(HttpResponse response, unsigned version, After after) {
    response = with_valid_status(std::move(response));
    const int status = response.status;
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(status));
    res_.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) {
      if (iequals(name, "content-length") || iequals(name, "connection") ||
          iequals(name, "transfer-encoding")) {
        continue;
      }
      res_.insert(name, value);
    }
    if (status != 204 && status != 304) res_.body() = std::move(response.body);
    res_.keep_alive(after == After::kKeepAlive);
    res_.prepare_payload();
    state_ = State::kWriting;
    // A client that does not read its response must not pin the connection either.
    stream_.expires_after(config().read_timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this(), after));
  }

  void on_write(After after, beast::error_code ec, std::size_t) {
    res_ = {};
    if (ec) return close();
    switch (after) {
      case After::kKeepAlive:
        return do_read();
      case After::kClose:
        return close();
      case After::kLinger:
        return linger();
    }
  }

  // After an error answer the client may still be sending (the rest of an oversize body). Closing
  // with unread input makes the kernel send RST, which can destroy our answer before the client
  // reads it; so half-close, discard input for a bounded time, then close.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    state_ = State::kDraining;
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(config().read_timeout, std::chrono::seconds(2)));
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(drain_buffer_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void close() {
    state_ = State::kClosed;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  const bool reject_;
  State state_ = State::kIdle;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::array<char, 4096> drain_buffer_{};
};

}  // namespace

void HttpServer::Impl::add_session(Session* raw, std::weak_ptr<Session> session) {
  std::lock_guard lock(mu_);
  sessions_.emplace(raw, std::move(session));
}

void HttpServer::Impl::remove_session(Session* raw, bool rejected) {
  (rejected ? rejecting_ : serving_).fetch_sub(1);
  std::lock_guard lock(mu_);
  sessions_.erase(raw);
  if (sessions_.empty()) sessions_done_.notify_all();
}

void HttpServer::Impl::start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (started_ || stopped_) throw std::logic_error("HttpServer::start() called twice");
  beast::error_code ec;
  auto address = net::ip::make_address(config_.address, ec);
  if (ec) throw std::runtime_error("http: invalid listen address '" + config_.address + "'");
  tcp::endpoint endpoint(address, config_.port);
  const std::string where = config_.address + ":" + std::to_string(config_.port);
  auto check = [&](const char* what) {
    if (ec)
      throw std::runtime_error("http: cannot " + std::string(what) + " " + where + ": " +
                               ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  check("open");
  // Lets a restarted service rebind while old connections sit in TIME_WAIT.
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  check("configure");
  acceptor_.bind(endpoint, ec);
  check("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  check("listen");
  port_ = acceptor_.local_endpoint().port();

  do_accept();
  started_ = true;
  const int n = std::max(1, config_.io_threads);
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "pp-http");
      run_io_thread();
    });
  spdlog::info("http: listening on {}:{} ({} io threads)", config_.address, port_, n);
}

void HttpServer::Impl::run_io_thread() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      // Should not happen (handlers catch), but an escaped exception must not kill the process.
      spdlog::error("http: io thread caught: {}", e.what());
    }
  }
}

void HttpServer::Impl::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Impl::on_accept, this));
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping_.load() || ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // EMFILE and friends: back off instead of spinning on the same error.
    spdlog::warn("http: accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && !stopping_.load()) do_accept();
    });
    return;
  }
  const bool reject = serving_.load() >= config_.max_connections;
  // Turning clients away costs a little too; past this many, drop them without an answer.
  const std::size_t max_rejecting = std::max<std::size_t>(16, config_.max_connections);
  if (reject && rejecting_.load() >= max_rejecting) {
    beast::error_code ignored;
    socket.close(ignored);
  } else {
    (reject ? rejecting_ : serving_).fetch_add(1);
    std::make_shared<Session>(std::move(socket), *this, reject)->start();
  }
  do_accept();
}

void HttpServer::Impl::stop(std::chrono::milliseconds grace) {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (!started_) return;
  const auto deadline = std::chrono::steady_clock::now() + grace;

  // Sessions check this before reading the next request, so none starts after the sweep below.
  stopping_.store(true);
  net::post(accept_strand_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(mu_);
    for (auto& entry : sessions_) {
      if (auto session = entry.second.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->request_stop();
  live.clear();
  {
    std::unique_lock lock(mu_);
    if (!sessions_done_.wait_until(lock, deadline, [this] { return sessions_.empty(); })) {
      spdlog::warn("http: {} connection(s) still open after the grace period; closing",
                   sessions_.size());
    }
  }
  ioc_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  // Stragglers are owned by handlers queued in the stopped io_context, which only dies with this
  // object; close their sockets now so clients are not left hanging until then. No io thread
  // runs any more, so touching them from here is safe.
  {
    std::lock_guard lock(mu_);
    for (auto& entry : sessions_) {
      if (auto session = entry.second.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) session->close_now();
  live.clear();
  beast::error_code ignored;
  acceptor_.close(ignored);
  spdlog::info("http: stopped");
}

HttpServer::HttpServer(HttpServerConfig config, Router router)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router))) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() { impl_->start(); }

std::uint16_t HttpServer::port() const { return impl_->port(); }

void HttpServer::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

std::size_t HttpServer::active_connections() const { return impl_->serving_.load(); }

}  // namespace painpoint::service

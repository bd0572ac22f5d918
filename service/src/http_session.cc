// One session per connection: reads a request under a deadline, answers it through the router,
// keeps the connection alive or closes it, and lingers after an error answer.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "http_internal.h"

namespace painpoint::service::http_detail {

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

void start_session(tcp::socket&& socket, HttpServer::Impl& server, bool reject) {
  std::make_shared<Session>(std::move(socket), server, reject)->start();
}

void request_stop(const std::shared_ptr<Session>& session) { session->request_stop(); }

void close_now(const std::shared_ptr<Session>& session) { session->close_now(); }

}  // namespace painpoint::service::http_detail

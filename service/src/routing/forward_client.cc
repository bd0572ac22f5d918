#include "routing/forward_client.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <memory>

namespace painpoint::service {

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// The owner's headers that a client of the forwarding instance needs as well.
constexpr std::array<http::field, 5> kPassedHeaders = {
    http::field::content_type, http::field::etag, http::field::retry_after,
    http::field::www_authenticate, http::field::allow};

}  // namespace

bool split_host_port(std::string_view address, std::string* host, std::string* port) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) return false;
  std::string_view host_part = address.substr(0, colon);
  const std::string_view port_part = address.substr(colon + 1);
  unsigned number = 0;
  const auto [ptr, ec] =
      std::from_chars(port_part.data(), port_part.data() + port_part.size(), number);
  if (ec != std::errc() || ptr != port_part.data() + port_part.size() || number == 0 ||
      number > 65535) {
    return false;
  }
  if (host_part.starts_with('[')) {
    if (!host_part.ends_with(']') || host_part.size() < 3) return false;
    host_part = host_part.substr(1, host_part.size() - 2);
  } else if (host_part.find(':') != std::string_view::npos) {
    return false;  // an IPv6 literal must be bracketed
  }
  *host = std::string(host_part);
  *port = std::string(port_part);
  return true;
}

namespace {

// One request's exchange on a shared io_context: resolve, connect, write, read, each step started
// from the previous one's completion, so that several exchanges run at once on one thread. The
// stream's expiry (and a timer for the resolve) ends each step at its deadline.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(asio::io_context& io, std::string address, const OutgoingRequest& request,
           const ForwardLimits& limits, ForwardResult* result)
      : address_(std::move(address)),
        request_(request),
        limits_(limits),
        result_(result),
        resolver_(io),
        resolve_deadline_(io),
        stream_(io) {}

  void start() {
    std::string host;
    std::string port;
    if (!split_host_port(address_, &host, &port)) {
      result_->error = "not an address (host:port): " + address_;
      return;
    }
    host_ = host;
    // Numeric addresses resolve at once; a name gets the connect deadline.
    resolve_deadline_.expires_after(limits_.connect_timeout);
    resolve_deadline_.async_wait([self = shared_from_this()](beast::error_code e) {
      if (!e) self->resolver_.cancel();
    });
    resolver_.async_resolve(host, port,
                            [self = shared_from_this()](beast::error_code e,
                                                        tcp::resolver::results_type found) {
                              self->resolve_deadline_.cancel();
                              self->on_resolve(e, std::move(found));
                            });
  }

 private:
  void on_resolve(beast::error_code ec, const tcp::resolver::results_type& endpoints) {
    if (ec) return fail("resolve " + host_, ec);
    stream_.expires_after(limits_.connect_timeout);
    stream_.async_connect(endpoints,
                          [self = shared_from_this()](beast::error_code e, const tcp::endpoint&) {
                            self->on_connect(e);
                          });
  }

  void on_connect(beast::error_code ec) {
    if (ec) return fail("connect " + address_, ec);
    outgoing_ = {http::string_to_verb(request_.method), request_.target, 11};
    outgoing_.set(http::field::host, address_);
    outgoing_.set(http::field::user_agent, "painpoint-forward");
    for (const auto& [name, value] : request_.headers) outgoing_.set(name, value);
    outgoing_.body() = request_.body;
    outgoing_.prepare_payload();
    outgoing_.keep_alive(false);
    stream_.expires_after(limits_.response_timeout);
    http::async_write(stream_, outgoing_,
                      [self = shared_from_this()](beast::error_code e, std::size_t) {
                        if (e) return self->fail("send to " + self->address_, e);
                        self->read_header();
                      });
  }

  void read_header() {
    // The parser refuses a Content-Length above the limit as soon as the header is in, before
    // reading any of the body; chunked and unframed bodies are refused when they pass it.
    parser_.body_limit(limits_.max_response_bytes);
    http::async_read_header(stream_, buffer_, parser_,
                            [self = shared_from_this()](beast::error_code e, std::size_t) {
                              if (e) return self->fail("response from " + self->address_, e);
                              if (self->parser_.is_done()) return self->finish();
                              http::async_read(
                                  self->stream_, self->buffer_, self->parser_,
                                  [self](beast::error_code e2, std::size_t) {
                                    if (e2) return self->fail("response from " + self->address_, e2);
                                    self->finish();
                                  });
                            });
  }

  void fail(const std::string& what, const beast::error_code& ec) {
    result_->error = what + ": " + ec.message();
  }

  void finish() {
    const http::response<http::string_body>& answer = parser_.get();
    HttpResponse& response = result_->response;
    response.status = static_cast<int>(answer.result_int());
    response.body = answer.body();
    response.content_type.clear();
    for (const http::field field : kPassedHeaders) {
      const auto it = answer.find(field);
      if (it == answer.end()) continue;
      const std::string value(it->value().data(), it->value().size());
      if (field == http::field::content_type) {
        response.content_type = value;
      } else {
        const auto name = http::to_string(field);
        response.headers.emplace_back(std::string(name.data(), name.size()), value);
      }
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  std::string address_;
  std::string host_;
  const OutgoingRequest& request_;
  const ForwardLimits& limits_;
  ForwardResult* result_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_deadline_;
  beast::tcp_stream stream_;
  http::request<http::string_body> outgoing_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

std::vector<ForwardResult> send_requests(std::span<const std::string> addresses,
                                         const OutgoingRequest& request,
                                         const ForwardLimits& limits) {
  std::vector<ForwardResult> results(addresses.size());
  asio::io_context io;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    std::make_shared<Exchange>(io, addresses[i], request, limits, &results[i])->start();
  }
  // Every exchange ends at its own deadlines at the latest, so this returns within the limits.
  io.run();
  return results;
}

ForwardResult send_request(std::string_view address, const OutgoingRequest& request,
                           const ForwardLimits& limits) {
  const std::string one(address);
  return std::move(send_requests(std::span(&one, 1), request, limits).front());
}

}  // namespace painpoint::service

#include "routing/forward_client.h"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

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

// Runs the io_context until the operation started last has completed; the stream's expiry (or
// the resolver's cancel) ends that operation at its deadline, so this returns within it.
void run_until_done(asio::io_context& io) {
  io.restart();
  io.run();
}

ForwardResult failed(std::string what, const beast::error_code& ec) {
  ForwardResult result;
  result.error = std::move(what) + ": " + ec.message();
  return result;
}

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

ForwardResult send_request(std::string_view address, const OutgoingRequest& request,
                           const ForwardLimits& limits) {
  std::string host;
  std::string port;
  if (!split_host_port(address, &host, &port)) {
    ForwardResult result;
    result.error = "not an address (host:port): " + std::string(address);
    return result;
  }
  asio::io_context io;
  beast::error_code ec;

  tcp::resolver resolver(io);
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host, port, [&](beast::error_code e, tcp::resolver::results_type found) {
    ec = e;
    endpoints = std::move(found);
  });
  // Numeric addresses resolve at once; a name gets the connect deadline.
  io.run_for(limits.connect_timeout);
  if (!io.stopped()) {
    resolver.cancel();
    run_until_done(io);
  }
  if (ec) return failed("resolve " + host, ec);

  beast::tcp_stream stream(io);
  stream.expires_after(limits.connect_timeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run_until_done(io);
  if (ec) return failed("connect " + std::string(address), ec);

  http::request<http::string_body> outgoing(http::string_to_verb(request.method), request.target,
                                            11);
  outgoing.set(http::field::host, std::string(address));
  outgoing.set(http::field::user_agent, "painpoint-forward");
  for (const auto& [name, value] : request.headers) outgoing.set(name, value);
  outgoing.body() = request.body;
  outgoing.prepare_payload();
  outgoing.keep_alive(false);
  stream.expires_after(limits.response_timeout);
  http::async_write(stream, outgoing, [&](beast::error_code e, std::size_t) { ec = e; });
  run_until_done(io);
  if (ec) return failed("send to " + std::string(address), ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  // The parser refuses a Content-Length above the limit as soon as the header is in, before
  // reading any of the body; chunked and unframed bodies are refused when they pass it.
  parser.body_limit(limits.max_response_bytes);
  http::async_read_header(stream, buffer, parser,
                          [&](beast::error_code e, std::size_t) { ec = e; });
  run_until_done(io);
  if (!ec && !parser.is_done()) {
    http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run_until_done(io);
  }
  if (ec) return failed("response from " + std::string(address), ec);

  const http::response<http::string_body>& answer = parser.get();
  ForwardResult result;
  result.response.status = static_cast<int>(answer.result_int());
  result.response.body = answer.body();
  result.response.content_type.clear();
  for (const http::field field : kPassedHeaders) {
    const auto it = answer.find(field);
    if (it == answer.end()) continue;
    const std::string value(it->value().data(), it->value().size());
    if (field == http::field::content_type) {
      result.response.content_type = value;
    } else {
      const auto name = http::to_string(field);
      result.response.headers.emplace_back(std::string(name.data(), name.size()), value);
    }
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return result;
}

}  // namespace painpoint::service

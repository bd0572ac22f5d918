#include "alerts/https_client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

namespace painpoint::service {

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::chrono::milliseconds kCancelCheck{100};

// Starts one asynchronous operation and runs the io_context until it completed; the stream's
// expiry (beast::tcp_stream) cancels it at the deadline, `cancel` once `cancelled` is set.
template <typename Cancel, typename Start>
beast::error_code run_step(asio::io_context& io, const std::atomic<bool>* cancelled, Cancel cancel,
                           Start start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  io.restart();
  while (!io.stopped()) {
    io.run_for(kCancelCheck);
    if (!io.stopped() && cancelled != nullptr && cancelled->load()) {
      cancel();
      io.run();  // the operation completes with operation_aborted
    }
  }
  return result;
}

}  // namespace

std::optional<HttpsUrl> parse_https_url(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  HttpsUrl out;
  const auto slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.target = std::string(url.substr(slash));
    if (out.target.front() == '?') out.target.insert(0, "/");
  }
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    const std::string_view port = authority.substr(colon + 1);
    unsigned number = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || ptr != port.data() + port.size() || number == 0 || number > 65535) {
      return std::nullopt;
    }
    out.port = std::string(port);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return std::nullopt;
  out.host = std::string(authority);
  return out;
}

std::string HttpsResult::describe() const {
  if (!error.empty()) return error;
  return "HTTP " + std::to_string(status);
}

std::variant<HttpsClient, std::string> HttpsClient::create(const std::string& ca_file) {
  asio::ssl::context context(asio::ssl::context::tls_client);
  beast::error_code ec;
  context.set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) {
    if (ca_file.empty()) {
      context.set_default_verify_paths(ec);
    } else {
      context.load_verify_file(ca_file, ec);
    }
  }
  if (ec) return "TLS set-up" + (ca_file.empty() ? "" : " with " + ca_file) + ": " + ec.message();
  return HttpsClient(std::move(context));
}

HttpsResult HttpsClient::post(const HttpsUrl& url, std::string_view content_type, std::string body,
                              const std::vector<std::pair<std::string, std::string>>& headers,
                              std::chrono::milliseconds timeout,
                              const std::atomic<bool>* cancelled) {
  asio::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, context_);
  HttpsResult result;
  auto failed = [&result](std::string_view what, const beast::error_code& ec) {
    result.error = std::string(what) + ": " + ec.message();
    return result;
  };
  // SNI, and the certificate must name the URL's host.
  // SSL_set_tlsext_host_name() without the macro's C cast.
  if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               static_cast<void*>(const_cast<char*>(url.host.c_str()))) != 1) {
    return failed("TLS server name", beast::error_code(static_cast<int>(::ERR_get_error()),
                                                       asio::error::get_ssl_category()));
  }
  stream.set_verify_callback(asio::ssl::host_name_verification(url.host));

  tcp::resolver resolver(io);
  tcp::resolver::results_type endpoints;
  auto cancel_socket = [&stream] { beast::get_lowest_layer(stream).cancel(); };
  beast::error_code ec = run_step(
      io, cancelled, [&resolver] { resolver.cancel(); },
      [&](auto handler) {
        resolver.async_resolve(url.host, url.port,
                               [&endpoints, handler](beast::error_code e, auto found) mutable {
                                 endpoints = std::move(found);
                                 handler(e);
                               });
      });
  if (ec) return failed("resolve " + url.host, ec);
  beast::get_lowest_layer(stream).expires_after(timeout);
  ec = run_step(io, cancelled, cancel_socket, [&](auto handler) {
    beast::get_lowest_layer(stream).async_connect(endpoints, handler);
  });
  if (ec) return failed("connect " + url.host + ":" + url.port, ec);
  ec = run_step(io, cancelled, cancel_socket, [&](auto handler) {
    stream.async_handshake(asio::ssl::stream_base::client, handler);
  });
  if (ec) return failed("TLS handshake with " + url.host, ec);

  http::request<http::string_body> request(http::verb::post, url.target, 11);
  request.set(http::field::host, url.host);
  request.set(http::field::user_agent, "painpoint-alerts");
  request.set(http::field::content_type,
              beast::string_view(content_type.data(), content_type.size()));
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  request.prepare_payload();
  ec = run_step(io, cancelled, cancel_socket,
                [&](auto handler) { http::async_write(stream, request, handler); });
  if (ec) return failed("send", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);  // receivers answer "ok" or a short error
  ec = run_step(io, cancelled, cancel_socket,
                [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (ec) return failed("read response", ec);
  result.status = static_cast<int>(parser.get().result_int());
  // The connection is not reused; a missing close_notify is common and harmless here.
  beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds{500});
  (void)run_step(io, cancelled, cancel_socket,
                 [&](auto handler) { stream.async_shutdown(handler); });
  return result;
}

}  // namespace painpoint::service

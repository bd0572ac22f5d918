#pragma once

// A minimal HTTPS POST client on Boost.Beast and OpenSSL for the alert webhooks: one request per
// connection, the server certificate verified against the system's CAs (or a CA file) and the
// URL's host name, a deadline on every step.
//
// Thread safety: an HttpsClient may be used from one thread at a time; each post() has its own
// io_context and connection.

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace painpoint::service {

struct HttpsUrl {
  std::string host;
  std::string port = "443";
  std::string target = "/";  // path and query
};

// "https://host[:port][/path?query]"; nullopt for anything else (plain http is refused).
std::optional<HttpsUrl> parse_https_url(std::string_view url);

struct HttpsResult {
  int status = 0;     // the HTTP status; 0 when no response came
  std::string error;  // what failed before a response (connect, TLS, timeout)
  [[nodiscard]] bool ok() const { return error.empty() && status >= 200 && status < 300; }
  [[nodiscard]] std::string describe() const;
};

class HttpsClient {
 public:
  // ca_file empty: the system's default CA paths. Returns the client or what is wrong.
  static std::variant<HttpsClient, std::string> create(const std::string& ca_file);

  // `cancelled` (may be null) is checked every 100 ms: once it is set, the request is abandoned
  // (a stopping serve must not wait for a receiver's deadline).
  HttpsResult post(const HttpsUrl& url, std::string_view content_type, std::string body,
                   const std::vector<std::pair<std::string, std::string>>& headers,
                   std::chrono::milliseconds timeout, const std::atomic<bool>* cancelled = nullptr);

 private:
  explicit HttpsClient(boost::asio::ssl::context context) : context_(std::move(context)) {}
  boost::asio::ssl::context context_;
};

}  // namespace painpoint::service

#pragma once

// One HTTP/1.1 request to another instance's API (plain HTTP, host:port as advertised in its
// consumer's client id), on Boost.Beast: its own io_context and connection per call, a
// deadline on the connection and on the whole exchange, the response body bounded. Blocks the
// calling thread (an API io thread) for at most connect_timeout + response_timeout, also when it
// asks several instances at once.

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http_server.h"

namespace painpoint::service {

struct ForwardLimits {
  std::chrono::milliseconds connect_timeout{1'000};
  // From the request's first byte sent to the response's last byte read.
  std::chrono::milliseconds response_timeout{5'000};
  std::size_t max_response_bytes = std::size_t{16} << 20;
};

struct OutgoingRequest {
  std::string method;  // "GET", "POST"
  std::string target;  // path and query, as the client sent them
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct ForwardResult {
  std::string error;  // what failed before a whole response arrived; empty when one did
  // The owner's status, body and the headers a client needs from it (Content-Type, ETag,
  // Retry-After, WWW-Authenticate, Allow).
  HttpResponse response;
  [[nodiscard]] bool ok() const { return error.empty(); }
};

// "host:port" or "[v6 literal]:port" into host and port; false for anything else.
bool split_host_port(std::string_view address, std::string* host, std::string* port);

ForwardResult send_request(std::string_view address, const OutgoingRequest& request,
                           const ForwardLimits& limits);

// The same request to every address at once, on one io_context of the calling thread: the wait
// is the slowest exchange's (each within the limits), not the sum. One result per address, in
// the order of `addresses`.
std::vector<ForwardResult> send_requests(std::span<const std::string> addresses,
                                         const OutgoingRequest& request,
                                         const ForwardLimits& limits);

}  // namespace painpoint::service

// The HTTP codec: requests parsed and answers checked without I/O (shared by the sessions and
// handle_request_bytes()), header-name ordering, JSON quoting, percent-decoding and query strings.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

#include "http_internal.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/utf8.h"

namespace painpoint::service {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

namespace http_detail {

std::string_view to_std(beast::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

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

}  // namespace http_detail

using namespace http_detail;

// ---------------------------------------------------------------------------------------------
// Helpers

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const noexcept {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return ascii_lower(x) < ascii_lower(y);
  });
}

std::string json_quote(std::string_view text) {
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
          out += base::hex_encode(text.substr(i, 1));
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

}  // namespace painpoint::service

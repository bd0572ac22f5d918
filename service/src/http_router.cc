// Router: method + path pattern to handler (see http_server.h for the matching rules).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "http_server.h"

namespace painpoint::service {

namespace {

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

}  // namespace

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

}  // namespace painpoint::service

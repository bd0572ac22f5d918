#include "api.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "api_internal.h"
#include "painpoint/ingest/producer.h"
#include "painpoint/ingest/topics.h"
#include "painpoint/v1/api.pb.h"
#include "response_cache.h"
#include "text_trim.h"

namespace painpoint::service {

HttpResponse json_message(int status, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string body;
  auto s = google::protobuf::util::MessageToJsonString(message, &body, options);
  if (!s.ok()) return HttpResponse::error(500, "internal", "cannot render the response");
  return HttpResponse::json(status, std::move(body));
}

HttpResponse store_error(const store::Status& s) {
  return HttpResponse::error(503, "store_unavailable", s.to_string());
}

namespace {

// ---------------------------------------------------------------------------- auth

// `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
std::optional<std::string_view> bearer_token(const HttpRequest& request) {
  auto header = request.header("Authorization");
  if (!header) return std::nullopt;
  std::string_view value = *header;
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    const char c = value[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kScheme[i]) {
      return std::nullopt;
    }
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

HttpResponse unauthorized(std::string_view code, std::string_view message,
                          std::string_view challenge) {
  HttpResponse response = HttpResponse::error(401, code, message);
  response.headers.emplace_back("WWW-Authenticate", std::string(challenge));
  return response;
}

// `accepted` holds the tokens that pass (empty strings never do); no tokens = no guard.
HttpHandler guarded(std::vector<std::string> accepted, HttpHandler handler) {
  std::erase_if(accepted, [](const std::string& t) { return t.empty(); });
  if (accepted.empty()) return handler;
  return [accepted = std::move(accepted), handler = std::move(handler)](const HttpRequest& r) {
    auto token = bearer_token(r);
    if (!token) {
      return unauthorized("unauthorized", "this endpoint needs Authorization: Bearer <token>",
                          "Bearer realm=\"painpoint\"");
    }
    // Every accepted token is compared, so the time does not tell which one came close.
    bool ok = false;
    for (const std::string& expected : accepted) ok |= constant_time_equals(*token, expected);
    if (!ok) {
      return unauthorized("invalid_token", "the bearer token is not valid for this endpoint",
                          "Bearer realm=\"painpoint\", error=\"invalid_token\"");
    }
    return handler(r);
  };
}

// ---------------------------------------------------------------------------- feedback

// Whitespace as JSON (and the headers parsed here) know it.
constexpr std::string_view kJsonSpace = " \t\r\n";

// Splits a JSON array into the texts of its top-level elements without interpreting them (each
// is then parsed on its own, with the same parser as `painpoint produce`). nullopt when brackets
// or strings do not balance, or an element is empty; the elements' own syntax is checked later.
std::optional<std::vector<std::string_view>> split_json_array(std::string_view text) {
  text = trim(text, kJsonSpace);
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return std::nullopt;
  const std::string_view inner = text.substr(1, text.size() - 2);
  std::vector<std::string_view> elements;
  if (trim(inner, kJsonSpace).empty()) return elements;
  std::size_t depth = 0;
  std::size_t start = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < inner.size(); ++i) {
    const char c = inner[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return std::nullopt;
      --depth;
    } else if (c == ',' && depth == 0) {
      elements.push_back(trim(inner.substr(start, i - start), kJsonSpace));
      start = i + 1;
    }
  }
  if (in_string || depth != 0) return std::nullopt;
  elements.push_back(trim(inner.substr(start), kJsonSpace));
  for (std::string_view element : elements) {
    if (element.empty()) return std::nullopt;
  }
  return elements;
}

std::optional<std::string_view> topic_for(v1::Source source) {
  switch (source) {
    case v1::SOURCE_SUPPORT:
      return ingest::kTopicSupport;
    case v1::SOURCE_SALES:
      return ingest::kTopicSales;
    case v1::SOURCE_CUSTOMER:
      return ingest::kTopicCustomer;
    default:
      return std::nullopt;
  }
}

// `?source=` accepts the short names and the enum names.
std::optional<v1::Source> parse_source(std::string_view text) {
  if (text == "support" || text == "SOURCE_SUPPORT") return v1::SOURCE_SUPPORT;
  if (text == "sales" || text == "SOURCE_SALES") return v1::SOURCE_SALES;
  if (text == "customer" || text == "SOURCE_CUSTOMER") return v1::SOURCE_CUSTOMER;
  return std::nullopt;
}

std::string event_name(std::size_t index, const v1::FeedbackEvent& event, bool is_array) {
  std::string name = is_array ? "events[" + std::to_string(index) + "]" : "event";
  if (!event.event_id().empty()) name += " (" + event.event_id() + ")";
  return name;
}

HttpResponse post_feedback(const HttpRequest& request, FeedbackSink* sink,
                           const ApiConfig& config) {
  v1::Source default_source = v1::SOURCE_UNSPECIFIED;
  if (auto text = request.query_param("source")) {
    auto parsed = parse_source(*text);
    if (!parsed) {
      return HttpResponse::error(400, "bad_source", "source must be support, sales or customer");
    }
    default_source = *parsed;
  }
  const std::string_view body = trim(request.body, kJsonSpace);
  std::vector<std::string_view> texts;
  const bool is_array = !body.empty() && body.front() == '[';
  if (is_array) {
    auto split = split_json_array(body);
    if (!split) return HttpResponse::error(400, "bad_json", "the body is not a JSON array");
    texts = std::move(*split);
  } else if (!body.empty() && body.front() == '{') {
    texts.push_back(body);
  } else {
    return HttpResponse::error(400, "bad_json",
                               "the body must be a FeedbackEvent or an array of them (JSON)");
  }
  if (texts.empty()) return HttpResponse::error(400, "no_events", "the array is empty");
  if (texts.size() > config.max_events_per_request) {
    return HttpResponse::error(
        413, "too_many_events",
        "at most " + std::to_string(config.max_events_per_request) + " events per request");
  }

  // All or nothing: every event is parsed before any is produced, so a client that fixes the
  // reported event can resend the same request.
  std::vector<v1::FeedbackEvent> events(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    v1::FeedbackEvent& event = events[i];
    if (auto rejected = ingest::parse_json_event(texts[i], &event)) {
      return HttpResponse::error(400, "bad_json",
                                 event_name(i, event, is_array) + ": " + rejected->detail);
    }
  }
  return submit_feedback(events, default_source, sink, config, [&](std::size_t i) {
    return event_name(i, events[i], is_array);
  });
}

// ---------------------------------------------------------------------------- validators

}  // namespace

// A strong validator of a 200 body: a client that sends it back in If-None-Match gets 304 and no
// body (the board polls GET /v1/products every second). The digest is std::hash, so it is stable
// within one process; after a restart a client gets one full answer again.
HttpHandler wrapped(const RouteWrapper& wrapper, HttpHandler handler) {
  return wrapper ? wrapper(std::move(handler)) : handler;
}

HttpHandler with_etag(HttpHandler handler) {
  return [handler = std::move(handler)](const HttpRequest& request) {
    HttpResponse response = handler(request);
    if (response.status != 200) return response;
    // A handler that serves a cached body brings the validator computed with it.
    std::string etag;
    for (const auto& [name, value] : response.headers) {
      if (name == "ETag") etag = value;
    }
    if (etag.empty()) {
      etag = etag_of(response.body);
      response.headers.emplace_back("ETag", etag);
    }
    // Stored by the browser but revalidated on every use.
    response.headers.emplace_back("Cache-Control", "private, no-cache");
    const std::string_view wanted = request.header("If-None-Match").value_or("");
    if (wanted.find(etag) != std::string_view::npos || trim(wanted, kJsonSpace) == "*") {
      response.status = 304;
      response.body.clear();
    }
    return response;
  };
}

namespace {

// ---------------------------------------------------------------------------- Kafka sink

class KafkaFeedbackSink final : public FeedbackSink {
 public:
  static ingest::Result<std::unique_ptr<FeedbackSink>> create(
      const std::string& brokers, const std::map<std::string, std::string>& properties) {
    std::unique_ptr<KafkaFeedbackSink> sink(new KafkaFeedbackSink());
    ingest::ProducerConfig config;
    config.brokers = brokers;
    config.extra = properties;
    config.client_id = "painpoint-webhook";
    // A webhook answers a person or a support system: favour latency over batch size.
    config.linger = std::chrono::milliseconds{5};
    config.delivery_timeout = std::chrono::milliseconds{30'000};
    config.backpressure_timeout = std::chrono::milliseconds{1'000};
    KafkaFeedbackSink* raw = sink.get();
    auto producer = ingest::Producer::create(
        config, [raw](const ingest::DeliveryReport& report) { raw->on_delivery(report); });
    if (!producer.ok()) return producer.status();
    sink->producer_.emplace(std::move(producer).value());
    return std::unique_ptr<FeedbackSink>(std::move(sink));
  }

  ingest::Status send(std::span<const FeedbackRecord> records,
                      std::chrono::milliseconds timeout) override {
    auto request = std::make_shared<Request>();
    request->remaining = records.size();
    std::vector<std::uint64_t> tags;
    tags.reserve(records.size());
    ingest::Status status = ingest::Status::Ok();
    for (const FeedbackRecord& record : records) {
      const std::uint64_t tag = next_tag_.fetch_add(1);
      {
        std::lock_guard lock(mutex_);
        waiting_.emplace(tag, request);
      }
      tags.push_back(tag);
      status = producer_->produce(record.topic, record.key, record.payload, {}, tag);
      if (!status.ok()) break;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (status.ok()) {
      {
        std::lock_guard lock(request->mutex);
        if (!request->first_error.ok()) status = request->first_error;
        if (request->remaining == 0 || !status.ok()) break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        status = ingest::Status::Error(ingest::KafkaErrc::kTimedOut,
                                       "no acknowledgement within the timeout");
        break;
      }
      // Another thread may be serving our reports; a short poll keeps the wait bounded.
      producer_->poll(std::chrono::milliseconds{5});
    }
    // Reports that arrive later find no waiter and are dropped.
    std::lock_guard lock(mutex_);
    for (std::uint64_t tag : tags) waiting_.erase(tag);
    return status;
  }

 private:
  struct Request {
    std::mutex mutex;
    std::size_t remaining = 0;
    ingest::Status first_error;
  };

  KafkaFeedbackSink() = default;

  void on_delivery(const ingest::DeliveryReport& report) {
    std::shared_ptr<Request> request;
    {
      std::lock_guard lock(mutex_);
      auto found = waiting_.find(report.tag);
      if (found == waiting_.end()) return;
      request = std::move(found->second);
      waiting_.erase(found);
    }
    std::lock_guard lock(request->mutex);
    if (request->remaining > 0) --request->remaining;
    if (!report.status.ok() && request->first_error.ok()) request->first_error = report.status;
  }

  std::atomic<std::uint64_t> next_tag_{1};
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Request>> waiting_;
  std::optional<ingest::Producer> producer_;  // last: destroyed (flushed) before the map
};

}  // namespace

bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = std::max(a.size(), b.size());
  // volatile keeps the compiler from turning the loop into an early-exit comparison.
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0U;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0U;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

HttpHandler with_read_auth(const ApiAuth& auth, HttpHandler handler) {
  if (auth.read_token.empty()) return handler;
  return guarded({auth.read_token, auth.write_token}, std::move(handler));
}

HttpHandler with_write_auth(const ApiAuth& auth, HttpHandler handler) {
  return guarded({auth.write_token.empty() ? auth.read_token : auth.write_token},
                 std::move(handler));
}

HttpResponse submit_feedback(std::span<v1::FeedbackEvent> events, v1::Source default_source,
                             FeedbackSink* sink, const ApiConfig& config,
                             const std::function<std::string(std::size_t)>& name) {
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < events.size(); ++i) {
    v1::FeedbackEvent& event = events[i];
    if (event.source() == v1::SOURCE_UNSPECIFIED && default_source == v1::SOURCE_UNSPECIFIED) {
      return HttpResponse::error(422, "missing_source",
                                 name(i) +
                                     ": source is unspecified (set it in the event or pass "
                                     "?source=support|sales|customer)");
    }
    if (auto rejected =
            ingest::validate_and_normalize(event, default_source, config.validation, now)) {
      return HttpResponse::error(422, ingest::reason_code(rejected->reason),
                                 name(i) + ": " + rejected->detail);
    }
    if (!topic_for(event.source())) {
      return HttpResponse::error(422, "bad_source", name(i) + ": unknown source");
    }
  }
  if (sink == nullptr) {
    return HttpResponse::error(503, "kafka_unavailable", "feedback ingestion is not configured");
  }
  std::vector<FeedbackRecord> records;
  records.reserve(events.size());
  v1::AcceptedFeedback accepted;
  for (const v1::FeedbackEvent& event : events) {
    records.push_back(
        {std::string(*topic_for(event.source())), event.product_id(), event.SerializeAsString()});
    accepted.add_accepted(event.event_id());
  }
  if (ingest::Status s = sink->send(records, config.produce_timeout); !s.ok()) {
    spdlog::warn("feedback: {} events not acknowledged: {}", records.size(), s.to_string());
    HttpResponse response = HttpResponse::error(
        503, "kafka_unavailable",
        "Kafka did not acknowledge the events in time; resend them (event ids make that safe): " +
            s.to_string());
    response.headers.emplace_back("Retry-After", "1");
    return response;
  }
  return json_message(202, accepted);
}

ingest::Result<std::unique_ptr<FeedbackSink>> make_kafka_feedback_sink(
    const std::string& brokers, const std::map<std::string, std::string>& properties) {
  return KafkaFeedbackSink::create(brokers, properties);
}

void add_api_routes(Router& router, const store::Store& store, FeedbackSink* sink,
                    const ApiConfig& config) {
  const ApiAuth& auth = config.auth;
  // Every read answers with an ETag (see with_etag).
  const ReadGuard read = [&auth](HttpHandler handler) {
    return with_read_auth(auth, with_etag(std::move(handler)));
  };
  add_product_routes(router, store, read, config.routing);
  add_pain_point_routes(router, store, read, config.routing);
  auto shared_config = std::make_shared<const ApiConfig>(config);
  router.post("/v1/feedback",
              with_write_auth(auth, [sink, shared_config](const HttpRequest& request) {
                return post_feedback(request, sink, *shared_config);
              }));
}

}  // namespace painpoint::service

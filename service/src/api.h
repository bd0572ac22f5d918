#pragma once

// The /v1 HTTP API of `painpoint serve`:
//   GET  /v1/products
//   GET  /v1/products/{product}/pain-points?sort=severity|events|accounts|arr|trend|recent
//                                            &limit=N&cursor=C
//   GET  /v1/pain-points/{id}                (a merged id answers with its survivor)
//   GET  /v1/pain-points/{id}/events?limit=N&cursor=C   (member events, newest first; a merged
//                                            id lists its survivor's, merged members included)
//   GET  /v1/pain-points/{id}/merged        ({"id": survivor, "ids": [ids merged into it]})
//   POST /v1/feedback[?source=support|sales|customer]   (one FeedbackEvent or a JSON array)
// Bodies are the proto3 JSON mapping of painpoint.v1 messages (api.proto, pain_point.proto,
// feedback.proto); errors are {"error":{"code":...,"message":...}}. Successful GETs carry an ETag
// (a digest of the body) and answer 304 to a matching If-None-Match.
//
// Safety: with ApiAuth tokens configured, requests need `Authorization: Bearer <token>`
// (401 + WWW-Authenticate otherwise); tokens are compared in constant time. Read handlers do
// bounded point reads and per-product scans; POST /v1/feedback blocks its io thread for at most
// ApiConfig::produce_timeout while Kafka acknowledges (then 503).

#include <google/protobuf/message.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "http_server.h"
#include "painpoint/ingest/status.h"
#include "painpoint/ingest/validate.h"
#include "painpoint/store/store.h"
#include "painpoint/v1/feedback.pb.h"

namespace painpoint::service {

// Empty token = that guard is off. The write token guards POST routes; the read token guards
// GET /v1/* (the write token is accepted there too, so one admin token can do everything).
// When only the read token is set it guards POST as well, so protecting reads never leaves
// writes open. /healthz, /readyz and /metrics are never guarded (probes and scrapers).
struct ApiAuth {
  std::string write_token;
  std::string read_token;
};

// Equality of two secrets in time that depends only on their lengths, not on where they differ.
bool constant_time_equals(std::string_view a, std::string_view b) noexcept;

// Wrap a handler so it runs only for requests with an accepted bearer token (see ApiAuth).
// For use by every /v1 route, including ones registered outside api.cc (curation).
HttpHandler with_read_auth(const ApiAuth& auth, HttpHandler handler);
HttpHandler with_write_auth(const ApiAuth& auth, HttpHandler handler);

// Shared by the /v1 reads registered outside api.cc (alerts/alerts_api.h):
// a proto3 JSON body (primitive fields always printed); 503 naming a store failure; the `limit`
// query parameter (1..500, default 50; nullopt when malformed); an ETag on every 200 and 304 for
// a matching If-None-Match.
HttpResponse json_message(int status, const google::protobuf::Message& message);
HttpResponse store_error(const store::Status& s);
std::optional<int> parse_limit(const HttpRequest& request);
HttpHandler with_etag(HttpHandler handler);

// One Kafka record of POST /v1/feedback: FeedbackEvent wire bytes keyed by product id.
struct FeedbackRecord {
  std::string topic;
  std::string key;
  std::string payload;
};

// Where POST /v1/feedback sends events. send() returns ok only when every record was
// acknowledged within `timeout`; on failure some records may still have been written (event ids
// make a client's retry harmless). Thread-safe: called concurrently from the io threads.
class FeedbackSink {
 public:
  virtual ~FeedbackSink() = default;
  virtual ingest::Status send(std::span<const FeedbackRecord> records,
                              std::chrono::milliseconds timeout) = 0;
};

// The Kafka sink: an idempotent producer owned by the sink (destroying it flushes briefly).
// `properties`: the operator's librdkafka properties for producers (config file `kafka.*`).
ingest::Result<std::unique_ptr<FeedbackSink>> make_kafka_feedback_sink(
    const std::string& brokers, const std::map<std::string, std::string>& properties);

// Wraps the handlers of the routes whose data another instance may own (routing/forwarding.h).
// An empty wrapper leaves the route as it is: one instance answers from its own store.
using RouteWrapper = std::function<HttpHandler(HttpHandler)>;
struct InstanceRouting {
  RouteWrapper by_product;     // GET /v1/products/{product}/pain-points
  RouteWrapper by_pain_point;  // GET /v1/pain-points/{id}, .../events, .../merged
  RouteWrapper product_list;   // GET /v1/products
  RouteWrapper curation;       // POST /v1/pain-points/{id}/{merge,rename,split} (curation_api.h)
};
HttpHandler wrapped(const RouteWrapper& wrapper, HttpHandler handler);

struct ApiConfig {
  ApiAuth auth;
  InstanceRouting routing;
  // The same rules the ingest stage applies, so an accepted event is never dead-lettered later.
  ingest::ValidationConfig validation;
  // How long POST /v1/feedback waits for the broker's acknowledgements before answering 503.
  std::chrono::milliseconds produce_timeout{5'000};
  std::size_t max_events_per_request = 1'000;  // more -> 413
};

// The shared tail of POST /v1/feedback and the connectors (/v1/connectors/{system}): validates
// and normalizes every event (all or nothing; `default_source` fills an unspecified source), then
// sends them through `sink`. 202 with the accepted ids; 422 naming (through `name(i)`) the first
// invalid event; 503 without a sink or when Kafka did not acknowledge in time.
HttpResponse submit_feedback(std::span<v1::FeedbackEvent> events, v1::Source default_source,
                             FeedbackSink* sink, const ApiConfig& config,
                             const std::function<std::string(std::size_t)>& name);

// Registers every /v1 route. `store` (and `sink`, when not null) must outlive the server; with a
// null sink POST /v1/feedback answers 503.
void add_api_routes(Router& router, const store::Store& store, FeedbackSink* sink,
                    const ApiConfig& config);

}  // namespace painpoint::service

// libFuzzer target: raw bytes as one HTTP request to the service's server code (Beast parser
// under the server's limits, error mapping, query parsing, router) via handle_request_bytes(),
// routed to the real /v1 API over a small RocksDB store (POST /v1/feedback into a sink that
// accepts everything), /healthz and /metrics.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "api.h"
#include "checks.h"
#include "http_server.h"
#include "metrics.h"
#include "painpoint/store/store.h"

namespace {

using namespace painpoint;

struct World {
  std::filesystem::path dir;
  std::unique_ptr<store::Store> store;
  service::MetricsRegistry metrics;
  service::Router router;
  service::HttpServerConfig config;
};

World* world = nullptr;

// Validation and parsing run for real; only the Kafka round trip is left out.
class AcceptingSink : public service::FeedbackSink {
 public:
  ingest::Status send(std::span<const service::FeedbackRecord>,
                      std::chrono::milliseconds) override {
    return ingest::Status::Ok();
  }
};
AcceptingSink sink;

v1::PainPointSummary summary(std::string id, v1::Status status, std::string merged_into = {}) {
  v1::PainPointSummary s;
  s.set_id(std::move(id));
  s.set_product_id("mobile-app");
  s.set_status(status);
  s.set_merged_into(std::move(merged_into));
  s.set_version(1);
  s.set_label("upload crash");
  s.set_event_count(3);
  s.set_severity(0.5);
  return s;
}

void remove_store_dir() {
  if (world == nullptr) return;
  world->store.reset();
  std::error_code ignored;
  std::filesystem::remove_all(world->dir, ignored);
}

void build_world() {
  world = new World;
  std::string dir_template = (std::filesystem::temp_directory_path() / "pp-fuzz-http-XXXXXX");
  if (mkdtemp(dir_template.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  world->dir = dir_template;
  store::StoreOptions options;
  options.block_cache_bytes = 1 << 20;
  options.write_buffer_bytes = 1 << 20;
  if (auto s = store::Store::open(world->dir, options, &world->store); !s.ok()) {
    throw std::runtime_error("store: " + s.to_string());
  }
  // Enough rows for paging, a merge chain and a merge cycle (which must answer 500, not spin).
  store::CommitBatch batch;
  batch.summaries = {
      summary("pp-1", v1::STATUS_ACTIVE),         summary("pp-2", v1::STATUS_ACTIVE),
      summary("pp-3", v1::STATUS_MERGED, "pp-1"), summary("pp-4", v1::STATUS_MERGED, "pp-5"),
      summary("pp-5", v1::STATUS_MERGED, "pp-4"), summary("pp/6", v1::STATUS_ACTIVE)};
  for (const char* id : {"e-1", "e-2", "e-3"}) {
    v1::StoredEvent stored;
    stored.mutable_event()->set_event_id(id);
    stored.mutable_event()->set_product_id("mobile-app");
    stored.mutable_event()->set_text("upload crash");
    batch.events.push_back(stored);
    batch.memberships.push_back({id, "mobile-app", id[2] == '3' ? "pp-3" : "pp-1"});
  }
  if (auto s = world->store->commit(batch); !s.ok()) {
    throw std::runtime_error("store commit: " + s.to_string());
  }
  // Registered only now: exit handlers run in reverse order, so this one closes the store before
  // the statics RocksDB created while opening it are destroyed.
  std::atexit(remove_store_dir);

  world->metrics.counter("painpoint_events_consumed_total", "Messages consumed").inc(7);
  world->router.get("/healthz", [](const service::HttpRequest&) {
    return service::HttpResponse::text(200, "ok\n");
  });
  world->router.get("/metrics", [](const service::HttpRequest&) {
    service::HttpResponse response;
    response.content_type = std::string(service::MetricsRegistry::kContentType);
    response.body = world->metrics.render();
    return response;
  });
  // A handler that throws must become a 500 with a JSON body.
  world->router.post("/fuzz/throw", [](const service::HttpRequest&) -> service::HttpResponse {
    throw std::runtime_error("handler failure");
  });
  service::add_api_routes(world->router, *world->store, &sink, service::ApiConfig{});
  // Small limits so that short inputs reach the 413 and 431 paths; room for a few events.
  world->config.body_limit_bytes = 1024;
  world->config.header_limit_bytes = 256;
}

bool parses_as_json(const std::string& body, google::protobuf::Value* out) {
  return google::protobuf::util::JsonStringToMessage(body, out).ok();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::quiet_protobuf();
  spdlog::set_level(spdlog::level::off);  // handler exceptions are logged; expected here
  build_world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::optional<service::HttpResponse> response =
      service::handle_request_bytes(bytes, world->config, world->router);
  if (!response) return 0;  // incomplete request: a connection would close without answering

  const int status = response->status;
  fuzz::check(status >= 200 && status <= 599, "status outside 200..599", std::to_string(status));
  google::protobuf::Value json;
  if (status >= 400) {
    fuzz::check(response->content_type == "application/json", "error without JSON content type");
    fuzz::check(parses_as_json(response->body, &json), "error body is not JSON", response->body);
    const auto& fields = json.struct_value().fields();
    const auto error = fields.find("error");
    fuzz::check(error != fields.end() && error->second.struct_value().fields().contains("code") &&
                    error->second.struct_value().fields().contains("message"),
                "error body lacks error.code / error.message", response->body);
  } else if (response->content_type == "application/json") {
    fuzz::check(parses_as_json(response->body, &json), "JSON body does not parse", response->body);
  }
  if (status == 405) {
    bool has_allow = false;
    for (const auto& [name, value] : response->headers) has_allow |= name == "Allow";
    fuzz::check(has_allow, "405 without an Allow header");
  }
  return 0;
}

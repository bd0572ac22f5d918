#include "curation_api.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace painpoint::service {

namespace {

using Kind = CurationCommand::Kind;

HttpResponse bad_request(std::string_view message) {
  return HttpResponse::error(400, "bad_json", message);
}

// The body as a JSON object, or the 400 to answer with.
std::variant<google::protobuf::Struct, HttpResponse> parse_object(const HttpRequest& request) {
  google::protobuf::Struct body;
  google::protobuf::util::JsonParseOptions options;
  if (!google::protobuf::util::JsonStringToMessage(request.body, &body, options).ok()) {
    return bad_request("the body must be a JSON object");
  }
  return body;
}

// Fills the command's arguments from the body; nullopt when they are well-formed.
std::optional<HttpResponse> read_arguments(const google::protobuf::Struct& body,
                                           CurationCommand& command) {
  const auto& fields = body.fields();
  auto string_field = [&](const char* name, std::string& out) -> std::optional<HttpResponse> {
    const auto it = fields.find(name);
    if (it == fields.end() || !it->second.has_string_value()) {
      return bad_request(std::string("\"") + name + "\" must be a string");
    }
    out = it->second.string_value();
    return std::nullopt;
  };
  switch (command.kind) {
    case Kind::kMerge:
      if (auto e = string_field("into", command.into)) return e;
      if (command.into.empty()) return bad_request("\"into\" must name a pain point");
      return std::nullopt;
    case Kind::kRename:
      return string_field("label", command.label);
    case Kind::kSplit: {
      const auto it = fields.find("eventIds");
      if (it == fields.end() || !it->second.has_list_value()) {
        return bad_request("\"eventIds\" must be an array of strings");
      }
      for (const auto& v : it->second.list_value().values()) {
        if (!v.has_string_value()) return bad_request("\"eventIds\" must be an array of strings");
        command.event_ids.push_back(v.string_value());
      }
      return std::nullopt;
    }
  }
  return bad_request("unknown operation");
}

HttpResponse summary_response(int status, const v1::PainPointSummary& summary) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string body;
  if (!google::protobuf::util::MessageToJsonString(summary, &body, options).ok()) {
    return HttpResponse::error(500, "internal", "cannot render the response");
  }
  return HttpResponse::json(status, std::move(body));
}

HttpResponse to_response(const CurationResult& result, Kind kind) {
  using Code = CurationResult::Code;
  switch (result.code) {
    case Code::kOk:
      if (!result.summary) return HttpResponse::error(500, "internal", "no summary was produced");
      return summary_response(kind == Kind::kSplit ? 201 : 200, *result.summary);
    case Code::kNotFound:
      return HttpResponse::error(404, "not_found", result.message);
    case Code::kConflict:
      return HttpResponse::error(409, "conflict", result.message);
    case Code::kInvalid:
      return HttpResponse::error(422, "invalid_curation", result.message);
    case Code::kUnavailable:
      return HttpResponse::error(503, "aggregator_unavailable", result.message);
  }
  return HttpResponse::error(500, "internal", "unknown result");
}

HttpHandler curation_handler(AggregatorStage& stage, Kind kind, std::chrono::milliseconds timeout) {
  return [&stage, kind, timeout](const HttpRequest& request) {
    auto parsed = parse_object(request);
    if (auto* error = std::get_if<HttpResponse>(&parsed)) return std::move(*error);
    CurationCommand command;
    command.kind = kind;
    command.id = std::string(request.path_param("id"));
    if (auto error = read_arguments(std::get<google::protobuf::Struct>(parsed), command)) {
      return std::move(*error);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::future<CurationResult> future = stage.submit(std::move(command), deadline);
    if (future.wait_until(deadline) != std::future_status::ready) {
      return HttpResponse::error(503, "aggregator_unavailable",
                                 "the aggregator did not answer in time");
    }
    return to_response(future.get(), kind);
  };
}

}  // namespace

void add_curation_routes(Router& router, AggregatorStage& stage, const ApiAuth& auth,
                         const RouteWrapper& routing, std::chrono::milliseconds timeout) {
  for (const auto& [operation, kind] :
       {std::pair{"merge", Kind::kMerge}, std::pair{"rename", Kind::kRename},
        std::pair{"split", Kind::kSplit}}) {
    router.post(std::string("/v1/pain-points/{id}/") + operation,
                with_write_auth(auth, wrapped(routing, curation_handler(stage, kind, timeout))));
  }
}

}  // namespace painpoint::service

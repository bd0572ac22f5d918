#pragma once

// The curation side of the /v1 HTTP API (human corrections of the clustering):
//   POST /v1/pain-points/{id}/merge   {"into": "pp-..."}      -> 200, the survivor's summary
//   POST /v1/pain-points/{id}/rename  {"label": "..."}        -> 200, the renamed summary
//                                      ("" returns to the automatic label)
//   POST /v1/pain-points/{id}/split   {"eventIds": ["...", ...]} -> 201, the new pain point
// Errors: 400 malformed JSON or fields, 404 unknown id, 409 not allowed now (merged id, into
// itself, other product, split that would empty it), 422 invalid arguments (events that are not
// members, bad label), 503 the aggregator did not answer in time or is stopped. Every change is
// published on painpoint.summaries like any other (status MERGED + merged_into for a merge).
//
// Handlers hand the command to the aggregator stage's thread and block their io thread until it
// answers or `timeout` passes (curation is rare and human-paced, so this is acceptable).

#include <chrono>

#include "aggregator_stage.h"
#include "api.h"
#include "http_server.h"

namespace painpoint::service {

// `stage` and `auth` must outlive the router's server. Routes are guarded by with_write_auth;
// `routing` (when set) wraps each handler inside the guard, so that the instance owning the
// pain point's product applies the command (routing/forwarding.h).
void add_curation_routes(Router& router, AggregatorStage& stage, const ApiAuth& auth,
                         const RouteWrapper& routing = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace painpoint::service

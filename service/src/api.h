#pragma once

// The read side of the HTTP API, served from the store:
//   GET /v1/products
//   GET /v1/products/{product}/pain-points?sort=severity|events|trend|recent&limit=N&cursor=C
//   GET /v1/pain-points/{id}                (a merged id answers with its survivor)
// Bodies are the proto3 JSON mapping of painpoint.v1 messages (api.proto, pain_point.proto).
// Handlers do bounded point reads and per-product scans; safe on the HTTP io threads.

#include "http_server.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

// `store` must outlive the router's server.
void add_read_api_routes(Router& router, const store::Store& store);

}  // namespace painpoint::service

#pragma once

// The route groups add_api_routes() (api.h) registers; private to api*.cc.

#include <functional>

#include "api.h"

namespace painpoint::service {

// Wraps a read handler in the read guard and the validator (with_read_auth, with_etag).
using ReadGuard = std::function<HttpHandler(HttpHandler)>;

// GET /v1/products and GET /v1/products/{product}/pain-points (api_reads.cc).
void add_product_routes(Router& router, const store::Store& store, const ReadGuard& read,
                        const InstanceRouting& routing);

// GET /v1/pain-points/{id}, .../events and .../merged (api_reads.cc).
void add_pain_point_routes(Router& router, const store::Store& store, const ReadGuard& read,
                           const InstanceRouting& routing);

}  // namespace painpoint::service

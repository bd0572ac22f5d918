#pragma once

// GET /v1/alerts[?product=P][&limit=N][&cursor=C]: the alerts fired so far, newest first
// (AlertList, proto3 JSON), with the auth and ETag of the other /v1 reads (api.h).

#include "api.h"
#include "http_server.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

// `store` must outlive the server.
void add_alerts_routes(Router& router, const store::Store& store, const ApiAuth& auth);

}  // namespace painpoint::service

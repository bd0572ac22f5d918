#pragma once

// The pain-point board (service/board/): a single-page app embedded in the binary and served by
// `painpoint serve` on the API's port.
//   GET /, /products/{product}, /pain-points/{id}   the app's index.html (it routes in the page)
//   GET /assets/{file}                              its scripts and styles, content-hashed names
// gzip when the client accepts it; hashed assets are immutable, index.html is revalidated. The
// app only talks to /v1 on the same origin; nothing is loaded from elsewhere.

#include <string_view>

#include "http_server.h"

namespace painpoint::service {

// Whether an Accept-Encoding value allows gzip (a "gzip" or "*" coding whose q is not 0).
bool accepts_gzip(std::string_view accept_encoding);

void add_board_routes(Router& router);

}  // namespace painpoint::service

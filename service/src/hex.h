#pragma once

// Lowercase hexadecimal of bytes, shared by the API's cursors and ETags and the connectors'
// signatures.

#include <optional>
#include <string>
#include <string_view>

namespace painpoint::service {

std::string hex_encode(std::string_view bytes);
// Accepts lowercase digits only (what hex_encode writes); nullopt on anything else or odd length.
std::optional<std::string> hex_decode(std::string_view text);

}  // namespace painpoint::service

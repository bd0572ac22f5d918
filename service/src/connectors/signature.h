#pragma once

// HMAC digests (OpenSSL's libcrypto) and base64, for the connectors' signature schemes.

#include <string>
#include <string_view>

namespace painpoint::service {

std::string hmac_sha256(std::string_view key, std::string_view message);  // 32 raw bytes
std::string hmac_sha1(std::string_view key, std::string_view message);    // 20 raw bytes
std::string base64_encode(std::string_view bytes);                        // RFC 4648, padded

}  // namespace painpoint::service

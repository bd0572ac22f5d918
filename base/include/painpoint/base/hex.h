// Hexadecimal: the API's cursors and ETags, the connectors' signatures, percent-decoding and
// JSON \u escapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace painpoint::base {

// Lowercase hex of `bytes`.
[[nodiscard]] std::string hex_encode(std::string_view bytes);
// Lowercase hex of `value`, most significant digit first, zero-padded to 8 or 16 digits: ids and
// keys that must sort and compare as fixed-width text.
[[nodiscard]] std::string hex_u32(std::uint32_t value);
[[nodiscard]] std::string hex_u64(std::uint64_t value);
// Accepts lowercase digits only (what hex_encode writes); nullopt on anything else or odd length.
[[nodiscard]] std::optional<std::string> hex_decode(std::string_view text);
// The value of one hex digit of either case, or -1 when `c` is none.
[[nodiscard]] inline constexpr int hex_digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace painpoint::base

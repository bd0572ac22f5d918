#include "painpoint/base/hex.h"

namespace painpoint::base {
namespace {

constexpr char kDigits[] = "0123456789abcdef";

std::string fixed_width_hex(std::uint64_t value, int digits) {
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, value >>= 4) {
    out[static_cast<std::size_t>(i)] = kDigits[value & 0x0F];
  }
  return out;
}

}  // namespace

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0F]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  auto lowercase_digit = [](char c) { return (c >= 'A' && c <= 'F') ? -1 : hex_digit_value(c); };
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = lowercase_digit(text[i]);
    const int lo = lowercase_digit(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string hex_u32(std::uint32_t value) { return fixed_width_hex(value, 8); }
std::string hex_u64(std::uint64_t value) { return fixed_width_hex(value, 16); }

}  // namespace painpoint::base

// UTF-8: the one validator, decoder, encoder and boundary finder of the project. Validation is
// strict (no overlongs, surrogates or code points above U+10FFFF), as the Unicode standard's
// Table 3-7 defines well-formed UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace painpoint::base {

inline constexpr char32_t kReplacementCharacter = U'\uFFFD';

[[nodiscard]] inline constexpr bool is_utf8_continuation(char byte) noexcept {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

namespace utf8_detail {

// What the lead byte `b` allows: the sequence's length (0: none starts with it) and the range of
// its second byte, which rules out overlongs, surrogates and code points above U+10FFFF.
struct LeadByte {
  std::size_t length;
  unsigned char second_lo;
  unsigned char second_hi;
};

[[nodiscard]] inline constexpr LeadByte lead_byte(unsigned char b) noexcept {
  if (b < 0x80) return {1, 0x80, 0xBF};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes of the sequence at s[i] with lead `lead` are well-formed (1..lead.length).
[[nodiscard]] inline constexpr std::size_t well_formed_bytes(std::string_view s, std::size_t i,
                                                             LeadByte lead) noexcept {
  std::size_t k = 1;
  for (; k < lead.length && i + k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    const bool ok =
        k == 1 ? (b >= lead.second_lo && b <= lead.second_hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
  }
  return k;
}

}  // namespace utf8_detail

// Length of the well-formed UTF-8 sequence that starts at s[i] (1 to 4), or 0 when none does.
[[nodiscard]] inline constexpr std::size_t utf8_sequence_length(std::string_view s,
                                                                std::size_t i) noexcept {
  const auto lead = utf8_detail::lead_byte(static_cast<unsigned char>(s[i]));
  if (lead.length <= 1) return lead.length;
  return utf8_detail::well_formed_bytes(s, i, lead) == lead.length ? lead.length : 0;
}

[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;

// Decodes the code point at s[i] and advances i past it. An ill-formed sequence decodes as
// U+FFFD and i advances past its maximal well-formed prefix (at least one byte): Unicode's
// recommended practice, which Python and ICU follow, so the sentence encoder's tokenizer matches
// its reference implementation byte for byte.
[[nodiscard]] inline constexpr char32_t decode_utf8(std::string_view s, std::size_t& i) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const auto lead = utf8_detail::lead_byte(b0);
  if (lead.length == 0) {
    ++i;
    return kReplacementCharacter;
  }
  const std::size_t good = utf8_detail::well_formed_bytes(s, i, lead);
  if (good != lead.length) {
    i += good;
    return kReplacementCharacter;
  }
  char32_t c = b0 & (0xFF >> (lead.length + 1));
  for (std::size_t k = 1; k < lead.length; ++k) {
    c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  i += lead.length;
  return c;
}

// Appends the UTF-8 encoding of `c` (a Unicode scalar value) to `out`.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Length of the longest prefix of `s` of at most `max_bytes` that ends at a code point boundary:
// where a text may be cut without splitting a character.
[[nodiscard]] std::size_t utf8_prefix_length(std::string_view s, std::size_t max_bytes) noexcept;

}  // namespace painpoint::base

// The stored form of sentence vectors (encoder.h: pack_embedding / unpack_embedding).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "painpoint/aggregator/encoder.h"

namespace painpoint::aggregator {

std::string pack_embedding(std::span<const float> vector) {
  float max_abs = 0;
  for (float x : vector) max_abs = std::max(max_abs, std::fabs(x));
  const float scale = max_abs > 0 ? max_abs / 127.0f : 0.0f;
  std::string out(4 + vector.size(), '\0');
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(scale);
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(bits >> (8 * i));
  for (std::size_t k = 0; k < vector.size(); ++k) {
    const float code = scale > 0 ? std::nearbyint(vector[k] / scale) : 0.0f;
    out[4 + k] = static_cast<char>(static_cast<std::int8_t>(std::clamp(code, -127.0f, 127.0f)));
  }
  return out;
}

bool unpack_embedding(std::string_view bytes, std::span<float> out) {
  if (bytes.size() != 4 + out.size()) return false;
  std::uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) {
    bits |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]))
            << (8 * i);
  }
  const float scale = std::bit_cast<float>(bits);
  if (!std::isfinite(scale) || scale < 0) return false;
  for (std::size_t k = 0; k < out.size(); ++k) {
    out[k] = scale * static_cast<float>(static_cast<std::int8_t>(bytes[4 + k]));
  }
  return true;
}

}  // namespace painpoint::aggregator

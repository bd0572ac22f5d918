// The stored form of sentence vectors (encoder.h: pack_embedding / unpack_embedding): a float32
// scale, little endian, then one int8 code per dimension. Serve, crash recovery, `replay rebuild`
// and `painpoint cluster` all hand the aggregator the unpacked vector, so these properties are
// what makes them agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "painpoint/aggregator/encoder.h"

namespace painpoint::aggregator {
namespace {

constexpr std::size_t kDims = SentenceEncoder::kDims;

std::vector<float> random_unit(std::mt19937& rng, std::size_t dims = kDims) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dims);
  double norm = 0;
  for (float& x : v) {
    x = normal(rng);
    norm += static_cast<double>(x) * x;
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : v) x *= inv;
  return v;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

std::vector<float> unpacked(const std::string& bytes, std::size_t dims = kDims) {
  std::vector<float> out(dims, -99.0f);
  EXPECT_TRUE(unpack_embedding(bytes, out));
  return out;
}

std::string scale_bytes(float scale) {
  const auto bits = std::bit_cast<std::uint32_t>(scale);
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(bits >> (8 * i));
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(EmbeddingCodec, SizeIsScalePlusOneBytePerDimension) {
  std::mt19937 rng(1);
  EXPECT_EQ(pack_embedding(random_unit(rng)).size(), kDims + 4);
  EXPECT_EQ(pack_embedding(random_unit(rng, 7)).size(), 11u);
}

TEST(EmbeddingCodec, RoundTripKeepsUnitVectorsWithinInt8Precision) {
  std::mt19937 rng(42);
  double worst = 1.0;
  for (int n = 0; n < 500; ++n) {
    const std::vector<float> v = random_unit(rng);
    const std::string bytes = pack_embedding(v);
    const std::vector<float> back = unpacked(bytes);
    const double c = cosine(v, back);
    worst = std::min(worst, c);
    ASSERT_GE(c, 0.999) << "vector " << n;
    // Each component is off by at most half a quantization step.
    float max_abs = 0;
    for (float x : v) max_abs = std::max(max_abs, std::fabs(x));
    const float step = max_abs / 127.0f;
    for (std::size_t k = 0; k < kDims; ++k) {
      ASSERT_LE(std::fabs(back[k] - v[k]), 0.5f * step * 1.001f) << "vector " << n << " dim " << k;
    }
  }
  std::cout << "worst cosine over 500 random unit vectors: " << worst << "\n";
}

TEST(EmbeddingCodec, ByteLayoutIsLittleEndianScaleThenCodes) {
  // max |x| = 254: scale 2.0f = 0x40000000, stored 00 00 00 40.
  const std::vector<float> v = {254.0f, -254.0f, 0.0f, 2.0f, -3.1f, 100.9f, -0.9f, 0.4f};
  const std::string bytes = pack_embedding(v);
  ASSERT_EQ(bytes.size(), 12u);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x00\x00\x00\x40", 4));
  const std::int8_t codes[] = {127, -127, 0, 1, -2, 50, 0, 0};
  for (std::size_t k = 0; k < v.size(); ++k) {
    EXPECT_EQ(static_cast<std::int8_t>(bytes[4 + k]), codes[k]) << "dim " << k;
  }
  // Decoded value = scale * code, exactly.
  const std::vector<float> back = unpacked(bytes, v.size());
  for (std::size_t k = 0; k < v.size(); ++k) EXPECT_EQ(back[k], 2.0f * codes[k]) << "dim " << k;

  // A scale with four different bytes: the least significant byte comes first.
  const std::vector<float> w = {0.3f, -0.1f, 0.0f};
  const float scale = 0.3f / 127.0f;
  const std::string wb = pack_embedding(w);
  ASSERT_EQ(wb.size(), 7u);
  EXPECT_EQ(wb.substr(0, 4), scale_bytes(scale));
  const auto bits = std::bit_cast<std::uint32_t>(scale);
  EXPECT_EQ(static_cast<unsigned char>(wb[0]), bits & 0xFF);
  EXPECT_EQ(static_cast<unsigned char>(wb[3]), bits >> 24);
  EXPECT_EQ(static_cast<std::int8_t>(wb[4]), 127);
  EXPECT_EQ(static_cast<std::int8_t>(wb[5]), -42);  // -42.33
  EXPECT_EQ(static_cast<std::int8_t>(wb[6]), 0);

  // Hand-made bytes decode as documented (scale 0.5f = 0x3F000000).
  std::string hand("\x00\x00\x00\x3f", 4);
  hand += static_cast<char>(static_cast<std::int8_t>(-128));
  hand += static_cast<char>(static_cast<std::int8_t>(7));
  std::vector<float> out(2);
  ASSERT_TRUE(unpack_embedding(hand, out));
  EXPECT_EQ(out[0], -64.0f);
  EXPECT_EQ(out[1], 3.5f);
}

TEST(EmbeddingCodec, ZeroVector) {
  const std::vector<float> zero(kDims, 0.0f);
  const std::string bytes = pack_embedding(zero);
  EXPECT_EQ(bytes, std::string(kDims + 4, '\0'));
  const std::vector<float> back = unpacked(bytes);
  for (float x : back) {
    EXPECT_EQ(x, 0.0f);
    EXPECT_FALSE(std::signbit(x));
  }
  // Negative zeros are zeros too.
  EXPECT_EQ(pack_embedding(std::vector<float>(kDims, -0.0f)), bytes);
}

TEST(EmbeddingCodec, WrongSizesAreRejectedAndLeaveTheOutputAlone) {
  std::mt19937 rng(3);
  const std::string bytes = pack_embedding(random_unit(rng));
  const std::vector<float> sentinel(kDims, 7.0f);
  for (const std::size_t size : {std::size_t{0}, std::size_t{3}, std::size_t{4}, kDims, kDims + 3,
                                 kDims + 5, 2 * kDims + 4}) {
    const std::string b = size <= bytes.size() ? bytes.substr(0, size)
                                               : bytes + std::string(size - bytes.size(), '\x01');
    std::vector<float> out = sentinel;
    EXPECT_FALSE(unpack_embedding(b, out)) << size << " bytes";
    EXPECT_EQ(out, sentinel) << size << " bytes";
  }
  // The right bytes for another dimension count.
  std::vector<float> small(kDims - 1, 7.0f);
  EXPECT_FALSE(unpack_embedding(bytes, small));
  EXPECT_EQ(small, std::vector<float>(kDims - 1, 7.0f));
  std::vector<float> big(kDims + 1, 7.0f);
  EXPECT_FALSE(unpack_embedding(bytes, big));
  EXPECT_EQ(big, std::vector<float>(kDims + 1, 7.0f));
  std::vector<float> none;
  EXPECT_FALSE(unpack_embedding(bytes, none));
  std::vector<float> out = sentinel;
  EXPECT_FALSE(unpack_embedding("", out));
  EXPECT_EQ(out, sentinel);
}

TEST(EmbeddingCodec, NonFiniteOrNegativeScaleIsRejected) {
  std::mt19937 rng(4);
  const std::string good = pack_embedding(random_unit(rng));
  const float bad_scales[] = {std::numeric_limits<float>::quiet_NaN(),
                              -std::numeric_limits<float>::quiet_NaN(),
                              std::numeric_limits<float>::signaling_NaN(),
                              std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(),
                              -1.0f,
                              -1e-30f,
                              -std::numeric_limits<float>::denorm_min()};
  for (const float scale : bad_scales) {
    std::string b = good;
    b.replace(0, 4, scale_bytes(scale));
    std::vector<float> out(kDims, 7.0f);
    EXPECT_FALSE(unpack_embedding(b, out))
        << "scale bits 0x" << std::hex << std::bit_cast<std::uint32_t>(scale);
    EXPECT_EQ(out, std::vector<float>(kDims, 7.0f));
  }
  // The good bytes are accepted (the cases above fail for their scale alone).
  std::vector<float> out(kDims);
  EXPECT_TRUE(unpack_embedding(good, out));
}

TEST(EmbeddingCodec, StableAfterOneRound) {
  // A stored vector that is unpacked and packed again gives the same bytes, and so the same
  // vector: whatever re-stores an unpacked vector cannot drift.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> magnitude(1e-3f, 10.0f);
  for (int n = 0; n < 2000; ++n) {
    std::vector<float> v = random_unit(rng);
    const float m = magnitude(rng);
    for (float& x : v) x *= m;
    const std::string once = pack_embedding(v);
    const std::vector<float> u1 = unpacked(once);
    const std::string twice = pack_embedding(u1);
    ASSERT_EQ(twice, once) << "vector " << n;
    const std::vector<float> u2 = unpacked(twice);
    ASSERT_TRUE(same_bits(u1, u2)) << "vector " << n;
  }
}

}  // namespace
}  // namespace painpoint::aggregator

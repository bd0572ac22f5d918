#include "painpoint/base/hex.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>

namespace painpoint::base {
namespace {

TEST(Hex, EncodesLowercaseAndRoundTrips) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(hex_decode(hex_encode(all)), all);
}

TEST(Hex, DecodeRefusesWhatEncodeNeverWrites) {
  EXPECT_EQ(hex_decode("0"), std::nullopt);   // odd length
  EXPECT_EQ(hex_decode("0A"), std::nullopt);  // uppercase
  EXPECT_EQ(hex_decode("0g"), std::nullopt);
  EXPECT_EQ(hex_decode("zz"), std::nullopt);
  EXPECT_EQ(hex_decode("00ff"), std::string("\x00\xff", 2));
}

TEST(Hex, FixedWidthIntegersAreZeroPaddedAndMatchPrintf) {
  EXPECT_EQ(hex_u32(0), "00000000");
  EXPECT_EQ(hex_u32(0xabcU), "00000abc");
  EXPECT_EQ(hex_u32(0xffffffffU), "ffffffff");
  EXPECT_EQ(hex_u64(0), "0000000000000000");
  EXPECT_EQ(hex_u64(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(hex_u64(~0ULL), "ffffffffffffffff");
  // Ids and state keys were written with "%016llx" / "%08x": the same text, or stored keys and
  // published ids would change.
  std::uint64_t v = 1;
  for (int step = 0; step < 64; ++step, v = v * 7 + 1) {
    char expected[17];
    std::snprintf(expected, sizeof expected, "%016llx", static_cast<unsigned long long>(v));
    ASSERT_EQ(hex_u64(v), expected);
    std::snprintf(expected, sizeof expected, "%08x", static_cast<unsigned>(v));
    ASSERT_EQ(hex_u32(static_cast<std::uint32_t>(v)), expected);
  }
}

TEST(Hex, DigitValueTakesEitherCase) {
  EXPECT_EQ(hex_digit_value('0'), 0);
  EXPECT_EQ(hex_digit_value('9'), 9);
  EXPECT_EQ(hex_digit_value('a'), 10);
  EXPECT_EQ(hex_digit_value('F'), 15);
  EXPECT_EQ(hex_digit_value('g'), -1);
  EXPECT_EQ(hex_digit_value('/'), -1);
}

}  // namespace
}  // namespace painpoint::base

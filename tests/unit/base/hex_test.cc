#include "painpoint/base/hex.h"

#include <gtest/gtest.h>

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

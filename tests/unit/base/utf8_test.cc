#include "painpoint/base/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace painpoint::base {
namespace {

std::u32string decode_all(std::string_view s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) out += decode_utf8(s, i);
  return out;
}

TEST(Utf8, ValidatesWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9"));          // é
  EXPECT_TRUE(is_valid_utf8("\xEF\xBF\xBD"));      // U+FFFD
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x99\x81"));  // emoji
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
}

TEST(Utf8, RejectsIllFormedText) {
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));          // overlong 2-byte
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));      // overlong 3-byte
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));  // overlong 4-byte
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // U+D800
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));      // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));  // truncated
  EXPECT_FALSE(is_valid_utf8("ok\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xC3("));
}

TEST(Utf8, SequenceLengthIsZeroWhereNoSequenceStarts) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x99\x81\x80";
  EXPECT_EQ(utf8_sequence_length(s, 0), 1u);
  EXPECT_EQ(utf8_sequence_length(s, 1), 2u);
  EXPECT_EQ(utf8_sequence_length(s, 2), 0u);  // a continuation byte
  EXPECT_EQ(utf8_sequence_length(s, 3), 3u);
  EXPECT_EQ(utf8_sequence_length(s, 6), 4u);
  EXPECT_EQ(utf8_sequence_length(s, 10), 0u);
  EXPECT_EQ(utf8_sequence_length("\xE2\x82", 0), 0u);
}

TEST(Utf8, DecodesCodePoints) {
  EXPECT_EQ(decode_all("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x99\x81"), U"a\u00E9\u20AC\U0001F641");
}

TEST(Utf8, ReplacesEachMaximalIllFormedSubpart) {
  // Unicode's examples (Table 3-8 style): a truncated sequence is one U+FFFD, a byte that can
  // start nothing is one each, and the byte that broke a sequence starts over.
  EXPECT_EQ(decode_all("\xE2\x82("), U"\uFFFD(");
  EXPECT_EQ(decode_all("\x80\x80"), U"\uFFFD\uFFFD");
  EXPECT_EQ(decode_all("\xC0\x80"), U"\uFFFD\uFFFD");
  EXPECT_EQ(decode_all("\xED\xA0\x80"), U"\uFFFD\uFFFD\uFFFD");
  EXPECT_EQ(decode_all("\xF0\x9F\x99"), U"\uFFFD");
  EXPECT_EQ(decode_all("\xF0\x9F\x99x"), U"\uFFFDx");
}

TEST(Utf8, AppendRoundTripsEveryLength) {
  for (char32_t c : {U'\u0000', U'a', U'\u007F', U'\u0080', U'\u07FF', U'\u0800', U'\uFFFD',
                     U'\U00010000', U'\U0010FFFF'}) {
    std::string s;
    append_utf8(s, c);
    ASSERT_TRUE(is_valid_utf8(s)) << static_cast<unsigned>(c);
    std::size_t i = 0;
    EXPECT_EQ(decode_utf8(s, i), c);
    EXPECT_EQ(i, s.size());
  }
}

TEST(Utf8, PrefixLengthNeverSplitsACharacter) {
  const std::string s =
      "ab\xE2\x82\xAC"
      "c";  // "ab€c"
  EXPECT_EQ(utf8_prefix_length(s, 100), s.size());
  EXPECT_EQ(utf8_prefix_length(s, 6), 6u);
  EXPECT_EQ(utf8_prefix_length(s, 5), 5u);
  EXPECT_EQ(utf8_prefix_length(s, 4), 2u);
  EXPECT_EQ(utf8_prefix_length(s, 3), 2u);
  EXPECT_EQ(utf8_prefix_length(s, 2), 2u);
  EXPECT_EQ(utf8_prefix_length(s, 0), 0u);
}

}  // namespace
}  // namespace painpoint::base

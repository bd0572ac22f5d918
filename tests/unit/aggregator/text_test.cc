#include "painpoint/aggregator/text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "painpoint/aggregator/config.h"
#include "painpoint/aggregator/severity.h"

namespace painpoint::aggregator {
namespace {

std::vector<std::string> words(std::string_view text) {
  Tokenizer t;
  Tokens tokens;
  t.tokenize(text, tokens);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < tokens.size(); ++i) out.emplace_back(tokens[i]);
  return out;
}

using V = std::vector<std::string>;

TEST(Tokenizer, LowercasesAndDropsStopWords) {
  EXPECT_EQ(words("The App CRASHES when I open the Settings!"),
            (V{"app", "crashes", "open", "settings"}));
}

TEST(Tokenizer, UnicodeAwareLowercase) {
  EXPECT_EQ(words("ÉCRAN Noir"), (V{"écran", "noir"}));
  EXPECT_EQ(words("ОШИБКА входа"), (V{"ошибка", "входа"}));
  EXPECT_EQ(words("Ärger mit Überweisung"), (V{"ärger", "mit", "überweisung"}));
}

TEST(Tokenizer, Placeholders) {
  EXPECT_EQ(words("mail bob@example.com or see https://x.io/a?b=1 — paid 42.50 twice"),
            (V{"mail", "_email_", "see", "_url_", "paid", "_num_", "twice"}));
  EXPECT_EQ(words("contact [email] asap"), (V{"contact", "_email_", "asap"}));
}

TEST(Tokenizer, ContractionsKeepNegation) {
  EXPECT_EQ(words("I can't log in, it doesn't work"), (V{"not", "log", "not", "work"}));
  EXPECT_EQ(words("it’s broken"), (V{"broken"}));
  // A backtick is an apostrophe too (ASCII text takes a fast path that must agree).
  EXPECT_EQ(words("It`s BROKEN, Can`t Pay"), (V{"broken", "not", "pay"}));
}

TEST(Tokenizer, EmptyAndPunctuationOnly) {
  EXPECT_TRUE(words("").empty());
  EXPECT_TRUE(words("?!... 🙂").empty());
}

TEST(Stemmer, SnowballEnglish) {
  Stemmer s;
  EXPECT_EQ(s.stem("running"), "run");
  EXPECT_EQ(s.stem("connections"), "connect");
  EXPECT_EQ(s.stem("declined"), s.stem("declining"));
  EXPECT_EQ(s.stem("card"), "card");
}

TEST(StopWords, NegationsAreNotStopWords) {
  EXPECT_TRUE(is_stop_word("the"));
  EXPECT_FALSE(is_stop_word("not"));
  EXPECT_FALSE(is_stop_word("no"));
}

TEST(StopWords, FirstAndLastOfTheListAndNearMisses) {
  for (std::string_view w : {"about", "yourself", "am", "zoo", "yours", "why", "whom", "a", ""}) {
    const bool expected =
        w == "about" || w == "yourself" || w == "am" || w == "yours" || w == "why" || w == "whom";
    EXPECT_EQ(is_stop_word(w), expected) << w;
  }
  EXPECT_FALSE(is_stop_word("The")) << "the list is lowercase; tokens are lowered first";
  EXPECT_FALSE(is_stop_word("abouts"));
}

TEST(StopWords, LengthAndBytesBeyondTheFirstEightCount) {
  EXPECT_TRUE(is_stop_word("themselves")) << "ten letters: the comparison spans two words";
  EXPECT_FALSE(is_stop_word("themselvez"));
  EXPECT_FALSE(is_stop_word("themselvesthemselves"));
  EXPECT_FALSE(is_stop_word("th"));
  EXPECT_FALSE(is_stop_word(std::string_view("the\0", 4))) << "a NUL byte is not padding";
}

TEST(Tokenizer, WordsMixingAsciiRunsWithOtherLetters) {
  // ASCII letters and digits are copied a run at a time; the run must join the letters that
  // follow it, and digits anywhere in the word make it a number.
  EXPECT_EQ(words("cafés Straße école2 x86_64 abc—def"),
            (V{"cafés", "straße", "_num_", "_num_", "_num_", "abc", "def"}));
  EXPECT_EQ(words("1,000 users, v2.5.1 and 3. items"),
            (V{"_num_", "users", "_num_", "_num_", "items"}));
}

TEST(Severity, TrendIsLogRatioOfLastTwoWeeks) {
  std::vector<std::int64_t> flat(28, 1);
  EXPECT_DOUBLE_EQ(trend_of(flat), 0.0);
  std::vector<std::int64_t> rising(28, 0);
  for (std::size_t i = 21; i < 28; ++i) rising[i] = 3;  // 21 in the last week, 0 before
  EXPECT_NEAR(trend_of(rising), std::log(22.0), 1e-12);
}

TEST(Severity, FormulaAndMonotonicity) {
  SeverityInputs in;
  in.event_count = 9;
  in.account_count = 3;
  in.arr_at_risk_cents = 100'000'00;  // $100k
  in.trend = 0.5;
  const double expected = std::log(10.0) + 1.5 * std::log(4.0) + 0.5 * std::log(101.0) + 0.5;
  EXPECT_NEAR(severity(in), expected, 1e-9);
  SeverityInputs more = in;
  more.account_count = 30;
  EXPECT_GT(severity(more), severity(in));
  SeverityInputs stale = in;
  stale.days_since_last_seen = 14;
  EXPECT_NEAR(severity(stale), expected / 2, 1e-9);
  SeverityInputs falling = in;
  falling.trend = -2;
  EXPECT_LT(severity(falling), severity(in));
}

TEST(Config, Overrides) {
  ClusterConfig c;
  EXPECT_FALSE(apply_config_override(c, "join_threshold", "0.5"));
  EXPECT_DOUBLE_EQ(c.join_threshold, 0.5);
  EXPECT_FALSE(apply_config_override(c, "min_support", "7"));
  EXPECT_EQ(c.min_support, 7u);
  EXPECT_EQ(apply_config_override(c, "nope", "1"), ConfigError::kUnknownKey);
  EXPECT_EQ(apply_config_override(c, "min_support", "x"), ConfigError::kBadValue);
}

}  // namespace
}  // namespace painpoint::aggregator

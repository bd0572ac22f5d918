// load_word_vectors() on both of its formats: PPTV0001 token vectors distilled from the sentence
// encoder (scripts/fetch-token-vectors.sh), whose text vector is the sum of the text's WordPiece
// tokens' vectors, and PPWV0001 GloVe word vectors (scripts/fetch-embeddings.sh).
#include "painpoint/aggregator/word_vectors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/text_analysis.h"

namespace painpoint::aggregator {
namespace {

constexpr std::uint32_t kDims = 3;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void put_f32(std::string& out, float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  put_u32(out, bits);
}

// Token i's vector is scale(i) * codes(i): scale 0.5 + i, codes (i, -i, 2).
float value_of(std::size_t token, std::size_t d) {
  const float scale = 0.5F + static_cast<float>(token);
  const int codes[kDims] = {static_cast<int>(token), -static_cast<int>(token), 2};
  return scale * static_cast<float>(codes[d]);
}

const std::vector<std::string> kVocab = {"[PAD]", "[UNK]", "[CLS]",  "[SEP]", "card",
                                         "pin",   "##s",   "change", "my",    "refund"};

std::string token_file(const std::vector<std::string>& vocab, std::size_t cut = 0) {
  std::string blob;
  for (std::size_t i = 0; i < vocab.size(); ++i) blob += (i ? "\n" : "") + vocab[i];
  std::string out = "PPTV0001";
  put_u32(out, static_cast<std::uint32_t>(vocab.size()));
  put_u32(out, kDims);
  put_u32(out, 256);
  put_u32(out, static_cast<std::uint32_t>(blob.size()));
  out += blob;
  for (std::size_t i = 0; i < vocab.size(); ++i) put_f32(out, 0.5F + static_cast<float>(i));
  for (std::size_t i = 0; i < vocab.size(); ++i) {
    out += static_cast<char>(static_cast<std::int8_t>(i));
    out += static_cast<char>(static_cast<std::int8_t>(-static_cast<int>(i)));
    out += static_cast<char>(2);
  }
  out.resize(out.size() - cut);
  return out;
}

// ctest runs the cases as parallel processes: each writes files of its own.
std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                           name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

LoadedVectors load_tokens() {
  return load_word_vectors(write_file("tokens.bin", token_file(kVocab)));
}

TEST(TokenVectors, LoadsTheTableAndTheTokenizer) {
  const LoadedVectors loaded = load_tokens();
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  EXPECT_TRUE(loaded.vectors->whole_text());
  EXPECT_EQ(loaded.vectors->dims(), kDims);
  EXPECT_EQ(loaded.vectors->size(), kVocab.size());
  EXPECT_EQ(loaded.vectors->find("card"), WordVectors::kNoRow) << "token vectors are read per text";
}

TEST(TokenVectors, TextVectorIsTheSumOfItsWordPieceTokens) {
  const LoadedVectors loaded = load_tokens();
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  // Lower-cased and split as the encoder does: change my pin ##s ; "Zzz" is one [UNK].
  std::vector<double> out(kDims, 0.0);
  ASSERT_TRUE(loaded.vectors->add_text_vector("Change my PINs, Zzz", out));
  const std::size_t tokens[] = {7, 8, 5, 6, 1, 1};  // "," is not in the vocabulary either
  for (std::size_t d = 0; d < kDims; ++d) {
    double want = 0;
    for (std::size_t t : tokens) want += static_cast<double>(value_of(t, d));
    EXPECT_EQ(out[d], want) << "dimension " << d;
  }
  // It adds to what is there.
  std::vector<double> twice = out;
  ASSERT_TRUE(loaded.vectors->add_text_vector("Change my PINs, Zzz", twice));
  for (std::size_t d = 0; d < kDims; ++d) EXPECT_EQ(twice[d], 2 * out[d]);
}

// The analysis of a text (what AggregatorShards computes ahead on another thread) carries its
// token vectors' sum, and an Aggregator given it assigns and summarizes as one that is not.
TEST(TokenVectors, AnalysisAheadCarriesTheTextVector) {
  const LoadedVectors loaded = load_tokens();
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  ClusterConfig config;
  config.encoder = EncoderMode::kStatic;
  config.word_vectors = loaded.vectors.get();
  TextAnalyzer analyzer(config);
  AnalyzedText analysis;
  analyzer.analyze("Change my PINs, Zzz", analysis);
  ASSERT_TRUE(analysis.has_text_vector);
  std::vector<double> want(kDims, 0.0);
  ASSERT_TRUE(loaded.vectors->add_text_vector("Change my PINs, Zzz", want));
  EXPECT_EQ(analysis.text_vector, want);
  analyzer.analyze("", analysis);
  EXPECT_FALSE(analysis.has_text_vector);

  const std::vector<std::string> texts = {"refund my card", "card refund please", "change my pin",
                                          "pins change",    "my card refund",     "change pin now"};
  Aggregator given(config, nullptr);
  Aggregator inline_analysis(config, nullptr);
  for (int i = 0; i < 60; ++i) {
    v1::FeedbackEvent e;
    e.set_event_id("e" + std::to_string(i));
    e.set_product_id("p");
    e.set_text(texts[static_cast<std::size_t>(i * 7) % texts.size()]);
    e.mutable_occurred_at()->set_seconds(1'790'000'000 + i);
    analyzer.analyze(e.text(), analysis);
    EXPECT_EQ(given.add(e, {}, &analysis), inline_analysis.add(e)) << i;
  }
  const Changes a = given.take_changes(Aggregator::StateOutput::kInclude);
  const Changes b = inline_analysis.take_changes(Aggregator::StateOutput::kInclude);
  ASSERT_EQ(a.summaries.size(), b.summaries.size());
  for (std::size_t i = 0; i < a.summaries.size(); ++i) {
    EXPECT_EQ(a.summaries[i].SerializeAsString(), b.summaries[i].SerializeAsString());
  }
  ASSERT_EQ(a.state.size(), b.state.size());
  for (std::size_t i = 0; i < a.state.size(); ++i) {
    EXPECT_EQ(a.state[i].key, b.state[i].key);
    EXPECT_EQ(a.state[i].value, b.state[i].value) << a.state[i].key;
  }
}

constexpr std::uint32_t kWide = 37;

std::int8_t wide_code(std::size_t token, std::size_t d) {
  return static_cast<std::int8_t>(static_cast<int>((token * 97 + d * 31) % 256) - 128);
}

float wide_scale(std::size_t token) { return 0.013F * static_cast<float>(token + 1) / 3.0F; }

// kVocab's tokens with rows of kWide codes, every token's row different.
std::string wide_token_file(std::uint32_t max_tokens) {
  std::string blob;
  for (std::size_t i = 0; i < kVocab.size(); ++i) blob += (i ? "\n" : "") + kVocab[i];
  std::string file = "PPTV0001";
  put_u32(file, static_cast<std::uint32_t>(kVocab.size()));
  put_u32(file, kWide);
  put_u32(file, max_tokens);
  put_u32(file, static_cast<std::uint32_t>(blob.size()));
  file += blob;
  for (std::size_t i = 0; i < kVocab.size(); ++i) put_f32(file, wide_scale(i));
  for (std::size_t i = 0; i < kVocab.size(); ++i) {
    for (std::size_t d = 0; d < kWide; ++d) file += static_cast<char>(wide_code(i, d));
  }
  return file;
}

// Rows of 37 codes: blocks summed with SIMD and a scalar tail, every int8 value among them, each
// element exactly as a dequantized float table would give it.
TEST(TokenVectors, WideRowsSumTheDequantizedValuesExactly) {
  const LoadedVectors loaded = load_word_vectors(write_file("wide.bin", wide_token_file(256)));
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  std::vector<double> out(kWide, 0.25);
  ASSERT_TRUE(loaded.vectors->add_text_vector("refund my card, change my PINs", out));
  const std::size_t tokens[] = {9, 8, 4, 1, 7, 8, 5, 6};
  for (std::size_t d = 0; d < kWide; ++d) {
    double want = 0.25;
    for (std::size_t t : tokens) {
      want += static_cast<double>(wide_scale(t) * static_cast<float>(wide_code(t, d)));
    }
    EXPECT_EQ(out[d], want) << "dimension " << d;
  }
}

// A thread's cache of words' token ids changes no bit of a text vector: ASCII whitespace of every
// kind, control characters and non-ASCII spaces inside words, accents, CJK, emoji, invalid UTF-8,
// words too long to cache or to tokenize, the token limit, hits, and a cache that filled up.
TEST(TokenVectors, CachedWordsGiveTheSameVectors) {
  for (const std::uint32_t max_tokens : {256U, 7U}) {
    const LoadedVectors loaded = load_word_vectors(
        write_file("cache-" + std::to_string(max_tokens) + ".bin", wide_token_file(max_tokens)));
    ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
    const std::vector<std::string> texts = {
        "refund my card, change my PINs",
        "  refund\tmy\ncard\r\nPINs  ",
        "card\vs pin\fs",
        "card\xC2\xA0"
        "pins my\xE3\x80\x80"
        "card",
        "\xC3\x87"
        "ard CARD c\xC3\xA1"
        "rd",
        "\xE2 card",
        "\xE2\x82 pin pin\xE2 my\xF0\x9F",
        "\xE3\x82\xAB\xE3\x83\xBC\xE3\x83\x89 card \xE5\x8D\xA1 pin",
        "\xF0\x9F\x98\x80 card \xF0\x9F\x98\x80",
        std::string(70, 'a') + " card " + std::string(150, 'b') + " pin",
        "cardcardcardcardcardcardcardcardcardcardcardcardcardcardcardcardcard my",
        "refund,my;card.change!pins?",
        "refund my card change my pins refund my card change my pins",
        "pins pins pins pins pins pins pins pins",
    };
    TokenIdCache cache;
    for (int round = 0; round < 2; ++round) {
      for (const std::string& text : texts) {
        std::vector<double> plain(kWide, 0.5), cached(kWide, 0.5);
        const bool has = loaded.vectors->add_text_vector(text, plain);
        EXPECT_EQ(loaded.vectors->add_text_vector(text, cached, &cache), has) << text;
        EXPECT_EQ(std::memcmp(plain.data(), cached.data(), kWide * sizeof(double)), 0)
            << "max_tokens " << max_tokens << ", round " << round << ": " << text;
      }
    }
    // More distinct words than the cache keeps: it empties, and what it gives stays right.
    std::vector<double> sink(kWide, 0.0);
    for (int i = 0; i < 110'000; ++i) {
      (void)loaded.vectors->add_text_vector("w" + std::to_string(i) + "s", sink, &cache);
    }
    for (const std::string& text : texts) {
      std::vector<double> plain(kWide, 0.5), cached(kWide, 0.5);
      (void)loaded.vectors->add_text_vector(text, plain);
      (void)loaded.vectors->add_text_vector(text, cached, &cache);
      EXPECT_EQ(std::memcmp(plain.data(), cached.data(), kWide * sizeof(double)), 0) << text;
    }
  }
}

TEST(TokenVectors, NoTokenOrWrongSizeLeavesTheOutputAlone) {
  const LoadedVectors loaded = load_tokens();
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  std::vector<double> out(kDims, 1.5);
  EXPECT_FALSE(loaded.vectors->add_text_vector("", out));
  EXPECT_FALSE(loaded.vectors->add_text_vector(" \t\n", out));
  EXPECT_EQ(out, std::vector<double>(kDims, 1.5));
  std::vector<double> wrong(kDims + 1, 0.0);
  EXPECT_FALSE(loaded.vectors->add_text_vector("card", wrong));
  EXPECT_EQ(wrong, std::vector<double>(kDims + 1, 0.0));
}

TEST(TokenVectors, SameTextSameBytesAcrossLoads) {
  const LoadedVectors a = load_tokens();
  const LoadedVectors b = load_tokens();
  ASSERT_NE(a.vectors, nullptr);
  ASSERT_NE(b.vectors, nullptr);
  for (const char* text : {"refund my card", "card refund", "PIN change", "my cards"}) {
    std::vector<double> x(kDims, 0.0), y(kDims, 0.0), z(kDims, 0.0);
    ASSERT_TRUE(a.vectors->add_text_vector(text, x));
    ASSERT_TRUE(a.vectors->add_text_vector(text, y));
    ASSERT_TRUE(b.vectors->add_text_vector(text, z));
    EXPECT_EQ(std::memcmp(x.data(), y.data(), kDims * sizeof(double)), 0) << text;
    EXPECT_EQ(std::memcmp(x.data(), z.data(), kDims * sizeof(double)), 0) << text;
  }
}

TEST(TokenVectors, RefusesBadFiles) {
  const LoadedVectors missing = load_word_vectors(::testing::TempDir() + "/no-such-file.bin");
  EXPECT_EQ(missing.vectors, nullptr);
  EXPECT_EQ(missing.error, VectorsError::kCannotOpen);

  const LoadedVectors truncated = load_word_vectors(write_file("cut.bin", token_file(kVocab, 1)));
  EXPECT_EQ(truncated.vectors, nullptr);
  EXPECT_EQ(truncated.error, VectorsError::kBadFormat);

  std::vector<std::string> no_cls = kVocab;
  no_cls[2] = "[cls]";
  const LoadedVectors bad_vocab = load_word_vectors(write_file("nocls.bin", token_file(no_cls)));
  EXPECT_EQ(bad_vocab.vectors, nullptr);
  EXPECT_EQ(bad_vocab.error, VectorsError::kBadFormat);

  const LoadedVectors garbage = load_word_vectors(write_file("garbage.bin", "PPXX0001garbage!"));
  EXPECT_EQ(garbage.vectors, nullptr);
  EXPECT_EQ(garbage.error, VectorsError::kBadFormat);
}

// A PPWV0001 file's header and vocabulary; its scales and codes follow.
std::string glove_header(std::uint32_t dims, std::initializer_list<std::string> words) {
  std::string out = "PPWV0001";
  put_u32(out, static_cast<std::uint32_t>(words.size()));
  put_u32(out, dims);
  for (const std::string& w : words) {
    out += static_cast<char>(w.size());
    out += w;
  }
  return out;
}

TEST(GloveVectors, StillLoadAndAreReadPerWord) {
  std::string out = glove_header(kDims, {"card", "pin"});
  put_f32(out, 0.5F);
  put_f32(out, 2.0F);
  for (const int c : {1, 2, 3, -1, 0, 4}) out += static_cast<char>(static_cast<std::int8_t>(c));
  const LoadedVectors loaded = load_word_vectors(write_file("glove.bin", out));
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  EXPECT_FALSE(loaded.vectors->whole_text());
  EXPECT_EQ(loaded.vectors->size(), 2U);
  EXPECT_EQ(loaded.vectors->find("atm"), WordVectors::kNoRow);
  const std::uint32_t pin = loaded.vectors->find("pin");
  ASSERT_NE(pin, WordVectors::kNoRow);
  std::vector<double> acc(kDims, 0.0);
  loaded.vectors->add_scaled(pin, 0.5, acc);
  EXPECT_EQ(acc, (std::vector<double>{-1.0, 0.0, 4.0}));
  loaded.vectors->add_scaled(loaded.vectors->find("card"), 2.0, acc);
  EXPECT_EQ(acc, (std::vector<double>{0.0, 2.0, 7.0}));
  EXPECT_FALSE(loaded.vectors->add_text_vector("card", acc));
}

// GloVe rows of 37 codes, weighted: blocks summed with SIMD and a scalar tail, each element
// exactly weight * (scale * code) with the product rounded to float first.
TEST(GloveVectors, WideRowsAddTheWeightedDequantizedValuesExactly) {
  std::string file = glove_header(kWide, {"card", "pin"});
  for (std::size_t i = 0; i < 2; ++i) put_f32(file, wide_scale(i + 3));
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t d = 0; d < kWide; ++d) file += static_cast<char>(wide_code(i + 3, d));
  }
  const LoadedVectors loaded = load_word_vectors(write_file("glove-wide.bin", file));
  ASSERT_NE(loaded.vectors, nullptr) << loaded.detail;
  std::vector<double> acc(kWide, 0.125);
  loaded.vectors->add_scaled(loaded.vectors->find("pin"), 0.3, acc);
  loaded.vectors->add_scaled(loaded.vectors->find("card"), 1.7, acc);
  for (std::size_t d = 0; d < kWide; ++d) {
    double want = 0.125;
    want += 0.3 * static_cast<double>(wide_scale(4) * static_cast<float>(wide_code(4, d)));
    want += 1.7 * static_cast<double>(wide_scale(3) * static_cast<float>(wide_code(3, d)));
    EXPECT_EQ(acc[d], want) << "dimension " << d;
  }
}

// Two groups of texts that share most of their words but whose word vectors point apart: the
// sparse-weighted similarity reaches merge_threshold, the dense part says they are two groups.
// static_merge_ratio keeps them apart; without it maintenance merges them.
std::size_t active_after_alternating_groups(double static_merge_ratio) {
  std::string out = glove_header(kDims, {"alpha", "beta"});
  put_f32(out, 0.01F);
  put_f32(out, 0.01F);
  for (const int c : {100, 0, 0, 0, 100, 0}) out += static_cast<char>(static_cast<std::int8_t>(c));
  const LoadedVectors loaded = load_word_vectors(write_file("apart.bin", out));
  EXPECT_NE(loaded.vectors, nullptr) << loaded.detail;
  if (loaded.vectors == nullptr) return 0;
  ClusterConfig c;
  c.encoder = EncoderMode::kStatic;
  c.word_vectors = loaded.vectors.get();
  c.sparse_weight = 0.95;
  c.join_threshold = 0.9;
  c.size_bonus = 0;
  c.merge_threshold = 0.5;
  c.maintenance_interval = 8;
  c.min_support = 3;
  c.static_merge_ratio = static_merge_ratio;
  Aggregator a(c, nullptr);
  for (int i = 0; i < 8; ++i) {
    v1::FeedbackEvent e;
    e.set_event_id("e" + std::to_string(i));
    e.set_product_id("p");
    e.set_text(std::string("card payment fee charged ") + (i % 2 == 0 ? "alpha" : "beta"));
    e.mutable_occurred_at()->set_seconds(1'790'000'000 + i);
    a.add(e);
  }
  return a.active_pain_points();
}

TEST(StaticMergeRatio, ConfigKeyOffByDefault) {
  ClusterConfig cfg;
  EXPECT_EQ(cfg.static_merge_ratio, 0.0);
  EXPECT_FALSE(apply_config_override(cfg, "static_merge_ratio", "0.8"));
  EXPECT_EQ(config_value(cfg, "static_merge_ratio"), "0.8");
}

TEST(StaticMergeRatio, KeepsGroupsWhoseVectorsPointApart) {
  EXPECT_EQ(active_after_alternating_groups(0), 1U);
  EXPECT_EQ(active_after_alternating_groups(0.5), 2U);
}

}  // namespace
}  // namespace painpoint::aggregator

#include "painpoint/aggregator/encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

namespace painpoint::aggregator {
namespace {

constexpr std::size_t kDims = SentenceEncoder::kDims;

// Under the sanitizers the encoder is ~8x slower; the checks of the non-default kernels then take
// every 8th reference text (the default kernel still takes them all).
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kOtherKernelStride = 8;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kOtherKernelStride = 8;
#else
constexpr std::size_t kOtherKernelStride = 1;
#endif
#else
constexpr std::size_t kOtherKernelStride = 1;
#endif

std::string encoder_path() {
  const char* env = std::getenv("PAINPOINT_ENCODER");
  return env != nullptr && *env != '\0' ? std::string(env) : default_encoder_path();
}

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned bits = 0;
  int count = 0;
  for (const char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

float half_to_float(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  float v = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -24)
                          : std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
  return (h & 0x8000) != 0 ? -v : v;
}

struct Reference {
  std::vector<std::string> texts;
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<float> vectors;  // texts.size() * kDims
};

// Reads the files written by data/make_encoder_reference.py (its JSON lines start with "b64"
// and "ids", which is all this reads).
Reference read_reference() {
  const std::string dir = PAINPOINT_ENCODER_REFERENCE_DIR;
  Reference ref;
  std::ifstream jsonl(dir + "/encoder_reference.jsonl");
  std::string line;
  while (std::getline(jsonl, line)) {
    const std::size_t b = line.find("\"b64\": \"") + 8;
    ref.texts.push_back(base64_decode(line.substr(b, line.find('"', b) - b)));
    const std::size_t i = line.find("\"ids\": [") + 8;
    std::istringstream ids(line.substr(i, line.find(']', i) - i));
    std::vector<std::int32_t> row;
    std::string id;
    while (std::getline(ids, id, ',')) row.push_back(std::stoi(id));
    ref.ids.push_back(std::move(row));
  }
  std::ifstream f16(dir + "/encoder_reference.f16", std::ios::binary);
  std::vector<std::uint16_t> halves(ref.texts.size() * kDims);
  f16.read(reinterpret_cast<char*>(halves.data()), static_cast<std::streamsize>(halves.size() * 2));
  if (!f16) ref.texts.clear();  // the size check in the tests reports it
  ref.vectors.resize(halves.size());
  std::transform(halves.begin(), halves.end(), ref.vectors.begin(), half_to_float);
  return ref;
}

class EncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    loaded_ = new LoadedEncoder(load_sentence_encoder(encoder_path()));
    reference_ = new Reference(read_reference());
  }
  static void TearDownTestSuite() {
    delete loaded_;
    delete reference_;
  }
  void SetUp() override {
    // Failing, not skipping: CI must have the weights (scripts/test.sh fetches them).
    ASSERT_NE(loaded_->encoder, nullptr)
        << "cannot load the sentence encoder: " << loaded_->detail
        << "\nRun scripts/fetch-encoder.sh (or set PAINPOINT_ENCODER to the converted file).";
    ASSERT_GE(reference_->texts.size(), 1000U) << "reference data missing or truncated";
  }
  static const SentenceEncoder& encoder() { return *loaded_->encoder; }
  static const Reference& ref() { return *reference_; }
  static std::vector<std::string_view> views(const std::vector<std::string>& texts) {
    return {texts.begin(), texts.end()};
  }

  static LoadedEncoder* loaded_;
  static Reference* reference_;
};

LoadedEncoder* EncoderTest::loaded_ = nullptr;
Reference* EncoderTest::reference_ = nullptr;

TEST_F(EncoderTest, TokenIdsEqualTheReference) {
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < ref().texts.size(); ++i) {
    const std::vector<std::int32_t> ids = encoder().tokenize(ref().texts[i]);
    if (ids != ref().ids[i]) {
      ++mismatches;
      ADD_FAILURE() << "text " << i << " (" << ref().texts[i].substr(0, 80) << "): " << ids.size()
                    << " ids, reference " << ref().ids[i].size();
    }
  }
  EXPECT_EQ(mismatches, 0U);
}

// Cosine similarity to the reference vector of every `stride`-th text, encoding with `encoder`.
std::vector<double> cosines(const SentenceEncoder& encoder, const Reference& ref,
                            std::size_t stride = 1) {
  std::vector<std::string_view> texts;
  for (std::size_t i = 0; i < ref.texts.size(); i += stride) texts.push_back(ref.texts[i]);
  std::vector<float> out(texts.size() * kDims);
  EXPECT_TRUE(encoder.encode(texts, out, 2));
  std::vector<double> result;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const float* want = ref.vectors.data() + i * stride * kDims;
    double dot = 0, a = 0, b = 0;
    for (std::size_t d = 0; d < kDims; ++d) {
      dot += double{out[i * kDims + d]} * want[d];
      a += double{out[i * kDims + d]} * out[i * kDims + d];
      b += double{want[d]} * want[d];
    }
    result.push_back(dot / std::sqrt(a * b));
    EXPECT_NEAR(a, 1.0, 1e-5) << "text " << i << " is not unit length";
  }
  return result;
}

TEST_F(EncoderTest, VectorsMatchTheReference) {
  const std::vector<double> c = cosines(encoder(), ref());
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_GE(c[i], 0.999) << "text " << i << ": " << ref().texts[i].substr(0, 80);
  }
  const double mean = std::accumulate(c.begin(), c.end(), 0.0) / static_cast<double>(c.size());
  std::cout << std::setprecision(9) << "kernel " << encoder().kernel() << ": " << c.size()
            << " texts, cosine min " << *std::min_element(c.begin(), c.end()) << ", mean " << mean
            << "\n";
}

// A text's vector is the same bits alone, in batches of 7 or 64, at another position, with 1 or 2
// threads.
void expect_deterministic(const SentenceEncoder& encoder, const Reference& ref) {
  SCOPED_TRACE(std::string(encoder.kernel()));
  // A mix of short, long (truncated) and odd texts.
  std::vector<std::string> texts;
  for (std::size_t i = 0; texts.size() < 64; i += 17) {
    texts.push_back(ref.texts[(i * 7919) % ref.texts.size()]);
  }
  texts[5] = std::string(2000, 'w');
  texts[6] = "";
  const std::vector<std::string_view> all(texts.begin(), texts.end());
  std::vector<float> single(all.size() * kDims);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_TRUE(encoder.encode({&all[i], 1}, {single.data() + i * kDims, kDims}));
  }
  auto expect_same = [&](std::span<const float> got, std::size_t first, const char* what) {
    for (std::size_t i = 0; i < got.size() / kDims; ++i) {
      EXPECT_EQ(std::memcmp(got.data() + i * kDims, single.data() + (first + i) * kDims,
                            kDims * sizeof(float)),
                0)
          << what << ": text " << first + i;
    }
  };
  for (const unsigned threads : {1U, 2U}) {
    for (const std::size_t batch : {std::size_t{7}, std::size_t{64}}) {
      for (std::size_t b = 0; b < all.size(); b += batch) {
        const std::size_t n = std::min(batch, all.size() - b);
        std::vector<float> out(n * kDims);
        ASSERT_TRUE(encoder.encode({all.data() + b, n}, out, threads));
        expect_same(out, b, threads == 1 ? "1 thread" : "2 threads");
      }
    }
  }
  // Other positions: the batch reversed.
  std::vector<std::string_view> reversed(all.rbegin(), all.rend());
  std::vector<float> out(all.size() * kDims);
  ASSERT_TRUE(encoder.encode(reversed, out, 2));
  for (std::size_t i = 0; i < all.size(); ++i) {
    expect_same({out.data() + i * kDims, kDims}, all.size() - 1 - i, "reversed");
  }
}

// Every kernel this CPU can run gives the reference's vectors, deterministically (the tests
// above and below cover the best one).
TEST_F(EncoderTest, OtherKernelsMatchTheReference) {
  for (const char* kernel : {"sse2", "avx2", "avx512"}) {
    ASSERT_EQ(setenv("PAINPOINT_ENCODER_KERNEL", kernel, 1), 0);
    const LoadedEncoder other = load_sentence_encoder(encoder_path());
    ASSERT_EQ(unsetenv("PAINPOINT_ENCODER_KERNEL"), 0);
    ASSERT_NE(other.encoder, nullptr) << other.detail;
    if (other.encoder->kernel() != kernel) continue;  // the CPU lacks it
    expect_deterministic(*other.encoder, ref());
    const std::vector<double> c = cosines(*other.encoder, ref(), kOtherKernelStride);
    const double min = *std::min_element(c.begin(), c.end());
    EXPECT_GE(min, 0.999) << kernel;
    std::cout << std::setprecision(9) << "kernel " << kernel << ": cosine min " << min << "\n";
  }
}

TEST_F(EncoderTest, SameBitsWhateverBatchPositionAndThreads) {
  expect_deterministic(encoder(), ref());
}

TEST_F(EncoderTest, EncodeRejectsAWrongOutputSize) {
  const std::vector<std::string_view> texts{"a", "b"};
  std::vector<float> out(kDims);
  EXPECT_FALSE(encoder().encode(texts, out));
  std::vector<float> none;
  EXPECT_TRUE(encoder().encode({}, none));
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_prefix(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(n));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

TEST_F(EncoderTest, LoaderReportsErrors) {
  const std::string dir = ::testing::TempDir();
  const LoadedEncoder missing = load_sentence_encoder(dir + "/no-such-encoder.bin");
  EXPECT_EQ(missing.encoder, nullptr);
  EXPECT_EQ(missing.error, EncoderError::kCannotOpen);
  EXPECT_NE(missing.detail.find("no-such-encoder.bin"), std::string::npos) << missing.detail;

  const std::string header = read_prefix(encoder_path(), 1 << 20);
  ASSERT_EQ(header.size(), 1U << 20);
  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  std::string bad_magic = header;
  bad_magic[3] = 'X';
  std::string bad_hidden = header;
  const std::uint32_t hidden = 512;
  std::memcpy(bad_hidden.data() + 16, &hidden, 4);  // after magic, version and vocab size
  std::string bad_version = header;
  const std::uint32_t version = 9;
  std::memcpy(bad_version.data() + 8, &version, 4);
  const std::vector<Case> cases{
      {"empty", "", "PPENC001"},
      {"magic", bad_magic, "PPENC001"},
      {"hidden", bad_hidden, "unsupported shape"},
      {"version", bad_version, "version"},
      {"truncated", header, "bad size"},
  };
  for (const Case& c : cases) {
    const std::string path = dir + "/encoder-" + c.name + ".bin";
    write_file(path, c.bytes);
    const LoadedEncoder loaded = load_sentence_encoder(path);
    EXPECT_EQ(loaded.encoder, nullptr) << c.name;
    EXPECT_EQ(loaded.error, c.bytes.empty() ? EncoderError::kCannotOpen : EncoderError::kBadFormat)
        << c.name;
    EXPECT_NE(loaded.detail.find(c.bytes.empty() ? "cannot read" : c.message), std::string::npos)
        << c.name << ": " << loaded.detail;
    std::remove(path.c_str());
  }
}

TEST(EncoderPath, FollowsTheDataHome) {
  const char* old = std::getenv("PAINPOINT_DATA_HOME");
  const std::string saved = old != nullptr ? old : "";
  ASSERT_EQ(setenv("PAINPOINT_DATA_HOME", "/data/pp", 1), 0);
  EXPECT_EQ(default_encoder_path(), "/data/pp/minilm-l6-v2.bin");
  if (old != nullptr) {
    ASSERT_EQ(setenv("PAINPOINT_DATA_HOME", saved.c_str(), 1), 0);
  } else {
    ASSERT_EQ(unsetenv("PAINPOINT_DATA_HOME"), 0);
  }
}

}  // namespace
}  // namespace painpoint::aggregator

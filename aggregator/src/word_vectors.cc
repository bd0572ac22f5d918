#include "painpoint/aggregator/word_vectors.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "encoder_tokenizer.h"
#include "painpoint/aggregator/text.h"

namespace painpoint::aggregator {

WordVectors::WordVectors(std::vector<std::string> words, std::uint32_t dims,
                         std::vector<float> scales, std::vector<std::int8_t> codes)
    : dims_(dims), size_(words.size()), scales_(std::move(scales)), codes_(std::move(codes)) {
  index_.reserve(words.size());
  for (std::size_t i = 0; i < words.size(); ++i) {
    index_.emplace(fnv1a64(words[i]), static_cast<std::uint32_t>(i));  // first (most frequent) wins
  }
}

WordVectors::WordVectors(std::unique_ptr<encoder::WordPiece> tokenizer, std::uint32_t dims,
                         std::vector<float> scales, std::vector<std::int8_t> codes)
    : dims_(dims),
      size_(scales.size()),
      scales_(std::move(scales)),
      codes_(std::move(codes)),
      tokenizer_(std::move(tokenizer)) {}

WordVectors::~WordVectors() = default;

namespace {

// a[k] += weight * (scale * codes[k]) for k < n (kWeighted), else a[k] += scale * codes[k]; the
// product scale * code is rounded to float first, as a dequantized table would hold it. Sixteen
// codes at a time with SSE2 (the plain loop stayed scalar and was the static token vectors'
// largest cost); each element gets the same IEEE operations (an exact int8 -> float conversion,
// a float multiplication, an exact widening, a double multiplication by the weight, a double
// addition), so the sums are bit-identical to the plain loop's.
template <bool kWeighted>
[[gnu::noinline]] void accumulate(double* __restrict a, std::size_t n, float scale,
                                  const std::int8_t* __restrict codes, double weight) {
  std::size_t k = 0;
#ifdef __SSE2__
  const __m128 s = _mm_set1_ps(scale);
  const __m128d w = _mm_set1_pd(weight);
  auto add2 = [&](__m128d products, std::size_t at) {
    if constexpr (kWeighted) products = _mm_mul_pd(products, w);
    _mm_storeu_pd(a + at, _mm_add_pd(_mm_loadu_pd(a + at), products));
  };
  // The low four int16 lanes of `halves` widened to int32 (each moved to the top, shifted back).
  auto add4 = [&](__m128i halves, std::size_t at) {
    const __m128i i32 = _mm_srai_epi32(_mm_unpacklo_epi16(_mm_setzero_si128(), halves), 16);
    const __m128 f = _mm_mul_ps(_mm_cvtepi32_ps(i32), s);
    add2(_mm_cvtps_pd(f), at);
    add2(_mm_cvtps_pd(_mm_movehl_ps(f, f)), at + 2);
  };
  for (; k + 16 <= n; k += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + k));
    const __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(_mm_setzero_si128(), v), 8);
    const __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(_mm_setzero_si128(), v), 8);
    add4(lo, k);
    add4(_mm_unpackhi_epi64(lo, lo), k + 4);
    add4(hi, k + 8);
    add4(_mm_unpackhi_epi64(hi, hi), k + 12);
  }
#endif
  for (; k < n; ++k) {
    const auto product = static_cast<double>(scale * static_cast<float>(codes[k]));
    if constexpr (kWeighted) {
      a[k] += weight * product;
    } else {
      a[k] += product;
    }
  }
}

}  // namespace

bool WordVectors::add_text_vector(std::string_view text, std::span<double> out) const {
  if (!tokenizer_ || out.size() != dims_) return false;
  const std::vector<std::int32_t> ids = tokenizer_->tokenize(text);
  if (ids.size() <= 2) return false;  // [CLS] [SEP] only
  for (std::size_t i = 1; i + 1 < ids.size(); ++i) {
    const auto id = static_cast<std::size_t>(ids[i]);
    accumulate<false>(out.data(), dims_, scales_[id], codes_.data() + id * dims_, 1.0);
  }
  return true;
}

std::uint32_t WordVectors::find(std::string_view word) const {
  const auto it = index_.find(fnv1a64(word));
  return it == index_.end() ? kNoRow : it->second;
}

void WordVectors::add_scaled(std::uint32_t row, double weight, std::span<double> out) const {
  const auto r = static_cast<std::size_t>(row);
  if (r >= size_ || out.size() != dims_) return;
  accumulate<true>(out.data(), dims_, scales_[r], codes_.data() + r * dims_, weight);
}

namespace {

template <typename T>
bool read_at(const std::string& buf, std::size_t& off, T* out) {
  if (off + sizeof(T) > buf.size()) return false;
  std::memcpy(out, buf.data() + off, sizeof(T));
  off += sizeof(T);
  return true;
}

LoadedVectors fail(VectorsError e, std::string detail) {
  return LoadedVectors{nullptr, e, std::move(detail)};
}

// "PPTV0001", u32 vocab_size, u32 dims, u32 max_tokens, u32 vocab_bytes, the WordPiece
// vocabulary (tokens joined by '\n', in id order), vocab_size f32 scales, vocab_size x dims int8.
LoadedVectors load_token_vectors(const std::string& buf, const std::string& path) {
  std::size_t off = 8;
  std::uint32_t n = 0, dims = 0, max_tokens = 0, vocab_bytes = 0;
  if (!read_at(buf, off, &n) || !read_at(buf, off, &dims) || !read_at(buf, off, &max_tokens) ||
      !read_at(buf, off, &vocab_bytes) || dims == 0 || dims > 4096 || max_tokens < 3 ||
      vocab_bytes > buf.size() - off) {
    return fail(VectorsError::kBadFormat, path + ": bad header");
  }
  std::vector<std::string_view> vocab;
  const std::string_view blob(buf.data() + off, vocab_bytes);
  for (std::size_t pos = 0; pos <= blob.size();) {
    const std::size_t nl = std::min(blob.find('\n', pos), blob.size());
    vocab.push_back(blob.substr(pos, nl - pos));
    pos = nl + 1;
  }
  off += vocab_bytes;
  if (vocab.size() != n) return fail(VectorsError::kBadFormat, path + ": bad vocabulary");
  if (off + static_cast<std::size_t>(n) * (4 + dims) != buf.size()) {
    return fail(VectorsError::kBadFormat, path + ": bad size");
  }
  auto tokenizer = std::make_unique<encoder::WordPiece>(vocab, max_tokens);
  if (!tokenizer->valid()) {
    return fail(VectorsError::kBadFormat, path + ": vocabulary lacks [CLS], [SEP] or [UNK]");
  }
  std::vector<float> scales(n);
  std::memcpy(scales.data(), buf.data() + off, 4 * static_cast<std::size_t>(n));
  std::vector<std::int8_t> codes(static_cast<std::size_t>(n) * dims);
  std::memcpy(codes.data(), buf.data() + off + 4 * static_cast<std::size_t>(n), codes.size());
  return LoadedVectors{std::make_unique<WordVectors>(std::move(tokenizer), dims,
                                                     std::move(scales), std::move(codes)),
                       std::nullopt, {}};
}

}  // namespace

LoadedVectors load_word_vectors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return fail(VectorsError::kCannotOpen, "cannot open " + path);
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size < 0) return fail(VectorsError::kCannotOpen, "cannot read " + path);
  std::string buf(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(buf.data(), size)) return fail(VectorsError::kCannotOpen, "cannot read " + path);
  if (buf.size() >= 8 && buf.compare(0, 8, "PPTV0001") == 0) return load_token_vectors(buf, path);
  if (buf.size() < 16 || buf.compare(0, 8, "PPWV0001") != 0) {
    return fail(VectorsError::kBadFormat, path + ": neither a PPTV0001 nor a PPWV0001 file");
  }
  std::size_t off = 8;
  std::uint32_t n = 0;
  std::uint32_t dims = 0;
  if (!read_at(buf, off, &n) || !read_at(buf, off, &dims) || dims == 0 || dims > 4096) {
    return fail(VectorsError::kBadFormat, path + ": bad header");
  }
  std::vector<std::string> words;
  words.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint8_t len = 0;
    if (!read_at(buf, off, &len) || off + len > buf.size()) {
      return fail(VectorsError::kBadFormat, path + ": truncated vocabulary");
    }
    words.emplace_back(buf.data() + off, len);
    off += len;
  }
  const std::size_t need = static_cast<std::size_t>(n) * 4 + static_cast<std::size_t>(n) * dims;
  if (off + need != buf.size()) return fail(VectorsError::kBadFormat, path + ": bad size");
  std::vector<float> scales(n);
  std::memcpy(scales.data(), buf.data() + off, 4 * static_cast<std::size_t>(n));
  std::vector<std::int8_t> codes(static_cast<std::size_t>(n) * dims);
  std::memcpy(codes.data(), buf.data() + off + 4 * static_cast<std::size_t>(n), codes.size());
  return LoadedVectors{std::make_unique<WordVectors>(std::move(words), dims, std::move(scales),
                                                     std::move(codes)),
                       std::nullopt, {}};
}

std::string default_word_vectors_path() {
  // One copy per user, shared by every checkout and by CI runs on the same machine.
  auto set = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  if (const char* data_home = set("PAINPOINT_DATA_HOME")) {
    return std::string(data_home) + "/glove-100d.bin";
  }
  if (const char* cache = set("XDG_CACHE_HOME"))
    return std::string(cache) + "/painpoint/glove-100d.bin";
  if (const char* home = set("HOME")) return std::string(home) + "/.cache/painpoint/glove-100d.bin";
  return "./.cache/painpoint/glove-100d.bin";
}

}  // namespace painpoint::aggregator

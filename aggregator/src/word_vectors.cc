#include "painpoint/aggregator/word_vectors.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "encoder_tokenizer.h"
#include "flat_map.h"
#include "painpoint/aggregator/text.h"
#include "prefetch.h"

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

// The elements [k, n) one at a time; inlined, so that it is compiled for its caller's target.
template <bool kWeighted>
[[gnu::always_inline]] inline void accumulate_scalar(double* __restrict a, std::size_t k,
                                                     std::size_t n, float scale,
                                                     const std::int8_t* __restrict codes,
                                                     double weight) {
  for (; k < n; ++k) {
    const auto product = static_cast<double>(scale * static_cast<float>(codes[k]));
    if constexpr (kWeighted) {
      a[k] += weight * product;
    } else {
      a[k] += product;
    }
  }
}

// a[k] += weight * (scale * codes[k]) for k < n (kWeighted), else a[k] += scale * codes[k]; the
// product scale * code is rounded to float first, as a dequantized table would hold it. Sixteen
// codes at a time with SSE2 (the plain loop stayed scalar and was the static token vectors'
// largest cost); each element gets the same IEEE operations (an exact int8 -> float conversion,
// a float multiplication, an exact widening, a double multiplication by the weight, a double
// addition), so the sums are bit-identical to the plain loop's.
template <bool kWeighted>
[[gnu::noinline]] void accumulate_sse2(double* __restrict a, std::size_t n, float scale,
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
  accumulate_scalar<kWeighted>(a, k, n, scale, codes, weight);
}

#if defined(__x86_64__)
// The same operations eight codes at a time with AVX2 (no FMA: a fused multiply-add would round
// differently), so the sums are bit-identical to accumulate_sse2's.
template <bool kWeighted>
[[gnu::target("avx2"), gnu::noinline]] void accumulate_avx2(double* __restrict a, std::size_t n,
                                                            float scale,
                                                            const std::int8_t* __restrict codes,
                                                            double weight) {
  std::size_t k = 0;
  const __m256 s = _mm256_set1_ps(scale);
  const __m256d w = _mm256_set1_pd(weight);
  for (; k + 8 <= n; k += 8) {
    const __m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k));
    const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c8)), s);
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
    if constexpr (kWeighted) {
      lo = _mm256_mul_pd(lo, w);
      hi = _mm256_mul_pd(hi, w);
    }
    _mm256_storeu_pd(a + k, _mm256_add_pd(_mm256_loadu_pd(a + k), lo));
    _mm256_storeu_pd(a + k + 4, _mm256_add_pd(_mm256_loadu_pd(a + k + 4), hi));
  }
  if (k + 4 <= n) {
    std::int32_t four = 0;
    std::memcpy(&four, codes + k, 4);
    const __m128 f = _mm_mul_ps(_mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(four))),
                                _mm256_castps256_ps128(s));
    __m256d d = _mm256_cvtps_pd(f);
    if constexpr (kWeighted) d = _mm256_mul_pd(d, w);
    _mm256_storeu_pd(a + k, _mm256_add_pd(_mm256_loadu_pd(a + k), d));
    k += 4;
  }
  // The tail here, not in accumulate_sse2: legacy SSE instructions while the upper halves of the
  // vector registers are in use (before this function's vzeroupper) run slower.
  accumulate_scalar<kWeighted>(a, k, n, scale, codes, weight);
}
#endif

template <bool kWeighted>
void accumulate(double* a, std::size_t n, float scale, const std::int8_t* codes, double weight) {
#if defined(__x86_64__)
  static const bool avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  if (avx2) {
    accumulate_avx2<kWeighted>(a, n, scale, codes, weight);
    return;
  }
#endif
  accumulate_sse2<kWeighted>(a, n, scale, codes, weight);
}

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

struct TokenIdCache::Impl {
  // A word's ids: pool[first, first + count), its bytes bytes[at, at + size).
  struct Entry {
    std::uint32_t at = 0;
    std::uint32_t first = 0;
    std::uint16_t size = 0;
    std::uint16_t count = 0;
  };
  // Longer words are tokenized every time (rare, and they would crowd the cache out).
  static constexpr std::size_t kMaxWordBytes = 64;
  static constexpr std::size_t kMaxWords = 100'000;
  static constexpr std::size_t kMaxIds = 1u << 20;

  // Appends the ids of `text`'s words to `ids` until it holds at least `limit`.
  void append(const encoder::WordPiece& tokenizer, std::string_view text, std::size_t limit,
              std::vector<std::int32_t>& ids);
  const Entry* entry_of(const encoder::WordPiece& tokenizer, std::string_view word);

  FlatMap<std::uint64_t, Entry> words;  // keyed by a 64-bit hash of the word's bytes
  std::string bytes;
  std::vector<std::int32_t> pool;
  std::vector<std::int32_t> scratch;  // a text's ids
};

TokenIdCache::TokenIdCache() : impl_(std::make_unique<Impl>()) {}
TokenIdCache::~TokenIdCache() = default;

// The word's entry, tokenized now if it is not cached; null if it cannot be (too long, or a
// different word with the same hash).
const TokenIdCache::Impl::Entry* TokenIdCache::Impl::entry_of(const encoder::WordPiece& tokenizer,
                                                              std::string_view word) {
  if (word.size() > kMaxWordBytes) return nullptr;
  const std::uint64_t key = fnv1a64(word);
  if (const Entry* hit = words.find(key)) {
    return std::string_view(bytes).substr(hit->at, hit->size) == word ? hit : nullptr;
  }
  if (words.size() >= kMaxWords || pool.size() >= kMaxIds) {
    words.clear();
    bytes.clear();
    pool.clear();
  }
  const std::size_t first = pool.size();
  tokenizer.append_ids(word, SIZE_MAX, pool);
  Entry entry;
  entry.at = static_cast<std::uint32_t>(bytes.size());
  entry.first = static_cast<std::uint32_t>(first);
  entry.size = static_cast<std::uint16_t>(word.size());
  entry.count = static_cast<std::uint16_t>(pool.size() - first);
  bytes.append(word);
  Entry* slot = words.try_emplace(key).first;
  *slot = entry;
  return slot;
}

void TokenIdCache::Impl::append(const encoder::WordPiece& tokenizer, std::string_view text,
                                std::size_t limit, std::vector<std::int32_t>& ids) {
  std::size_t i = 0;
  while (i < text.size() && ids.size() < limit) {
    while (i < text.size() && is_ascii_space(text[i])) ++i;
    std::size_t end = i;
    while (end < text.size() && !is_ascii_space(text[end])) ++end;
    if (end == i) break;
    const std::string_view word = text.substr(i, end - i);
    if (const Entry* e = entry_of(tokenizer, word)) {
      ids.insert(ids.end(), pool.begin() + e->first, pool.begin() + e->first + e->count);
    } else {
      tokenizer.append_ids(word, limit, ids);
    }
    i = end;
  }
}

bool WordVectors::add_text_vector(std::string_view text, std::span<double> out,
                                  TokenIdCache* cache) const {
  if (!tokenizer_ || out.size() != dims_) return false;
  std::vector<std::int32_t> local;
  std::vector<std::int32_t>& ids = cache != nullptr ? cache->impl_->scratch : local;
  ids.clear();
  const std::size_t limit = tokenizer_->max_tokens() - 2;  // [CLS] and [SEP] take two
  if (cache != nullptr) {
    cache->impl_->append(*tokenizer_, text, limit, ids);
  } else {
    tokenizer_->append_ids(text, limit, ids);
  }
  if (ids.size() > limit) ids.resize(limit);
  if (ids.empty()) return false;
  // The rows are spread over the table: request them all before summing them in order.
  const std::size_t row_bytes = dims_;
  for (const std::int32_t id : ids) {
    const std::int8_t* row = codes_.data() + static_cast<std::size_t>(id) * dims_;
    for (std::size_t at = 0; at < row_bytes; at += 64) prefetch_line(row + at);
  }
  for (const std::int32_t id : ids) {
    const auto row = static_cast<std::size_t>(id);
    accumulate<false>(out.data(), dims_, scales_[row], codes_.data() + row * dims_, 1.0);
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
  return LoadedVectors{std::make_unique<WordVectors>(std::move(tokenizer), dims, std::move(scales),
                                                     std::move(codes)),
                       std::nullopt,
                       {}};
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
  return LoadedVectors{
      std::make_unique<WordVectors>(std::move(words), dims, std::move(scales), std::move(codes)),
      std::nullopt,
      {}};
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

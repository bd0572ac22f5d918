#include "painpoint/aggregator/encoder.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "encoder_kernels.h"
#include "encoder_model.h"
#include "encoder_tokenizer.h"

namespace painpoint::aggregator {

using encoder::kChunkRows;

SentenceEncoder::SentenceEncoder(std::unique_ptr<encoder::Model> model,
                                 std::unique_ptr<encoder::WordPiece> tokenizer)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {}

SentenceEncoder::~SentenceEncoder() = default;

std::vector<std::int32_t> SentenceEncoder::tokenize(std::string_view text) const {
  return tokenizer_->tokenize(text);
}

std::string_view SentenceEncoder::kernel() const { return model_->kernels->name; }

namespace {

// Encodes texts [begin, end) in chunks of whole texts of at most kChunkRows tokens. Which texts
// share a chunk does not change any text's result (see encoder_kernels_impl.h).
bool encode_range(const encoder::Model& model, const encoder::WordPiece& tokenizer,
                  std::span<const std::string_view> texts, std::size_t begin, std::size_t end,
                  float* out) {
  std::unique_ptr<float[], encoder::FreeDeleter> scratch(
      static_cast<float*>(std::aligned_alloc(64, encoder::scratch_floats() * sizeof(float))));
  if (!scratch) return false;
  std::vector<std::int32_t> ids;
  std::vector<std::size_t> offsets{0};
  std::size_t first = begin;
  auto run = [&] {
    model.kernels->encode_chunk(model.weights, ids.data(), offsets.data(), offsets.size() - 1,
                                scratch.get(), out + (first - begin) * SentenceEncoder::kDims);
  };
  for (std::size_t i = begin; i < end; ++i) {
    const std::vector<std::int32_t> t = tokenizer.tokenize(texts[i]);
    if (ids.size() + t.size() > kChunkRows) {
      run();
      ids.clear();
      offsets.assign(1, 0);
      first = i;
    }
    ids.insert(ids.end(), t.begin(), t.end());
    offsets.push_back(ids.size());
  }
  if (!ids.empty()) run();
  return true;
}

}  // namespace

bool SentenceEncoder::encode(std::span<const std::string_view> texts, std::span<float> out,
                             unsigned threads) const {
  if (out.size() != texts.size() * kDims) return false;
  const std::size_t n = texts.size();
  const std::size_t workers = std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(n, 1));
  std::atomic<bool> ok{true};
  auto part = [&](std::size_t w) {
    const std::size_t begin = n * w / workers;
    const std::size_t end = n * (w + 1) / workers;
    if (!encode_range(*model_, *tokenizer_, texts, begin, end, out.data() + begin * kDims)) {
      ok = false;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(part, w);
  part(0);
  for (std::thread& t : pool) t.join();
  return ok;
}

LoadedEncoder load_sentence_encoder(const std::string& path) {
  auto model = std::make_unique<encoder::Model>();
  if (encoder::ModelStatus s = encoder::load_model(path, *model); !s.error.empty()) {
    return {nullptr, s.cannot_open ? EncoderError::kCannotOpen : EncoderError::kBadFormat,
            std::move(s.error)};
  }
  auto tokenizer = std::make_unique<encoder::WordPiece>(model->vocab, model->max_tokens);
  if (!tokenizer->valid()) {
    return {nullptr, EncoderError::kBadFormat, path + ": vocabulary lacks [CLS], [SEP] or [UNK]"};
  }
  return {
      std::make_unique<SentenceEncoder>(std::move(model), std::move(tokenizer)), std::nullopt, {}};
}

std::string default_encoder_path() {
  // One copy per user, shared by every checkout and by CI runs on the same machine.
  auto set = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  if (const char* data_home = set("PAINPOINT_DATA_HOME")) {
    return std::string(data_home) + "/minilm-l6-v2.bin";
  }
  if (const char* cache = set("XDG_CACHE_HOME")) {
    return std::string(cache) + "/painpoint/minilm-l6-v2.bin";
  }
  if (const char* home = set("HOME"))
    return std::string(home) + "/.cache/painpoint/minilm-l6-v2.bin";
  return "./.cache/painpoint/minilm-l6-v2.bin";
}

}  // namespace painpoint::aggregator

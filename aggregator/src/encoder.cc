#include "painpoint/aggregator/encoder.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

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

// Texts [begin, end) of a batch: one encode_chunk call.
struct ChunkSpan {
  std::size_t begin;
  std::size_t end;
};

// Consecutive runs of whole texts of at most kChunkRows tokens each. Which texts share a chunk
// does not change any text's result (see encoder_kernels_impl.h); full chunks keep the weights
// streamed from memory once per kChunkRows tokens. `chunks` must have room for tokens.size()
// entries (so this does not allocate).
void plan_chunks(const std::vector<std::vector<std::int32_t>>& tokens,
                 std::vector<ChunkSpan>& chunks) noexcept {
  std::size_t rows = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (chunks.empty() || rows + tokens[i].size() > kChunkRows) {
      chunks.push_back({i, i});
      rows = 0;
    }
    rows += tokens[i].size();
    chunks.back().end = i + 1;
  }
}

// One worker's share of a batch: encodes the chunks it claims from `next` until none is left.
// Claiming them one at a time keeps both workers busy to the end even when one of them is held
// up by other work on the machine (a split fixed in advance left the other waiting).
class ChunkWorker {
 public:
  ChunkWorker()
      : scratch_(static_cast<float*>(
            std::aligned_alloc(64, encoder::scratch_floats() * sizeof(float)))) {}

  [[nodiscard]] bool valid() const { return scratch_ != nullptr; }

  void run(const encoder::Model& model, const std::vector<std::vector<std::int32_t>>& tokens,
           const std::vector<ChunkSpan>& chunks, std::atomic<std::size_t>& next, float* out) {
    for (std::size_t c = next.fetch_add(1); c < chunks.size(); c = next.fetch_add(1)) {
      ids_.clear();
      offsets_.assign(1, 0);
      for (std::size_t i = chunks[c].begin; i < chunks[c].end; ++i) {
        ids_.insert(ids_.end(), tokens[i].begin(), tokens[i].end());
        offsets_.push_back(ids_.size());
      }
      model.kernels->encode_chunk(model.weights, ids_.data(), offsets_.data(),
                                  offsets_.size() - 1, scratch_.get(),
                                  out + chunks[c].begin * SentenceEncoder::kDims);
    }
  }

 private:
  std::unique_ptr<float[], encoder::FreeDeleter> scratch_;
  std::vector<std::int32_t> ids_;
  std::vector<std::size_t> offsets_;
};

}  // namespace

bool SentenceEncoder::encode(std::span<const std::string_view> texts, std::span<float> out,
                             unsigned threads) const {
  if (out.size() != texts.size() * kDims) return false;
  const std::size_t n = texts.size();
  const std::size_t workers = std::clamp<std::size_t>(threads, 1, std::max<std::size_t>(n, 1));
  std::vector<std::vector<std::int32_t>> tokens(n);
  std::vector<ChunkSpan> chunks;
  chunks.reserve(n);
  // Every worker tokenizes a fixed share; the last to finish plans the chunks for all.
  std::barrier tokenized(static_cast<std::ptrdiff_t>(workers),
                         [&]() noexcept { plan_chunks(tokens, chunks); });
  std::atomic<std::size_t> next{0};
  std::atomic<bool> ok{true};
  auto part = [&](std::size_t w) {
    ChunkWorker worker;
    for (std::size_t i = n * w / workers; i < n * (w + 1) / workers; ++i) {
      tokens[i] = tokenizer_->tokenize(texts[i]);
    }
    tokenized.arrive_and_wait();
    if (!worker.valid()) {
      ok = false;
      return;
    }
    worker.run(*model_, tokens, chunks, next, out.data());
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

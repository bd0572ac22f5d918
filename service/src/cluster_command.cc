#include "cluster_command.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "config_file.h"
#include "event_vectors.h"
#include "http_server.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/config.h"
#include "painpoint/aggregator/encoder.h"
#include "painpoint/aggregator/word_vectors.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::service {
namespace {

namespace agg = painpoint::aggregator;

struct Parsed {
  v1::FeedbackEvent event;
  std::string error;  // empty: valid
};

// Lines are parsed and validated on a second thread: protobuf's JSON parser costs about as
// much as the clustering itself, and the aggregator must stay single-threaded.
class ParsePipeline {
 public:
  ParsePipeline(std::ifstream& in, const ingest::ValidationConfig& validation,
                std::chrono::system_clock::time_point now)
      : in_(in), validation_(validation), now_(now), worker_([this] { run(); }) {}
  ~ParsePipeline() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  ParsePipeline(const ParsePipeline&) = delete;
  ParsePipeline& operator=(const ParsePipeline&) = delete;

  // Next chunk in file order; empty at the end of the input.
  std::vector<Parsed> next() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty() || done_; });
    if (queue_.empty()) return {};
    auto chunk = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return chunk;
  }

 private:
  void run() {
    constexpr std::size_t kChunk = 512;
    constexpr std::size_t kMaxQueued = 16;
    const ingest::ValidationConfig& vcfg = validation_;
    const v1::Source topic_source = ingest::source_for_topic("");
    std::string line;
    bool eof = false;
    while (!eof) {
      std::vector<Parsed> chunk;
      chunk.reserve(kChunk);
      while (chunk.size() < kChunk) {
        if (!std::getline(in_, line)) {
          eof = true;
          break;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        Parsed p;
        if (auto r = ingest::parse_json_event(line, &p.event)) {
          p.error = std::string(ingest::reason_code(r->reason)) + ": " + r->detail;
        } else if (auto v = ingest::validate_and_normalize(p.event, topic_source, vcfg, now_)) {
          p.error = std::string(ingest::reason_code(v->reason)) + ": " + v->detail;
        }
        chunk.push_back(std::move(p));
      }
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return queue_.size() < kMaxQueued || stop_; });
      if (stop_) return;
      if (!chunk.empty()) queue_.push_back(std::move(chunk));
      cv_.notify_all();
    }
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

  std::ifstream& in_;
  const ingest::ValidationConfig validation_;
  const std::chrono::system_clock::time_point now_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<Parsed>> queue_;
  bool done_ = false;
  bool stop_ = false;
  std::thread worker_;  // last: starts after the members it uses exist
};

bool apply(agg::ClusterConfig& cfg, const std::string& key, const std::string& value,
           const std::string& where) {
  if (const auto err = agg::apply_config_override(cfg, key, value)) {
    std::cerr << "painpoint cluster: " << where << ": "
              << (*err == agg::ConfigError::kUnknownKey ? "unknown key " : "bad value for ") << key
              << "\n";
    return false;
  }
  return true;
}

// Sentence vectors of a chunk's valid events (semantic mode): one batch, kept in their stored
// form (EventVectors), so the aggregator gets exactly what serve would give it.
class ChunkEncoder {
 public:
  ChunkEncoder(const agg::SentenceEncoder& encoder, unsigned threads)
      : vectors_(&encoder, threads) {}

  void encode(const std::vector<Parsed>& chunk) {
    std::vector<std::string_view> texts;
    index_.assign(chunk.size(), kNone);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (!chunk[i].error.empty()) continue;
      index_[i] = texts.size();
      texts.emplace_back(chunk[i].event.text());
    }
    packed_.clear();
    (void)vectors_.encode(texts, packed_);
  }

  // The vector of chunk[i] (empty for an invalid event). Valid until the next call.
  [[nodiscard]] std::span<const float> vector_of(std::size_t i) {
    if (i >= index_.size() || index_[i] >= packed_.size()) return {};
    return vectors_.unpack(packed_[index_[i]]);
  }

 private:
  static constexpr std::size_t kNone = SIZE_MAX;
  EventVectors vectors_;
  std::vector<std::size_t> index_;
  std::vector<std::string> packed_;
};

// The models the configured mode needs: word vectors (static) or the sentence encoder
// (semantic). Reports on stderr and returns false when a required one cannot be used.
struct Models {
  agg::LoadedVectors vectors;
  agg::LoadedEncoder encoder;
};

bool load_models(const ClusterCommandOptions& options, agg::ClusterConfig& cfg, Models& models) {
  if (cfg.encoder == agg::EncoderMode::kSemantic) {
    const std::string path = options.encoder_path.value_or(agg::default_encoder_path());
    models.encoder = agg::load_sentence_encoder(path);
    if (!models.encoder.encoder) {
      std::cerr << "painpoint cluster: sentence encoder: " << models.encoder.detail
                << " (run scripts/fetch-encoder.sh, or --set encoder=static)\n";
      return false;
    }
    cfg.embedding_dims = agg::SentenceEncoder::kDims;
    return true;
  }
  if (cfg.encoder == agg::EncoderMode::kSparse) return true;
  const std::string vpath = options.vectors_path.value_or(agg::default_word_vectors_path());
  if (vpath == "none" || vpath.empty()) return true;
  if (options.vectors_path || std::filesystem::exists(vpath)) {
    models.vectors = agg::load_word_vectors(vpath);
    if (!models.vectors.vectors) {
      std::cerr << "painpoint cluster: word vectors: " << models.vectors.detail << "\n";
      return false;
    }
    cfg.word_vectors = models.vectors.vectors.get();
  } else {
    std::cerr << "painpoint cluster: no word vectors at " << vpath
              << " (run scripts/fetch-embeddings.sh); clustering on sparse features only\n";
  }
  return true;
}

struct Row {
  std::string event_id;
  std::string product_id;
  std::string pain_point;  // at assignment; resolved at the end
  std::string error;
};

}  // namespace

base::ExitCode run_cluster_command(const ClusterCommandOptions& options) {
  // The same file format and keys as `painpoint serve --config`: cluster.* and validation.*.
  ServiceConfig service_config;
  if (options.config_path) {
    auto loaded = load_service_config(*options.config_path);
    if (!loaded.config) {
      std::cerr << "painpoint cluster: config " << *options.config_path << ": " << loaded.error
                << "\n";
      return base::ExitCode::kFailed;
    }
    service_config = std::move(*loaded.config);
  }
  agg::ClusterConfig& cfg = service_config.cluster;
  for (const auto& [k, v] : options.config_overrides) {
    if (!apply(cfg, k, v, "override")) return base::ExitCode::kFailed;
  }
  Models models;
  if (!load_models(options, cfg, models)) return base::ExitCode::kFailed;
  std::ifstream in(options.input_path);
  if (!in) {
    std::cerr << "painpoint cluster: cannot open " << options.input_path << "\n";
    return base::ExitCode::kFailed;
  }
  std::ofstream out(options.output_path, std::ios::trunc);
  if (!out) {
    std::cerr << "painpoint cluster: cannot write " << options.output_path << "\n";
    return base::ExitCode::kFailed;
  }

  const auto t0 = std::chrono::steady_clock::now();
  agg::Aggregator aggregator(cfg, nullptr);
  std::vector<Row> rows;
  std::unordered_map<std::string, std::size_t> first_row;  // event id -> row of first sighting
  std::size_t events = 0;
  std::size_t since_take = 0;
  const std::size_t batch = std::max<std::size_t>(options.batch_size, 1);
  {
    ParsePipeline pipeline(in, service_config.validation, std::chrono::system_clock::now());
    std::optional<ChunkEncoder> encoder;
    if (models.encoder.encoder) encoder.emplace(*models.encoder.encoder, options.encoder_threads);
    for (auto chunk = pipeline.next(); !chunk.empty(); chunk = pipeline.next()) {
      if (encoder) encoder->encode(chunk);
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        auto& p = chunk[i];
        Row r;
        r.event_id = p.event.event_id();
        if (!p.error.empty()) {
          r.error = std::move(p.error);
          rows.push_back(std::move(r));
          continue;
        }
        r.product_id = p.event.product_id();
        const auto [it, fresh] = first_row.try_emplace(r.event_id, rows.size());
        if (fresh) {
          r.pain_point = aggregator.add(
              p.event, encoder ? encoder->vector_of(i) : std::span<const float>{});
          ++events;
          // The service drains changes per batch; doing the same keeps memory and cost
          // representative (and the memberships list bounded).
          if (++since_take >= batch) {
            since_take = 0;
            (void)aggregator.take_changes();
          }
        } else {
          // A redelivered event is a no-op: it reports where its first copy went.
          r.pain_point = rows[it->second].pain_point;
          r.product_id = rows[it->second].product_id;
        }
        rows.push_back(std::move(r));
      }
    }
  }
  (void)aggregator.take_changes();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string buf;
  for (const auto& r : rows) {
    buf += "{\"eventId\":";
    buf += json_quote(r.event_id);
    if (!r.error.empty()) {
      buf += ",\"error\":";
      buf += json_quote(r.error);
    } else {
      buf += ",\"productId\":";
      buf += json_quote(r.product_id);
      buf += ",\"painPointId\":";
      buf += json_quote(aggregator.resolve(r.pain_point));
    }
    buf += "}\n";
    if (buf.size() > (1 << 20)) {
      out << buf;
      buf.clear();
    }
  }
  out << buf;
  out.flush();
  if (!out) {
    std::cerr << "painpoint cluster: write to " << options.output_path << " failed\n";
    return base::ExitCode::kFailed;
  }
  std::fprintf(stderr,
               "painpoint cluster: %zu events, %zu pain points, %.3f s, %.0f events/s (%zu lines, "
               "%zu invalid)\n",
               events, aggregator.active_pain_points(), secs,
               secs > 0 ? static_cast<double>(events) / secs : 0.0, rows.size(),
               static_cast<std::size_t>(std::count_if(
                   rows.begin(), rows.end(), [](const Row& r) { return !r.error.empty(); })));
  return base::ExitCode::kOk;
}

}  // namespace painpoint::service

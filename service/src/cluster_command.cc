#include "cluster_command.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
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

// Lines are parsed and validated on a thread of their own, in file order, beside the threads
// that cluster.
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

// One Aggregator on its own thread. Products are spread over shards and each product stays on
// one, so its events reach one Aggregator in input order; a pain point's id and members depend
// only on its product's events, so any number of shards gives the assignments of one.
class AggregatorShard {
 public:
  struct Event {
    v1::FeedbackEvent event;
    std::vector<float> vector;  // semantic mode only
  };

  AggregatorShard(const agg::ClusterConfig& cfg, std::size_t batch)
      : aggregator_(cfg, nullptr),
        batch_(batch),
        track_moves_(cfg.encoder == agg::EncoderMode::kSemantic && cfg.sample_members > 0),
        worker_([this] { run(); }) {}
  ~AggregatorShard() { finish(); }
  AggregatorShard(const AggregatorShard&) = delete;
  AggregatorShard& operator=(const AggregatorShard&) = delete;

  // Queues events after the earlier ones; waits while the shard is kMaxQueued pushes behind.
  void push(std::vector<Event> events) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return queue_.size() < kMaxQueued; });
    queue_.push_back(std::move(events));
    cv_.notify_all();
  }

  // Returns once every pushed event is added and the last changes are drained.
  void finish() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  // The id each event got at assignment, in push order. Only after finish().
  [[nodiscard]] const std::vector<std::string>& assigned() const { return assigned_; }
  [[nodiscard]] const agg::Aggregator& aggregator() const { return aggregator_; }

 private:
  static constexpr std::size_t kMaxQueued = 16;

  void run() {
    std::size_t since_take = 0;
    for (;;) {
      std::vector<Event> events;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
        if (queue_.empty()) break;
        events = std::move(queue_.front());
        queue_.pop_front();
      }
      cv_.notify_all();
      for (const Event& e : events) {
        if (track_moves_) position_.try_emplace(e.event.event_id(), assigned_.size());
        assigned_.push_back(aggregator_.add(e.event, e.vector));
        // The service drains changes per batch; doing the same keeps memory and cost
        // representative (and the memberships list bounded). The state is deferred as serve
        // defers it between checkpoints: nothing here would persist it.
        if (++since_take >= batch_) {
          since_take = 0;
          follow_moves(aggregator_.take_changes(agg::Aggregator::StateOutput::kDefer));
        }
      }
    }
    follow_moves(aggregator_.take_changes(agg::Aggregator::StateOutput::kDefer));
  }

  // Semantic mode moves members at maintenance, possibly events of earlier batches: the
  // memberships say where each event is now.
  void follow_moves(const agg::Changes& changes) {
    if (!track_moves_) return;
    for (const auto& m : changes.memberships) {
      const auto it = position_.find(m.event_id);
      if (it != position_.end()) assigned_[it->second] = m.pain_point_id;
    }
  }

  agg::Aggregator aggregator_;
  const std::size_t batch_;
  const bool track_moves_;
  std::vector<std::string> assigned_;
  std::unordered_map<std::string, std::size_t> position_;  // event id -> assigned_ (semantic)
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<Event>> queue_;
  bool closed_ = false;
  std::thread worker_;  // last: starts after the members it uses exist
};

// Which shard each product is on: products take the shards in turn in the order they first
// appear, so shards hold equal numbers of products.
class ProductSharding {
 public:
  explicit ProductSharding(std::size_t shards) : shards_(shards) {}
  std::size_t shard_of(const std::string& product_id) {
    return shard_.try_emplace(product_id, shard_.size() % shards_).first->second;
  }

 private:
  std::unordered_map<std::string, std::size_t> shard_;
  const std::size_t shards_;
};

struct Row {
  std::string event_id;
  std::string product_id;
  std::string error;
  // Valid rows: the event's place in its shard's assignments (a redelivered event: its first
  // copy's place).
  std::uint32_t shard = 0;
  std::size_t position = 0;
};

unsigned cluster_threads(const ClusterCommandOptions& options) {
  if (options.threads != 0) return options.threads;
  return std::clamp(std::thread::hardware_concurrency(), 1u, kMaxDefaultClusterThreads);
}

// Hands every valid event seen for the first time to its product's shard, in input order, and
// records a row per input line. Returns the number of events handed out.
std::size_t distribute(ParsePipeline& pipeline, ChunkEncoder* encoder,
                       const std::vector<std::unique_ptr<AggregatorShard>>& shards,
                       std::vector<Row>& rows) {
  ProductSharding sharding(shards.size());
  std::vector<std::size_t> pushed(shards.size(), 0);       // events handed to each shard so far
  std::unordered_map<std::string, std::size_t> first_row;  // event id -> row of first sighting
  std::size_t events = 0;
  for (auto chunk = pipeline.next(); !chunk.empty(); chunk = pipeline.next()) {
    if (encoder) encoder->encode(chunk);
    std::vector<std::vector<AggregatorShard::Event>> out(shards.size());
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      auto& p = chunk[i];
      Row r;
      r.event_id = p.event.event_id();
      if (!p.error.empty()) {
        r.error = std::move(p.error);
      } else if (const auto [it, fresh] = first_row.try_emplace(r.event_id, rows.size()); fresh) {
        r.product_id = p.event.product_id();
        const std::size_t s = sharding.shard_of(r.product_id);
        r.shard = static_cast<std::uint32_t>(s);
        r.position = pushed[s]++;
        AggregatorShard::Event e{std::move(p.event), {}};
        if (encoder) {
          const auto v = encoder->vector_of(i);
          e.vector.assign(v.begin(), v.end());
        }
        out[s].push_back(std::move(e));
        ++events;
      } else {
        // A redelivered event is a no-op: it reports where its first copy went.
        const Row& first = rows[it->second];
        r.product_id = first.product_id;
        r.shard = first.shard;
        r.position = first.position;
      }
      rows.push_back(std::move(r));
    }
    for (std::size_t s = 0; s < shards.size(); ++s) {
      if (!out[s].empty()) shards[s]->push(std::move(out[s]));
    }
  }
  return events;
}

// One line per input line, in input order, with the event's final pain point (after merges).
bool write_assignments(const std::vector<Row>& rows,
                       const std::vector<std::unique_ptr<AggregatorShard>>& shards,
                       std::ofstream& out) {
  std::string buf;
  for (const auto& r : rows) {
    buf += "{\"eventId\":";
    buf += json_quote(r.event_id);
    if (!r.error.empty()) {
      buf += ",\"error\":";
      buf += json_quote(r.error);
    } else {
      const AggregatorShard& shard = *shards[r.shard];
      buf += ",\"productId\":";
      buf += json_quote(r.product_id);
      buf += ",\"painPointId\":";
      buf += json_quote(shard.aggregator().resolve(shard.assigned()[r.position]));
    }
    buf += "}\n";
    if (buf.size() > (1 << 20)) {
      out << buf;
      buf.clear();
    }
  }
  out << buf;
  out.flush();
  return static_cast<bool>(out);
}

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
  const std::size_t batch = std::max<std::size_t>(options.batch_size, 1);
  std::vector<std::unique_ptr<AggregatorShard>> shards;
  for (unsigned i = 0; i < cluster_threads(options); ++i) {
    shards.push_back(std::make_unique<AggregatorShard>(cfg, batch));
  }
  std::vector<Row> rows;
  std::size_t events = 0;
  {
    ParsePipeline pipeline(in, service_config.validation, std::chrono::system_clock::now());
    std::optional<ChunkEncoder> encoder;
    if (models.encoder.encoder) encoder.emplace(*models.encoder.encoder, options.encoder_threads);
    events = distribute(pipeline, encoder ? &*encoder : nullptr, shards, rows);
    for (auto& shard : shards) shard->finish();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!write_assignments(rows, shards, out)) {
    std::cerr << "painpoint cluster: write to " << options.output_path << " failed\n";
    return base::ExitCode::kFailed;
  }
  std::size_t pain_points = 0;
  for (const auto& shard : shards) pain_points += shard->aggregator().active_pain_points();
  std::fprintf(stderr,
               "painpoint cluster: %zu events, %zu pain points, %.3f s, %.0f events/s (%zu lines, "
               "%zu invalid, %zu threads)\n",
               events, pain_points, secs, secs > 0 ? static_cast<double>(events) / secs : 0.0,
               rows.size(),
               static_cast<std::size_t>(std::count_if(
                   rows.begin(), rows.end(), [](const Row& r) { return !r.error.empty(); })),
               shards.size());
  return base::ExitCode::kOk;
}

}  // namespace painpoint::service

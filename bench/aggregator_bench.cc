// Per-event cost of Aggregator::add() against the number of live pain points in one product.
// The inverted index must keep this flat: the 10,000 case may be at most 2x the 100 case.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/word_vectors.h"

namespace agg = painpoint::aggregator;

namespace {

// Pronounceable pseudo-words, distinct per index: topic vocabularies never overlap. Always four
// syllables, so that texts are as long at 10,000 topics as at 100 (tokenizing and stemming
// cost the same; only the number of pain points and the vocabulary differ).
std::string pseudo_word(std::size_t i) {
  static const char* syll[] = {"ka", "lo", "mi", "ne", "pu", "ra", "si", "to",
                               "vu", "ze", "bo", "da", "fi", "gu", "he", "ju"};
  std::string w;
  for (int k = 0; k < 4; ++k) {
    w += syll[i % 16];
    i /= 16;
  }
  return w + "x";
}

const std::vector<std::string>& common_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w = {"app",   "broken", "slow",  "error",  "please", "fix",
                                  "again", "today",  "users", "team",   "update", "login",
                                  "page",  "screen", "data",  "report", "issue",  "problem"};
    return w;
  }();
  return words;
}

// A topic: three words of its own plus three random common words.
std::string topic_text(std::size_t topic, std::mt19937& rng) {
  std::string t =
      pseudo_word(topic * 3) + " " + pseudo_word(topic * 3 + 1) + " " + pseudo_word(topic * 3 + 2);
  const auto& c = common_words();
  for (int k = 0; k < 3; ++k) t += " " + c[rng() % c.size()];
  return t;
}

const agg::WordVectors* vectors() {
  static const agg::LoadedVectors loaded = [] {
    const auto path = agg::default_word_vectors_path();
    if (!std::filesystem::exists(path)) return agg::LoadedVectors{};
    return agg::load_word_vectors(path);
  }();
  return loaded.vectors.get();
}

painpoint::v1::FeedbackEvent make_event(std::size_t id, std::string text) {
  painpoint::v1::FeedbackEvent e;
  e.set_event_id("e-" + std::to_string(id));
  e.set_product_id("bench");
  e.set_text(std::move(text));
  e.mutable_occurred_at()->set_seconds(1'790'000'000 + static_cast<std::int64_t>(id));
  e.set_account_id("acct-" + std::to_string(id % 5000));
  e.set_account_arr_cents(120'000);
  return e;
}

// Changes are drained once per batch, as the service does: its aggregator stage polls up to
// AggregatorStageConfig::batch_size = 2000 events, and at the sustained rates this bench stands
// for, batches are full.
constexpr std::size_t kBatch = 2000;

void run_bench(benchmark::State& state, bool flush_timed) {
  const auto live = static_cast<std::size_t>(state.range(0));
  agg::ClusterConfig cfg;
  cfg.encoder = agg::EncoderMode::kStatic;  // the fast path this benchmark is about
  cfg.word_vectors = vectors();
  agg::Aggregator a(cfg, nullptr);
  std::mt19937 rng(42);
  std::size_t id = 0;
  // Warm-up: every topic gets enough events to become a pain point.
  const std::uint32_t warm = cfg.min_support + 1;
  for (std::size_t t = 0; t < live; ++t) {
    for (std::uint32_t k = 0; k < warm; ++k) a.add(make_event(id++, topic_text(t, rng)));
  }
  (void)a.take_changes();
  // Pre-built events so that the loop measures the aggregator, not string building. The pool is
  // the same size in every case (the input's memory footprint must not differ between them) and
  // covers every live pain point at least twice: a fixed 4096 would, at 10,000 pain points,
  // exercise only the ~3,400 topics it happens to draw (a smaller, friendlier working set).
  const std::size_t pool = std::max<std::size_t>(20'000, 2 * live);
  std::vector<painpoint::v1::FeedbackEvent> events;
  for (std::size_t i = 0; i < pool; ++i)
    events.push_back(make_event(0, topic_text(rng() % live, rng)));
  std::size_t i = 0;
  for (auto _ : state) {
    auto& e = events[i % events.size()];
    e.set_event_id("m-" + std::to_string(i));
    benchmark::DoNotOptimize(a.add(e));
    if (++i % kBatch == 0 && !flush_timed && std::getenv("PP_PROFILE_NOFLUSH") == nullptr) {
      // Draining changes (summaries, state) costs per changed pain point per batch, not per
      // event: measured separately by BM_AddEventWithFlush.
      state.PauseTiming();
      benchmark::DoNotOptimize(a.take_changes());
      state.ResumeTiming();
    } else if (flush_timed && i % kBatch == 0 && std::getenv("PP_BENCH_NOFLUSH") == nullptr) {
      benchmark::DoNotOptimize(a.take_changes());
    }
  }
  state.counters["live_pain_points"] = static_cast<double>(a.active_pain_points());
  state.counters["vectors"] = cfg.word_vectors != nullptr ? 1 : 0;
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// PP_PROFILE_NOFLUSH=1 skips the (untimed) take_changes() of BM_AddEvent, so that a profile shows
// add() alone; the timed figures then miss the cache and heap disturbance a real drain causes.
// PP_BENCH_MIN_TIME=SECONDS lengthens the measured loop, e.g. so that a profiler's samples are
// not dominated by the warm-up (which Google Benchmark repeats for each estimation run).
double min_time() {
  const char* v = std::getenv("PP_BENCH_MIN_TIME");
  return v != nullptr ? std::atof(v) : 1.0;
}

void BM_AddEvent(benchmark::State& state) { run_bench(state, false); }
void BM_AddEventWithFlush(benchmark::State& state) { run_bench(state, true); }

}  // namespace

BENCHMARK(BM_AddEventWithFlush)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(min_time());
BENCHMARK(BM_AddEvent)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(min_time());

BENCHMARK_MAIN();

#include "painpoint/aggregator/aggregator_shards.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "map_state.h"
#include "painpoint/aggregator/word_vectors.h"

namespace painpoint::aggregator {
namespace {

using testing::MapState;

// Events of `products` products interleaved at random, each product with its own recurring
// complaints (paraphrased) and one-off remarks.
std::vector<v1::FeedbackEvent> interleaved_products(int products, int n, unsigned seed) {
  const std::vector<std::string> subjects = {"camera", "invoice", "password", "csv export",
                                             "login",  "search",  "sync",     "dark mode"};
  const std::vector<std::string> phrasings = {
      "the {} is broken", "{} fails every time", "cannot use the {} since the update",
      "{} keeps crashing on android", "why does the {} not work"};
  std::mt19937 rng(seed);
  std::vector<v1::FeedbackEvent> events;
  for (int i = 0; i < n; ++i) {
    const int product = static_cast<int>(rng() % static_cast<unsigned>(products));
    std::string text = phrasings[rng() % phrasings.size()];
    const std::string subject =
        subjects[(static_cast<std::size_t>(product) + rng() % 3) % subjects.size()];
    text.replace(text.find("{}"), 2, subject);
    if (rng() % 20 == 0) text = "random remark number " + std::to_string(rng() % 1000);
    v1::FeedbackEvent e;
    e.set_event_id("e" + std::to_string(i));
    e.set_product_id("product-" + std::to_string(product));
    e.set_text(text);
    e.mutable_occurred_at()->set_seconds(1'790'000'000 + i * 60);
    e.set_account_id("acct-" + std::to_string(rng() % 30));
    e.set_account_arr_cents(1000 * static_cast<std::int64_t>(1 + rng() % 5));
    e.set_source(v1::SOURCE_SUPPORT);
    events.push_back(std::move(e));
  }
  return events;
}

ClusterConfig test_config() {
  ClusterConfig c;
  c.encoder = EncoderMode::kStatic;
  c.maintenance_interval = 50;
  return c;
}

// What a run hands out, ordered so that runs that differ only in how products interleave within
// a Changes compare equal: each product's summaries in order, each event's memberships in order.
struct Outcome {
  std::map<std::string, std::vector<std::string>> summaries;    // product -> serialized, in order
  std::map<std::string, std::vector<std::string>> memberships;  // event -> pain point ids
  std::vector<std::string> membership_order;                    // "event:pain point", as handed out
  std::map<std::string, std::string, std::less<>> state;
  std::map<std::string, std::string> resolved;  // every assigned id -> resolve()
  std::size_t active = 0;
};

void collect(const Changes& c, Outcome& out) {
  for (const auto& s : c.summaries) out.summaries[s.product_id()].push_back(s.SerializeAsString());
  for (const auto& m : c.memberships) {
    out.memberships[m.event_id].push_back(m.pain_point_id);
    out.membership_order.push_back(m.event_id + ":" + m.pain_point_id);
  }
}

// Checkpoint filters: the state of even-numbered products every third batch, all at the end.
bool saves_state(std::size_t batch, std::string_view product) {
  return batch % 3 == 0 && (product.back() - '0') % 2 == 0;
}

// events[begin, end) as add_all() takes them (static mode: no vectors).
std::vector<AggregatorShards::Event> to_add(const std::vector<v1::FeedbackEvent>& events,
                                            std::size_t begin, std::size_t end) {
  std::vector<AggregatorShards::Event> out;
  for (std::size_t i = begin; i < std::min(end, events.size()); ++i)
    out.push_back({&events[i], {}});
  return out;
}

// Adds the events in batches of `batch` (add_batch(begin, end)), taking the changes after each
// with the checkpoints of saves_state() and the whole state at the end.
template <typename Agg, typename AddBatch, typename Resolve>
Outcome run(Agg& a, MapState& store, const std::vector<v1::FeedbackEvent>& events,
            std::size_t batch, AddBatch add_batch, Resolve resolve) {
  Outcome out;
  for (std::size_t start = 0, n = 0; start < events.size(); start += batch, ++n) {
    add_batch(start, std::min(events.size(), start + batch));
    const Changes c = a.take_changes([n](std::string_view p) { return saves_state(n, p); });
    store.apply(c);
    collect(c, out);
  }
  const Changes last = a.take_changes(Aggregator::StateOutput::kInclude);
  store.apply(last);
  collect(last, out);
  out.state = store.kv;
  for (const auto& [event, ids] : out.memberships) {
    for (const auto& id : ids) out.resolved[id] = resolve(event, id);
  }
  out.active = a.active_pain_points();
  return out;
}

Outcome run_single(const std::vector<v1::FeedbackEvent>& events, std::size_t batch,
                   const ClusterConfig& config = test_config()) {
  MapState store;
  Aggregator a(config, &store);
  return run(
      a, store, events, batch,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) a.add(events[i]);
      },
      [&](const std::string&, const std::string& id) { return a.resolve(id); });
}

Outcome run_sharded(const std::vector<v1::FeedbackEvent>& events, std::size_t batch,
                    unsigned shards, bool analyze_ahead = false,
                    const ClusterConfig& config = test_config()) {
  MapState store;
  AggregatorShards a(config, &store, shards, analyze_ahead);
  std::map<std::string, std::string> product_of;
  for (const auto& e : events) product_of[e.event_id()] = e.product_id();
  return run(
      a, store, events, batch,
      [&](std::size_t begin, std::size_t end) { a.add_all(to_add(events, begin, end)); },
      [&](const std::string& event, const std::string& id) {
        return a.resolve(product_of.at(event), id);
      });
}

void expect_same(const Outcome& got, const Outcome& want) {
  EXPECT_EQ(got.summaries, want.summaries);
  EXPECT_EQ(got.memberships, want.memberships);
  // In the order of the events, which the store's commit relies on to find their times.
  EXPECT_EQ(got.membership_order, want.membership_order);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.resolved, want.resolved);
  EXPECT_EQ(got.active, want.active);
}

TEST(AggregatorShards, ProductsSpreadOverEveryShard) {
  const AggregatorShards a(test_config(), nullptr, 3);
  std::set<std::size_t> used;
  for (int p = 0; p < 12; ++p) used.insert(a.shard_of("product-" + std::to_string(p)));
  EXPECT_EQ(used, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(a.shard_of("product-4"), a.shard_of("product-4"));
}

// Any number of shards gives what one Aggregator gives: the same pain points, summaries (with
// their versions), memberships, merges and persisted state, checkpoints of some products included.
TEST(AggregatorShards, AnyShardCountGivesTheResultsOfOneAggregator) {
  const auto events = interleaved_products(10, 3000, 7);
  const Outcome single = run_single(events, 97);
  ASSERT_GT(single.active, 10u);
  ASSERT_FALSE(single.state.empty());
  for (const unsigned shards : {1u, 2u, 3u, 5u}) {
    SCOPED_TRACE(shards);
    expect_same(run_sharded(events, 97, shards), single);
  }
}

// Word vectors (GloVe's format) for the words of interleaved_products(), so that the analysis
// ahead also carries vector rows.
WordVectors test_word_vectors() {
  const std::vector<std::string> words = {"camera", "invoice", "password", "csv",     "export",
                                          "login",  "search",  "sync",     "dark",    "mode",
                                          "broken", "fails",   "crashing", "android", "update"};
  constexpr std::uint32_t kDims = 8;
  std::mt19937 rng(5);
  std::vector<float> scales(words.size(), 0.01F);
  std::vector<std::int8_t> codes(words.size() * kDims);
  for (auto& c : codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
  return WordVectors(words, kDims, std::move(scales), std::move(codes));
}

// Analysing the next chunk's texts on another thread changes nothing, whether a batch spans
// several chunks (some partial) or fits in the first, which the shards analyse themselves.
TEST(AggregatorShards, AnalysisAheadGivesTheResultsOfOneAggregator) {
  const WordVectors vectors = test_word_vectors();
  ClusterConfig config = test_config();
  config.word_vectors = &vectors;
  const auto events = interleaved_products(8, 3000, 13);
  constexpr std::size_t kChunk = AggregatorShards::kAnalysisChunk;
  for (const std::size_t batch : {kChunk * 2 + 61, kChunk, std::size_t{97}}) {
    const Outcome single = run_single(events, batch, config);
    ASSERT_GT(single.active, 8u);
    for (const unsigned shards : {1u, 3u}) {
      SCOPED_TRACE(::testing::Message() << "batch " << batch << ", " << shards << " shards");
      expect_same(run_sharded(events, batch, shards, /*analyze_ahead=*/true, config), single);
    }
  }
}

// A restart on the shards' persisted state continues as a restart of one Aggregator does:
// lazily loaded products on every shard.
TEST(AggregatorShards, RestartOnPersistedStateContinuesExactly) {
  const auto events = interleaved_products(6, 1200, 11);
  const std::size_t half = 600;
  auto run_restarted = [&](unsigned shards) {
    MapState store;
    Outcome out;
    {
      AggregatorShards a(test_config(), &store, shards);
      a.add_all(to_add(events, 0, half));
      const Changes c = a.take_changes(Aggregator::StateOutput::kInclude);
      store.apply(c);
      collect(c, out);
    }
    AggregatorShards b(test_config(), &store, shards);
    b.add_all(to_add(events, half, events.size()));
    const Changes c = b.take_changes(Aggregator::StateOutput::kInclude);
    store.apply(c);
    collect(c, out);
    out.state = store.kv;
    out.active = b.active_pain_points();
    return out;
  };
  expect_same(run_restarted(3), run_restarted(1));
}

// Curation goes to the product's shard: a rename there shows in the next summary.
TEST(AggregatorShards, CurationReachesTheProductsShard) {
  const auto events = interleaved_products(4, 400, 3);
  AggregatorShards a(test_config(), nullptr, 2);
  a.add_all(to_add(events, 0, events.size()));
  const Changes c = a.take_changes(Aggregator::StateOutput::kInclude);
  ASSERT_FALSE(c.summaries.empty());
  const v1::PainPointSummary& target = c.summaries.back();
  const CurationOutcome renamed = a.rename(target.product_id(), target.id(), "Renamed");
  ASSERT_TRUE(renamed.ok()) << renamed.message;
  const Changes after = a.take_changes(Aggregator::StateOutput::kInclude);
  bool seen = false;
  for (const auto& s : after.summaries) {
    if (s.id() == target.id()) seen = s.label() == "Renamed";
  }
  EXPECT_TRUE(seen);
  EXPECT_FALSE(a.rename("product-none", target.id(), "x").ok());
}

}  // namespace
}  // namespace painpoint::aggregator

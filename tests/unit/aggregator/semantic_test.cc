// Semantic mode: assignment and merges decided on the sentence vectors the caller passes, in
// units of the product's background similarity.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "map_state.h"
#include "painpoint/aggregator/aggregator.h"
#include "unit_vector.h"

namespace painpoint::aggregator {
namespace {

using testing::MapState;

constexpr std::uint32_t kDims = 48;

// Unit vectors around `topics` random directions, plus `shared` times one direction common to
// every event of the product (what makes all texts of a narrow product look alike).
struct VectorStream {
  std::vector<v1::FeedbackEvent> events;
  std::vector<std::vector<float>> vectors;
  std::vector<int> topic;
};

using testing::unit;

std::vector<float> gaussian(std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(kDims);
  for (float& x : v) x = g(rng);
  return v;
}

VectorStream make_stream(const std::string& product, int topics, int n, float noise, float shared,
                         unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<float>> centres;
  for (int t = 0; t < topics; ++t) centres.push_back(unit(gaussian(rng)));
  const std::vector<float> common = unit(gaussian(rng));
  VectorStream s;
  for (int i = 0; i < n; ++i) {
    const int t = static_cast<int>(rng() % static_cast<unsigned>(topics));
    std::vector<float> v = gaussian(rng);
    for (std::uint32_t k = 0; k < kDims; ++k) {
      v[k] = centres[static_cast<std::size_t>(t)][k] + noise * v[k] / std::sqrt(float{kDims}) +
             shared * common[k];
    }
    v1::FeedbackEvent e;
    e.set_event_id(product + "-" + std::to_string(i));
    e.set_product_id(product);
    // Texts share no words across or within topics: only the vectors can group them.
    e.set_text("remark" + std::to_string(i) + " w" + std::to_string(i * 7 + 1));
    e.mutable_occurred_at()->set_seconds(1'790'000'000 + i * 60);
    e.set_source(v1::SOURCE_SUPPORT);
    s.events.push_back(std::move(e));
    s.vectors.push_back(unit(v));
    s.topic.push_back(t);
  }
  return s;
}

ClusterConfig semantic_config() {
  ClusterConfig cfg;
  cfg.encoder = EncoderMode::kSemantic;
  cfg.embedding_dims = kDims;
  return cfg;
}

// Pair counting: the share of same-topic pairs that share a pain point (recall) and of
// same-pain-point pairs that share a topic (precision).
struct PairScores {
  double precision = 0;
  double recall = 0;
};

PairScores pair_scores(const std::vector<int>& topic, const std::vector<std::string>& ids) {
  double both = 0;
  double same_topic = 0;
  double same_id = 0;
  for (std::size_t i = 0; i < topic.size(); ++i) {
    for (std::size_t j = i + 1; j < topic.size(); ++j) {
      const bool t = topic[i] == topic[j];
      const bool c = ids[i] == ids[j];
      both += (t && c) ? 1 : 0;
      same_topic += t ? 1 : 0;
      same_id += c ? 1 : 0;
    }
  }
  return PairScores{same_id > 0 ? both / same_id : 0, same_topic > 0 ? both / same_topic : 0};
}

std::vector<std::string> cluster(Aggregator& a, const VectorStream& s) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    ids.push_back(a.add(s.events[i], s.vectors[i]));
  }
  std::vector<std::string> resolved;
  for (const auto& id : ids) resolved.push_back(a.resolve(id));
  return resolved;
}

TEST(SemanticMode, GroupsByVectorsWhenTextsShareNoWords) {
  const VectorStream s = make_stream("p", 6, 1200, 0.9f, 0.0f, 7);
  Aggregator a(semantic_config(), nullptr);
  const auto ids = cluster(a, s);
  const PairScores q = pair_scores(s.topic, ids);
  EXPECT_GT(q.precision, 0.95);
  EXPECT_GT(q.recall, 0.8);
  EXPECT_LE(a.active_pain_points(), 12u);
}

// A product whose texts all look alike (a large shared component) gets a higher threshold from
// its own statistics: the same topics are found without retuning.
TEST(SemanticMode, ThresholdFollowsTheProductsBackgroundSimilarity) {
  for (const float shared : {0.0f, 1.0f, 2.0f}) {
    const VectorStream s = make_stream("p", 6, 1200, 0.9f, shared, 11);
    Aggregator a(semantic_config(), nullptr);
    const PairScores q = pair_scores(s.topic, cluster(a, s));
    EXPECT_GT(q.precision, 0.9) << "shared " << shared;
    EXPECT_GT(q.recall, 0.7) << "shared " << shared;
  }
}

TEST(SemanticMode, AnEventWithoutAVectorOpensItsOwnCandidate) {
  const VectorStream s = make_stream("p", 2, 50, 0.5f, 0.0f, 3);
  Aggregator a(semantic_config(), nullptr);
  cluster(a, s);
  v1::FeedbackEvent e = s.events[0];
  e.set_event_id("no-vector");
  const std::string id = a.add(e, {});
  const auto changes = a.take_changes();
  for (const auto& m : changes.memberships) {
    if (m.event_id != "no-vector") {
      EXPECT_NE(m.pain_point_id, id);
    }
  }
}

TEST(SemanticMode, SameInputSameOutputAndRestartContinuesExactly) {
  const VectorStream s = make_stream("p", 5, 900, 0.9f, 0.5f, 5);
  Aggregator whole(semantic_config(), nullptr);
  const auto expected = cluster(whole, s);

  MapState state;
  std::vector<std::string> got;
  {
    Aggregator first(semantic_config(), &state);
    for (std::size_t i = 0; i < 450; ++i) got.push_back(first.add(s.events[i], s.vectors[i]));
    state.apply(first.take_changes());
  }
  Aggregator second(semantic_config(), &state);
  for (std::size_t i = 450; i < s.events.size(); ++i) {
    got.push_back(second.add(s.events[i], s.vectors[i]));
  }
  for (auto& id : got) id = second.resolve(id);
  // The second half must be assigned as in one uninterrupted run (ids of the first half may
  // have been merged later in both runs: compare after resolving).
  for (std::size_t i = 450; i < s.events.size(); ++i) {
    EXPECT_EQ(got[i], expected[i]) << i;
  }
}

// A human merges two topics' pain points, then splits one topic back out: its vectors move with
// its events, so later events of that topic join the split-off pain point.
TEST(SemanticMode, SplitMovesTheEventsVectors) {
  const VectorStream s = make_stream("p", 2, 600, 0.5f, 0.0f, 21);
  Aggregator a(semantic_config(), nullptr);
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < 400; ++i) ids.push_back(a.add(s.events[i], s.vectors[i]));
  std::map<int, std::string> of_topic;
  for (std::size_t i = 0; i < 400; ++i) of_topic[s.topic[i]] = a.resolve(ids[i]);
  ASSERT_EQ(of_topic.size(), 2u);
  ASSERT_NE(of_topic[0], of_topic[1]);
  ASSERT_TRUE(a.merge("p", of_topic[1], of_topic[0]).ok());

  std::vector<v1::FeedbackEvent> moved;
  std::vector<float> vectors;
  for (std::size_t i = 0; i < 400; ++i) {
    if (s.topic[i] != 1) continue;
    moved.push_back(s.events[i]);
    vectors.insert(vectors.end(), s.vectors[i].begin(), s.vectors[i].end());
  }
  EXPECT_EQ(a.split("p", of_topic[0], moved).code, CurationOutcome::Code::kInvalid)
      << "semantic mode: refused without the vectors";
  const auto out = a.split("p", of_topic[0], moved, vectors);
  ASSERT_TRUE(out.ok()) << out.message;

  for (std::size_t i = 400; i < s.events.size(); ++i) {
    const std::string id = a.resolve(a.add(s.events[i], s.vectors[i]));
    EXPECT_EQ(id, s.topic[i] == 1 ? out.id : of_topic[0]) << "event " << i;
  }
}

TEST(SemanticMode, ConfigKeys) {
  ClusterConfig cfg;
  EXPECT_FALSE(apply_config_override(cfg, "encoder", "semantic"));
  EXPECT_EQ(cfg.encoder, EncoderMode::kSemantic);
  EXPECT_EQ(config_value(cfg, "encoder"), "semantic");
  EXPECT_EQ(apply_config_override(cfg, "encoder", "neural"), ConfigError::kBadValue);
  EXPECT_FALSE(apply_config_override(cfg, "encoder", "sparse"));
  EXPECT_EQ(config_value(cfg, "encoder"), "sparse");
  EXPECT_FALSE(apply_config_override(cfg, "semantic_join", "0.3"));
  EXPECT_DOUBLE_EQ(cfg.semantic_join, 0.3);
  EXPECT_EQ(apply_config_override(cfg, "semantic_prior", "-1"), ConfigError::kBadValue);
}

}  // namespace
}  // namespace painpoint::aggregator

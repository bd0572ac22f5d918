#include "painpoint/aggregator/aggregator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "map_state.h"

namespace painpoint::aggregator {
namespace {

v1::FeedbackEvent event(const std::string& id, const std::string& product, const std::string& text,
                        std::int64_t unix_s = 1'790'000'000, const std::string& account = "",
                        std::int64_t arr = 0, v1::Source source = v1::SOURCE_SUPPORT) {
  v1::FeedbackEvent e;
  e.set_event_id(id);
  e.set_product_id(product);
  e.set_text(text);
  e.mutable_occurred_at()->set_seconds(unix_s);
  e.set_account_id(account);
  e.set_account_arr_cents(arr);
  e.set_source(source);
  return e;
}

// A small labelled stream: a few topics, each with paraphrase templates and fillers.
struct Stream {
  std::vector<v1::FeedbackEvent> events;
  std::vector<int> topic;
};

Stream make_stream(const std::string& product, int n, unsigned seed) {
  const std::vector<std::vector<std::string>> topics = {
      {"app crashes when I open the camera", "camera crash on startup again",
       "the app keeps crashing whenever I use the camera"},
      {"invoice shows the wrong amount", "billing charged me twice this month",
       "double charge on my invoice, refund please"},
      {"cannot reset my password", "password reset email never arrives",
       "reset password link is broken"},
      {"export to csv is missing columns", "csv export drops the date column",
       "columns missing from the csv export"},
  };
  const std::vector<std::string> fillers = {
      "", " today", " since the update", " for my team", " on android", " on iphone"};
  std::mt19937 rng(seed);
  Stream s;
  for (int i = 0; i < n; ++i) {
    const int t = static_cast<int>(rng() % topics.size());
    const auto& tpl = topics[static_cast<std::size_t>(t)];
    std::string text = tpl[rng() % tpl.size()] + fillers[rng() % fillers.size()];
    s.events.push_back(event(product + "-e" + std::to_string(i), product, text,
                             1'790'000'000 + i * 3600, "acct-" + std::to_string(rng() % 20),
                             1000 * static_cast<std::int64_t>(1 + rng() % 5)));
    s.topic.push_back(t);
  }
  return s;
}

using testing::MapState;

ClusterConfig test_config() {
  ClusterConfig c;
  c.maintenance_interval = 50;
  return c;
}

TEST(Aggregator, SimilarTextsJoinDifferentTextsDoNot) {
  Aggregator a(test_config(), nullptr);
  const auto p1 = a.add(event("1", "p", "password reset email never arrives"));
  const auto p2 = a.add(event("2", "p", "the password reset email never arrives today"));
  const auto p3 = a.add(event("3", "p", "invoice shows the wrong amount"));
  EXPECT_EQ(p1, p2);
  EXPECT_NE(p1, p3);
  EXPECT_TRUE(p1.starts_with("pp-"));
}

TEST(Aggregator, EmergingBecomesActiveAtMinSupport) {
  ClusterConfig c = test_config();
  c.min_support = 3;
  Aggregator a(c, nullptr);
  a.add(event("1", "p", "dark mode is missing in settings"));
  a.add(event("2", "p", "dark mode missing in the settings"));
  auto ch = a.take_changes();
  EXPECT_TRUE(ch.summaries.empty()) << "candidates are not published";
  EXPECT_EQ(ch.memberships.size(), 2u);
  EXPECT_EQ(a.active_pain_points(), 0u);
  const auto id = a.add(event("3", "p", "dark mode is missing from settings"));
  ch = a.take_changes();
  ASSERT_EQ(ch.summaries.size(), 1u);
  const auto& s = ch.summaries[0];
  EXPECT_EQ(s.id(), id);
  EXPECT_EQ(s.status(), v1::STATUS_ACTIVE);
  EXPECT_EQ(s.event_count(), 3);
  EXPECT_GT(s.version(), 0);
  const std::int64_t first_version = s.version();
  EXPECT_EQ(a.active_pain_points(), 1u);
  a.add(event("4", "p", "dark mode settings please"));
  ch = a.take_changes();
  ASSERT_EQ(ch.summaries.size(), 1u);
  EXPECT_GT(ch.summaries[0].version(), first_version) << "version grows with every change";
}

TEST(Aggregator, SummaryStatsLabelsAndExemplars) {
  Aggregator a(test_config(), nullptr);
  const std::int64_t day = 86'400;
  const std::int64_t t0 = 1'790'000'000 - 1'790'000'000 % day;
  a.add(
      event("1", "p", "csv export drops the date column", t0, "acme", 500'00, v1::SOURCE_SUPPORT));
  a.add(event("2", "p", "csv export drops the date column again", t0 + day, "acme", 500'00,
              v1::SOURCE_SALES));
  a.add(event("3", "p", "the csv export drops the date column", t0 + 10 * day, "globex", 1200'00,
              v1::SOURCE_CUSTOMER));
  a.add(event("x", "p", "login page is slow", t0 + 10 * day));
  const auto ch = a.take_changes();
  ASSERT_EQ(ch.summaries.size(), 1u);
  const auto& s = ch.summaries[0];
  EXPECT_EQ(s.event_count(), 3);
  EXPECT_EQ(s.account_count(), 2);
  EXPECT_EQ(s.arr_at_risk_cents(), 1700'00);
  EXPECT_EQ(s.source_counts_size(), 3);
  EXPECT_EQ(s.first_seen().seconds(), t0);
  EXPECT_EQ(s.last_seen().seconds(), t0 + 10 * day);
  ASSERT_EQ(s.daily_counts_size(), 28);
  EXPECT_EQ(s.daily_counts(27), 1);
  EXPECT_EQ(s.daily_counts(27 - 9), 1);
  EXPECT_EQ(s.daily_counts(27 - 10), 1);
  EXPECT_GT(s.severity(), 0);
  ASSERT_GE(s.keywords_size(), 3);
  const std::set<std::string> kw(s.keywords().begin(), s.keywords().end());
  EXPECT_TRUE(kw.count("csv") && kw.count("export") && kw.count("date")) << s.label();
  EXPECT_FALSE(s.label().empty());
  ASSERT_GE(s.exemplars_size(), 1);
  EXPECT_NE(s.exemplars(0).text().find("csv export"), std::string::npos);
}

TEST(Aggregator, KeywordsPreferDistinctiveTerms) {
  // "app" is in every event of the product, "camera" only in this pain point: TF-IDF must
  // rank the distinctive term first.
  Aggregator a(test_config(), nullptr);
  for (int i = 0; i < 30; ++i) {
    a.add(event("o" + std::to_string(i), "p",
                "app settings page " + std::to_string(i % 3) + " app slow"));
  }
  for (int i = 0; i < 5; ++i)
    a.add(event("c" + std::to_string(i), "p", "camera crash when recording video in the app"));
  const auto ch = a.take_changes();
  bool found = false;
  for (const auto& s : ch.summaries) {
    if (s.exemplars_size() > 0 && s.exemplars(0).text().find("camera") != std::string::npos) {
      found = true;
      ASSERT_GE(s.keywords_size(), 2);
      EXPECT_NE(s.keywords(0), "app") << s.label();
    }
  }
  EXPECT_TRUE(found);
}

TEST(Aggregator, MergeKeepsTheOlderId) {
  ClusterConfig c;
  c.join_threshold = 0.99;  // near-duplicates open separate pain points...
  c.size_bonus = 0;
  c.merge_threshold = 0.5;  // ...and maintenance merges them
  c.maintenance_interval = 6;
  c.min_support = 3;
  Aggregator a(c, nullptr);
  std::string older, younger;
  for (int i = 0; i < 3; ++i)
    older = a.add(event("a" + std::to_string(i), "p", "card payment declined at checkout"));
  for (int i = 0; i < 3; ++i)
    younger =
        a.add(event("b" + std::to_string(i), "p", "card payment declined at checkout with visa"));
  ASSERT_NE(older, younger);
  EXPECT_EQ(a.resolve(younger), older);
  EXPECT_EQ(a.resolve(older), older);
  EXPECT_EQ(a.active_pain_points(), 1u);
  const auto ch = a.take_changes();
  bool merged_seen = false;
  for (const auto& s : ch.summaries) {
    if (s.id() == younger) {
      merged_seen = true;
      EXPECT_EQ(s.status(), v1::STATUS_MERGED);
      EXPECT_EQ(s.merged_into(), older);
    }
    if (s.id() == older) {
      EXPECT_EQ(s.event_count(), 6);
    }
  }
  EXPECT_TRUE(merged_seen);
}

TEST(Aggregator, ClustersTopicsOfASyntheticStream) {
  const auto s = make_stream("p", 400, 7);
  Aggregator a(test_config(), nullptr);
  std::map<std::string, std::map<int, int>> by_pp;
  std::vector<std::string> ids;
  for (const auto& e : s.events) ids.push_back(a.add(e));
  for (std::size_t i = 0; i < ids.size(); ++i) ++by_pp[a.resolve(ids[i])][s.topic[i]];
  // Purity: nearly every event sits in a pain point dominated by its own topic.
  int pure = 0;
  for (const auto& [id, counts] : by_pp) {
    int best = 0;
    for (const auto& [t, n] : counts) best = std::max(best, n);
    pure += best;
  }
  EXPECT_GE(pure, 390);
  EXPECT_LE(a.active_pain_points(), 12u);
  EXPECT_GE(a.active_pain_points(), 4u);
}

TEST(Aggregator, ProductsAreIsolated) {
  Aggregator a(test_config(), nullptr);
  std::set<std::string> pa, pb;
  for (int i = 0; i < 5; ++i) {
    pa.insert(a.add(event("a" + std::to_string(i), "alpha", "sync fails on large files")));
    pb.insert(a.add(event("b" + std::to_string(i), "beta", "sync fails on large files")));
  }
  ASSERT_EQ(pa.size(), 1u);
  ASSERT_EQ(pb.size(), 1u);
  EXPECT_NE(*pa.begin(), *pb.begin());
  for (const auto& s : a.take_changes().summaries) {
    EXPECT_EQ(s.event_count(), 5);
    EXPECT_EQ(s.id() == *pa.begin() ? "alpha" : "beta", s.product_id());
  }
}

struct RunResult {
  std::vector<std::string> ids;
  std::vector<std::string> resolved;
  std::vector<std::string> summaries;  // serialized, in emission order
  std::vector<std::string> state;      // key=value of all writes
  std::size_t active = 0;              // active_pain_points() at the end
};

void collect(const Changes& c, RunResult& r) {
  for (const auto& s : c.summaries) r.summaries.push_back(s.SerializeAsString());
  for (const auto& w : c.state) r.state.push_back(w.key + "=" + w.value.value_or("<del>"));
}

RunResult run(const std::vector<v1::FeedbackEvent>& events, std::size_t batch) {
  Aggregator a(test_config(), nullptr);
  RunResult r;
  for (std::size_t i = 0; i < events.size(); ++i) {
    r.ids.push_back(a.add(events[i]));
    if ((i + 1) % batch == 0) collect(a.take_changes(), r);
  }
  collect(a.take_changes(), r);
  for (const auto& id : r.ids) r.resolved.push_back(a.resolve(id));
  r.active = a.active_pain_points();
  return r;
}

std::vector<v1::FeedbackEvent> two_products(int n) {
  auto a = make_stream("alpha", n, 1);
  auto b = make_stream("beta", n, 2);
  std::vector<v1::FeedbackEvent> all;
  for (int i = 0; i < n; ++i) {
    all.push_back(a.events[static_cast<std::size_t>(i)]);
    all.push_back(b.events[static_cast<std::size_t>(i)]);
  }
  return all;
}

TEST(Aggregator, DeterministicAcrossRuns) {
  const auto events = two_products(300);
  const auto r1 = run(events, 37);
  const auto r2 = run(events, 37);
  EXPECT_EQ(r1.ids, r2.ids);
  EXPECT_EQ(r1.resolved, r2.resolved);
  EXPECT_EQ(r1.summaries, r2.summaries);
  EXPECT_EQ(r1.state, r2.state);
}

// Runs the first `half` events (a batch boundary) on one Aggregator that persists into a store,
// then the rest on a second one that loads from that store, as a restart does.
RunResult run_with_restart(const std::vector<v1::FeedbackEvent>& events, std::size_t batch,
                           std::size_t half) {
  MapState store;
  RunResult r;
  {
    Aggregator a(test_config(), &store);
    for (std::size_t i = 0; i < half; ++i) {
      r.ids.push_back(a.add(events[i]));
      if ((i + 1) % batch == 0) {
        auto c = a.take_changes();
        store.apply(c);
        collect(c, r);
      }
    }
  }
  Aggregator b(test_config(), &store);  // restart: lazily loads the products from `store`
  for (std::size_t i = half; i < events.size(); ++i) {
    r.ids.push_back(b.add(events[i]));
    if ((i + 1) % batch == 0) {
      auto c = b.take_changes();
      store.apply(c);
      collect(c, r);
    }
  }
  auto c = b.take_changes();
  store.apply(c);
  collect(c, r);
  for (const auto& id : r.ids) r.resolved.push_back(b.resolve(id));
  r.active = b.active_pain_points();
  return r;
}

TEST(Aggregator, StateRoundTripContinuesExactly) {
  const auto events = two_products(300);
  const std::size_t batch = 37;
  const auto full = run(events, batch);
  const auto r = run_with_restart(events, batch, 37 * 8);
  EXPECT_EQ(r.ids, full.ids);
  EXPECT_EQ(r.resolved, full.resolved);
  EXPECT_EQ(r.summaries, full.summaries);
  EXPECT_EQ(r.state, full.state);
  EXPECT_EQ(r.active, full.active);
}

// A state record that does not decode is reported with its key, never skipped: the product it
// belongs to would otherwise go on without that pain point and its counts.
TEST(Aggregator, UndecodableStateRecordIsReportedWithItsKey) {
  const auto events = two_products(200);
  for (const std::string part : {"/c/", "/m", "/d/"}) {
    MapState store;
    {
      Aggregator a(test_config(), &store);
      for (const auto& e : events) (void)a.add(e);
      store.apply(a.take_changes());
    }
    std::string damaged;
    for (auto& [key, value] : store.kv) {
      if (key.starts_with("agg/beta" + part)) {
        damaged = key;
        value = "\xff\xff\xff\xff";
        break;
      }
    }
    ASSERT_FALSE(damaged.empty()) << part;
    Aggregator b(test_config(), &store);
    (void)b.add(events[0]);  // alpha: intact
    EXPECT_FALSE(b.state_error().has_value()) << *b.state_error();
    (void)b.add(events[1]);  // beta loads its state
    ASSERT_TRUE(b.state_error().has_value()) << part;
    EXPECT_NE(b.state_error()->find("'" + damaged + "'"), std::string::npos) << *b.state_error();
  }
}

// Hundreds of pain points share the common words, so their posting lists span several blocks
// and most candidates are ruled out from their hot records; a restart (which rebuilds both from
// the persisted clusters) must continue exactly.
TEST(Aggregator, ManyPainPointsSharingCommonTerms) {
  constexpr int kTopics = 600;
  auto word = [](int i) {
    static const char* syll[] = {"ka", "lo", "mi", "ne", "pu", "ra", "si", "to"};
    std::string w;
    for (int k = 0; k < 4; ++k, i /= 8) w += syll[i % 8];
    return w + "x";
  };
  const std::vector<std::string> common = {"today", "again", "please", "team", "update"};
  std::vector<v1::FeedbackEvent> events;
  std::vector<int> topic;
  for (int i = 0; i < kTopics * 6; ++i) {
    const int t = static_cast<int>((static_cast<long>(i) * 7919) % kTopics);
    events.push_back(event("e" + std::to_string(i), "p",
                           word(2 * t) + " " + word(2 * t + 1) +
                               " app is slow and shows an error " +
                               common[static_cast<std::size_t>(i) % common.size()],
                           1'790'000'000 + i));
    topic.push_back(t);
  }
  const auto full = run(events, 97);
  EXPECT_GE(full.active, 100u) << "the common terms' posting lists must span several blocks";

  const auto r = run_with_restart(events, 97, 97 * 20);
  EXPECT_EQ(r.ids, full.ids);
  EXPECT_EQ(r.resolved, full.resolved);
  EXPECT_EQ(r.summaries, full.summaries);
  EXPECT_EQ(r.state, full.state);
  EXPECT_EQ(r.active, full.active);
}

// Latest summary per id, serialized, from a sequence of Changes.
using LatestSummaries = std::map<std::string, std::string>;
void keep_latest(const Changes& c, LatestSummaries& latest) {
  for (const auto& s : c.summaries) latest[s.id()] = s.SerializeAsString();
}

TEST(Aggregator, DeferredStateIsRebuiltByReplayingSinceTheCheckpoint) {
  const auto events = two_products(300);
  const std::size_t checkpoint_at = 211;  // not a batch boundary of either run below
  const std::size_t crash_at = 503;

  // Reference: state written with every batch.
  MapState every_batch;
  LatestSummaries reference;
  {
    Aggregator a(test_config(), &every_batch);
    for (std::size_t i = 0; i < events.size(); ++i) {
      a.add(events[i]);
      if ((i + 1) % 29 == 0) {
        auto c = a.take_changes();
        every_batch.apply(c);
        keep_latest(c, reference);
      }
    }
    auto c = a.take_changes();
    every_batch.apply(c);
    keep_latest(c, reference);
  }

  // Deferred: state only at one checkpoint, then a crash loses everything in memory.
  MapState store;
  LatestSummaries published;
  {
    Aggregator a(test_config(), &store);
    for (std::size_t i = 0; i < crash_at; ++i) {
      a.add(events[i]);
      if (i + 1 == checkpoint_at) {
        auto c = a.take_changes(Aggregator::StateOutput::kInclude);
        EXPECT_FALSE(c.state.empty());
        store.apply(c);
        keep_latest(c, published);
      } else if ((i + 1) % 41 == 0) {
        auto c = a.take_changes(Aggregator::StateOutput::kDefer);
        EXPECT_TRUE(c.state.empty()) << "state is deferred";
        keep_latest(c, published);
        a.evict_idle();  // must not drop products whose state is not saved
      }
    }
    keep_latest(a.take_changes(Aggregator::StateOutput::kDefer), published);
  }
  // Recovery: replay what came after the checkpoint (other batch sizes), then carry on.
  Aggregator b(test_config(), &store);
  LatestSummaries replayed;
  for (std::size_t i = checkpoint_at; i < crash_at; ++i) {
    b.add(events[i]);
    if ((i + 1) % 17 == 0) keep_latest(b.take_changes(Aggregator::StateOutput::kDefer), replayed);
  }
  keep_latest(b.take_changes(Aggregator::StateOutput::kDefer), replayed);
  for (const auto& [id, summary] : replayed) {
    v1::PainPointSummary x, y;
    ASSERT_TRUE(x.ParseFromString(summary));
    ASSERT_TRUE(y.ParseFromString(published.at(id)));
    // Severity weighs recency against the product's newest event at the time of publication,
    // so it alone may differ when the same pain point is published at another moment.
    x.clear_severity();
    y.clear_severity();
    EXPECT_EQ(x.DebugString(), y.DebugString())
        << "replay re-derives the published summary of " << id;
  }
  for (std::size_t i = crash_at; i < events.size(); ++i) {
    b.add(events[i]);
    if ((i + 1) % 50 == 0) keep_latest(b.take_changes(Aggregator::StateOutput::kDefer), published);
  }
  auto c = b.take_changes(Aggregator::StateOutput::kInclude);
  store.apply(c);
  keep_latest(c, published);

  EXPECT_EQ(store.kv, every_batch.kv) << "the same state as writing it with every batch";
  for (const auto& [id, summary] : reference) {
    v1::PainPointSummary want;
    v1::PainPointSummary got;
    ASSERT_TRUE(want.ParseFromString(summary));
    ASSERT_TRUE(got.ParseFromString(published.at(id)));
    EXPECT_EQ(got.version(), want.version()) << id << ": versions do not depend on batching";
    EXPECT_EQ(got.event_count(), want.event_count()) << id;
    EXPECT_EQ(got.status(), want.status()) << id;
  }
}

// A checkpoint spread over batches saves one product's whole state at a time. After a crash,
// replaying each product's events since its own save (what the store's arrival log keeps)
// continues exactly where writing the state with every batch would be.
TEST(Aggregator, StateSavedAProductAtATimeIsRebuiltPerProduct) {
  const auto events = two_products(300);
  const std::size_t alpha_saved_at = 151, beta_saved_at = 262, crash_at = 430;
  auto only = [](std::string product) {
    return [product](std::string_view id) { return id == product; };
  };

  MapState every_batch;
  {
    Aggregator a(test_config(), &every_batch);
    for (std::size_t i = 0; i < events.size(); ++i) {
      a.add(events[i]);
      if ((i + 1) % 29 == 0) every_batch.apply(a.take_changes());
    }
    every_batch.apply(a.take_changes());
  }

  MapState store;
  {
    Aggregator a(test_config(), &store);
    for (std::size_t i = 0; i < crash_at; ++i) {
      a.add(events[i]);
      if (i + 1 == alpha_saved_at || i + 1 == beta_saved_at) {
        const Changes c = a.take_changes(only(i + 1 == alpha_saved_at ? "alpha" : "beta"));
        EXPECT_FALSE(c.state.empty());
        for (const auto& w : c.state) {
          EXPECT_EQ(w.product_id, i + 1 == alpha_saved_at ? "alpha" : "beta") << w.key;
        }
        store.apply(c);
      } else if ((i + 1) % 41 == 0) {
        EXPECT_TRUE(a.take_changes(Aggregator::StateOutput::kDefer).state.empty());
      }
    }
  }
  Aggregator b(test_config(), &store);
  for (std::size_t i = 0; i < crash_at; ++i) {
    const bool alpha = events[i].product_id() == "alpha";
    if (i >= (alpha ? alpha_saved_at : beta_saved_at)) b.add(events[i]);
  }
  for (std::size_t i = crash_at; i < events.size(); ++i) b.add(events[i]);
  store.apply(b.take_changes(Aggregator::StateOutput::kInclude));
  EXPECT_EQ(store.kv, every_batch.kv) << "the same state as writing it with every batch";
}

TEST(Aggregator, EvictIdleKeepsProductsWithDeferredState) {
  MapState store;
  Aggregator a(test_config(), &store);
  for (const auto& e : make_stream("p", 60, 3).events) a.add(e);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(a.take_changes(Aggregator::StateOutput::kDefer).state.empty());
    a.evict_idle();
  }
  EXPECT_GT(a.active_pain_points(), 0u) << "unsaved state must stay in memory";
  const Changes saved = a.take_changes(Aggregator::StateOutput::kInclude);
  EXPECT_FALSE(saved.state.empty()) << "the deferred state is handed out at last";
  store.apply(saved);
  a.take_changes();
  a.evict_idle();
  EXPECT_EQ(a.active_pain_points(), 0u) << "saved and idle: evicted";
}

TEST(Aggregator, EvictIdleReloadsFromState) {
  MapState store;
  Aggregator a(test_config(), &store);
  const auto s = make_stream("p", 60, 3);
  std::vector<std::string> ids;
  for (const auto& e : s.events) ids.push_back(a.add(e));
  store.apply(a.take_changes());
  store.apply(a.take_changes());
  a.evict_idle();
  a.evict_idle();
  EXPECT_EQ(a.active_pain_points(), 0u) << "evicted from memory";
  const auto again = a.add(event("late", "p", s.events[0].text()));
  EXPECT_EQ(a.resolve(again), a.resolve(ids[0]));
  EXPECT_GT(a.active_pain_points(), 0u);
}

// last_seen is what latency is measured against (how old the newest event in a summary is), so
// it keeps the sub-second part of occurred_at, also across an eviction and reload from state.
TEST(Aggregator, FirstAndLastSeenKeepMicroseconds) {
  MapState store;
  Aggregator a(test_config(), &store);
  const std::string text = "csv export drops the date column";
  auto first = event("1", "p", text, 1'790'000'000);
  first.mutable_occurred_at()->set_nanos(250'000'000);
  auto second = event("2", "p", text, 1'790'000'005);
  second.mutable_occurred_at()->set_nanos(987'654'321);
  a.add(first);
  a.add(event("2b", "p", text, 1'790'000'003));
  a.add(second);
  auto ch = a.take_changes();
  ASSERT_EQ(ch.summaries.size(), 1u);
  EXPECT_EQ(ch.summaries[0].first_seen().seconds(), 1'790'000'000);
  EXPECT_EQ(ch.summaries[0].first_seen().nanos(), 250'000'000);
  EXPECT_EQ(ch.summaries[0].last_seen().seconds(), 1'790'000'005);
  EXPECT_EQ(ch.summaries[0].last_seen().nanos(), 987'654'000) << "microsecond resolution";
  store.apply(ch);
  store.apply(a.take_changes());
  a.evict_idle();
  a.evict_idle();
  ASSERT_EQ(a.active_pain_points(), 0u);
  a.add(event("3", "p", text, 1'790'000'001));
  ch = a.take_changes();
  ASSERT_EQ(ch.summaries.size(), 1u);
  EXPECT_EQ(ch.summaries[0].event_count(), 4);
  EXPECT_EQ(ch.summaries[0].first_seen().nanos(), 250'000'000);
  EXPECT_EQ(ch.summaries[0].last_seen().seconds(), 1'790'000'005);
  EXPECT_EQ(ch.summaries[0].last_seen().nanos(), 987'654'000);
}

}  // namespace
}  // namespace painpoint::aggregator

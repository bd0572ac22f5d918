#include "metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

namespace painpoint::service {
namespace {

TEST(MetricsRegistry, RendersExactExpositionText) {
  MetricsRegistry registry;
  Counter& consumed = registry.counter("painpoint_events_consumed_total", "Events consumed.",
                                       {{"topic", "feedback.sales"}});
  Counter& consumed_support = registry.counter("painpoint_events_consumed_total",
                                               "Events consumed.", {{"topic", "feedback.support"}});
  Gauge& active = registry.gauge("painpoint_pain_points_active", "Active pain points.");
  registry.gauge_callback("painpoint_store_events", "Distinct events in the store.",
                          [] { return 42.0; });
  consumed.inc();
  consumed.inc(2);
  consumed_support.inc(5);
  active.set(7);
  active.add(0.5);

  EXPECT_EQ(registry.render(),
            "# HELP painpoint_events_consumed_total Events consumed.\n"
            "# TYPE painpoint_events_consumed_total counter\n"
            "painpoint_events_consumed_total{topic=\"feedback.sales\"} 3\n"
            "painpoint_events_consumed_total{topic=\"feedback.support\"} 5\n"
            "# HELP painpoint_pain_points_active Active pain points.\n"
            "# TYPE painpoint_pain_points_active gauge\n"
            "painpoint_pain_points_active 7.5\n"
            "# HELP painpoint_store_events Distinct events in the store.\n"
            "# TYPE painpoint_store_events gauge\n"
            "painpoint_store_events 42\n");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry registry;
  Histogram& latency = registry.histogram("painpoint_batch_commit_seconds", "Batch commit latency.",
                                          {0.25, 0.5, 1}, {{"stage", "a"}});
  latency.observe(0.125);
  latency.observe(0.25);  // `le` is inclusive
  latency.observe(0.375);
  latency.observe(3);
  latency.observe(std::nan(""));  // dropped

  EXPECT_EQ(registry.render(),
            "# HELP painpoint_batch_commit_seconds Batch commit latency.\n"
            "# TYPE painpoint_batch_commit_seconds histogram\n"
            "painpoint_batch_commit_seconds_bucket{stage=\"a\",le=\"0.25\"} 2\n"
            "painpoint_batch_commit_seconds_bucket{stage=\"a\",le=\"0.5\"} 3\n"
            "painpoint_batch_commit_seconds_bucket{stage=\"a\",le=\"1\"} 3\n"
            "painpoint_batch_commit_seconds_bucket{stage=\"a\",le=\"+Inf\"} 4\n"
            "painpoint_batch_commit_seconds_sum{stage=\"a\"} 3.75\n"
            "painpoint_batch_commit_seconds_count{stage=\"a\"} 4\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry
      .counter("x_total", "line one\nback\\slash \"quoted\"",
               {{"path", "a\"b\\c\nd"}, {"app", "z"}})
      .inc();
  EXPECT_EQ(registry.render(),
            "# HELP x_total line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE x_total counter\n"
            "x_total{app=\"z\",path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRegistry, SameNameAndLabelsReturnsSameMetric) {
  MetricsRegistry registry;
  Counter& a = registry.counter("a_total", "help", {{"k", "v"}});
  Counter& b = registry.counter("a_total", "help", {{"k", "v"}});
  Counter& c = registry.counter("a_total", "help", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  // Label order does not make a different series.
  Gauge& g1 = registry.gauge("g", "help", {{"x", "1"}, {"y", "2"}});
  Gauge& g2 = registry.gauge("g", "help", {{"y", "2"}, {"x", "1"}});
  EXPECT_EQ(&g1, &g2);
}

TEST(MetricsRegistry, RejectsInvalidRegistrations) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.gauge("1abc", "h"), std::invalid_argument);
  EXPECT_THROW(registry.gauge("bad-name", "h"), std::invalid_argument);
  EXPECT_THROW(registry.gauge("", "h"), std::invalid_argument);
  EXPECT_THROW(registry.counter("no_suffix", "h"), std::invalid_argument);
  EXPECT_THROW(registry.gauge("g", "h", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.gauge("g", "h", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.gauge("g", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {1, 0.5}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {1, 1}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {std::numeric_limits<double>::infinity()}),
               std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "h", {1}, {{"le", "x"}}), std::invalid_argument);

  registry.gauge("taken", "help");
  EXPECT_THROW(registry.counter("taken", "help"), std::invalid_argument);  // type (and suffix)
  registry.counter("taken_total", "help");
  EXPECT_THROW(registry.gauge("taken_total", "help"), std::invalid_argument);
  EXPECT_THROW(registry.counter("taken_total", "other help"), std::invalid_argument);
  registry.histogram("lat_seconds", "help", {1, 2});
  EXPECT_THROW(registry.histogram("lat_seconds", "help", {1, 3}), std::invalid_argument);
  registry.gauge_callback("cb", "help", [] { return 1.0; });
  EXPECT_THROW(registry.gauge_callback("cb", "help", [] { return 2.0; }), std::invalid_argument);
  EXPECT_THROW(registry.gauge("cb", "help"), std::invalid_argument);
}

TEST(MetricsRegistry, CallbackEvaluatedAtScrapeAndThrowingCallbackIsSkipped) {
  MetricsRegistry registry;
  double lag = 1;
  registry.gauge_callback("painpoint_consumer_lag", "Lag.", [&] { return lag; }, {{"topic", "t"}});
  registry.counter_callback("ext_total", "External.",
                            []() -> double { throw std::runtime_error("source gone"); });
  registry.gauge_callback("special", "Special values.",
                          [] { return std::numeric_limits<double>::infinity(); });
  EXPECT_NE(registry.render().find("painpoint_consumer_lag{topic=\"t\"} 1\n"), std::string::npos);
  lag = 250;
  std::string text = registry.render();
  EXPECT_NE(text.find("painpoint_consumer_lag{topic=\"t\"} 250\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE ext_total counter\n"), std::string::npos);
  EXPECT_EQ(text.find("\next_total "), std::string::npos);
  EXPECT_NE(text.find("special +Inf\n"), std::string::npos);
}

TEST(MetricsRegistry, FormatsValues) {
  EXPECT_EQ(format_metric_value(0), "0");
  EXPECT_EQ(format_metric_value(200000), "200000");
  EXPECT_EQ(format_metric_value(1234567), "1234567");
  EXPECT_EQ(format_metric_value(-3), "-3");
  EXPECT_EQ(format_metric_value(-2.5), "-2.5");
  EXPECT_EQ(format_metric_value(0.005), "0.005");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
  EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(exponential_buckets(0.25, 2, 3), (std::vector<double>{0.25, 0.5, 1}));
}

TEST(MetricsRegistry, ConcurrentUpdatesAreExactAndRenderingIsSafe) {
  MetricsRegistry registry;
  Counter& counter = registry.counter("hits_total", "Hits.");
  Gauge& gauge = registry.gauge("level", "Level.");
  Histogram& hist = registry.histogram("op_seconds", "Ops.", default_latency_buckets());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50'000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = registry.render();
      ASSERT_NE(text.find("hits_total"), std::string::npos);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter.inc();
        gauge.add(1);
        hist.observe(t % 2 == 0 ? 0.002 : 20.0);
        // Registration from other threads concurrently with updates and scrapes.
        if (i % 10'000 == 0) registry.counter("hits_total", "Hits.", {{"t", std::to_string(t)}});
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();

  constexpr std::uint64_t kTotal = std::uint64_t{kThreads} * kPerThread;
  EXPECT_EQ(counter.value(), kTotal);
  EXPECT_EQ(gauge.value(), static_cast<double>(kTotal));
  Histogram::Snapshot snap = hist.snapshot();
  EXPECT_EQ(snap.count, kTotal);
  EXPECT_EQ(snap.cumulative_counts.front(), 0u);     // 0.001 bucket
  EXPECT_EQ(snap.cumulative_counts[1], kTotal / 2);  // 0.0025 bucket
  EXPECT_EQ(snap.cumulative_counts[snap.cumulative_counts.size() - 2], kTotal / 2);  // le=10
  EXPECT_NEAR(snap.sum, (kTotal / 2) * (0.002 + 20.0), 1e-3);
  std::string text = registry.render();
  EXPECT_NE(text.find("hits_total 400000\n"), std::string::npos);
  EXPECT_NE(text.find("op_seconds_count 400000\n"), std::string::npos);
}

}  // namespace
}  // namespace painpoint::service

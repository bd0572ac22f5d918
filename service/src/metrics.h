// Prometheus metrics for `painpoint serve`: a registry rendered as text exposition format 0.0.4.
//
// Contract:
// - Register each metric once (at wiring time) and keep the returned reference; updating it is a
//   relaxed atomic operation, lock-free, safe from any thread, and never allocates. Registration
//   and render() take a mutex and may allocate: keep them off the hot path.
// - Metric objects live as long as the registry; references stay valid (metrics are never removed).
// - Registering the same name + labels + type again returns the same object, so two components can
//   share a metric; a different type, help text or bucket layout for an existing name throws.
// - Invalid names, label names or bucket bounds throw std::invalid_argument at registration, so a
//   typo fails at start-up rather than producing a scrape Prometheus rejects.
// - Callback metrics run on the scraping thread, outside the registry lock: they must be quick,
//   thread-safe, and must not outlive what they capture (capture a shared_ptr/weak_ptr, or make
//   sure the captured object outlives the registry). A callback that throws is logged and its
//   sample is left out of that scrape.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace painpoint::service {

// Label name/value pairs of one series, e.g. {{"topic", "feedback.sales"}}. Order does not matter:
// the registry sorts them by name, so {a,b} and {b,a} name the same series.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Monotonic count since the process started. Names must end in `_total`.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A value that goes up and down (queue depth, lag, store size).
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void sub(double d) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Distribution over fixed buckets (upper bounds, inclusive, strictly increasing; +Inf is implicit).
class Histogram {
 public:
  struct Snapshot {
    std::vector<std::uint64_t> cumulative_counts;  // one per bound, then +Inf (== count)
    double sum = 0.0;
    std::uint64_t count = 0;
  };

  // Prefer MetricsRegistry::histogram(); this validates the bounds too.
  explicit Histogram(std::vector<double> upper_bounds);

  // NaN observations are dropped: one would poison the sum forever.
  void observe(double value) noexcept;
  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }
  // Not an atomic snapshot across buckets: a concurrent observe() may be half-visible, which
  // Prometheus tolerates. `count` is derived from the buckets so the +Inf bucket always equals it.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// Latency buckets in seconds, 1 ms .. 10 s (batch commits, HTTP handlers).
const std::vector<double>& default_latency_buckets();
// start, start*factor, ... (count bounds). Throws std::invalid_argument on start <= 0, factor <= 1.
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);

class MetricsRegistry {
 public:
  // Content-Type for the /metrics response.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  Counter& counter(std::string_view name, std::string_view help, MetricLabels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, MetricLabels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds, MetricLabels labels = {});

  // Evaluated at scrape time, for values owned elsewhere (store size, consumer lag, counters kept
  // by another module). Registering the same name + labels twice throws.
  void gauge_callback(std::string_view name, std::string_view help, std::function<double()> fn,
                      MetricLabels labels = {});
  void counter_callback(std::string_view name, std::string_view help, std::function<double()> fn,
                        MetricLabels labels = {});

  // The whole exposition: families sorted by name, series in registration order. Thread-safe.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    MetricLabels labels;
    std::string label_text;  // pre-rendered `a="x",b="y"`, so a scrape does not escape again
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> callback;
  };
  struct Family {
    std::string help;
    Type type;
    std::vector<double> bounds;  // histograms only
    std::vector<std::unique_ptr<Series>> series;
  };

  static const char* type_name(Type type);
  // Finds or creates a series; a non-empty `callback` makes it a callback series.
  Series& series_for(std::string_view name, std::string_view help, Type type,
                     std::vector<double> bounds, MetricLabels labels,
                     std::function<double()> callback);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

// Exposed for tests and for other text exporters.
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);
std::string escape_label_value(std::string_view value);
std::string format_metric_value(double value);

}  // namespace painpoint::service

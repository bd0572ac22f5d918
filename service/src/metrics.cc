#include "metrics.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace painpoint::service {

namespace {

bool is_name_start(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool is_name_char(char c, bool allow_colon) {
  return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void validate_bounds(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   std::string_view label_text, std::string_view extra_label,
                   std::string_view value) {
  out.append(name).append(suffix);
  if (!label_text.empty() || !extra_label.empty()) {
    out += '{';
    out.append(label_text);
    if (!label_text.empty() && !extra_label.empty()) out += ',';
    out.append(extra_label);
    out += '}';
  }
  out += ' ';
  out.append(value);
  out += '\n';
}

std::string format_uint(std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  (void)ec;  // 24 chars always fit a uint64
  return std::string(buf, end);
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0], true)) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_name_char(c, true); });
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0], false)) return false;
  // Names starting with "__" are reserved for Prometheus itself.
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_name_char(c, false); });
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counters, sizes) print as plain integers: shell tools compare them as such,
  // and "2e+05" would read as 2 there. Others: shortest round-trip form ("0.005", "1e-09").
  if (value == std::trunc(value) && std::fabs(value) < 9.007199254740992e15) {
    return std::to_string(static_cast<std::int64_t>(value));
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  validate_bounds(bounds_);
}

void Histogram::observe(double value) noexcept {
  if (std::isnan(value)) return;
  // `le` is inclusive: the first bound >= value owns it; past the last bound it is +Inf's.
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  auto index = static_cast<std::size_t>(it - bounds_.begin());
  counts_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.cumulative_counts.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts.push_back(running);
  }
  snap.count = running;
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

const std::vector<double>& default_latency_buckets() {
  static const std::vector<double> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
  return kBuckets;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0.0) || !(factor > 1.0)) {
    throw std::invalid_argument("exponential_buckets needs start > 0 and factor > 1");
  }
  std::vector<double> out;
  out.reserve(count);
  double v = start;
  for (std::size_t i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

MetricsRegistry::~MetricsRegistry() = default;

const char* MetricsRegistry::type_name(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

MetricsRegistry::Series& MetricsRegistry::series_for(std::string_view name, std::string_view help,
                                                     Type type, std::vector<double> bounds,
                                                     MetricLabels labels,
                                                     std::function<double()> callback) {
  const bool is_callback = static_cast<bool>(callback);
  if (!is_valid_metric_name(name)) {
    throw std::invalid_argument("invalid metric name: '" + std::string(name) + "'");
  }
  if (type == Type::kCounter && !ends_with(name, "_total")) {
    throw std::invalid_argument("counter names end in _total: '" + std::string(name) + "'");
  }
  std::sort(labels.begin(), labels.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i].first;
    if (!is_valid_label_name(label) || (type == Type::kHistogram && label == "le")) {
      throw std::invalid_argument("invalid label name '" + label + "' on " + std::string(name));
    }
    if (i > 0 && labels[i - 1].first == label) {
      throw std::invalid_argument("duplicate label '" + label + "' on " + std::string(name));
    }
  }
  if (type == Type::kHistogram) validate_bounds(bounds);

  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{std::string(help), type, bounds, {}}).first;
  }
  Family& family = it->second;
  if (family.type != type) {
    throw std::invalid_argument("metric " + std::string(name) + " already registered as a " +
                                type_name(family.type));
  }
  if (family.help != help) {
    throw std::invalid_argument("metric " + std::string(name) + " registered with other help");
  }
  if (family.bounds != bounds) {
    throw std::invalid_argument("histogram " + std::string(name) +
                                " registered with other buckets");
  }
  for (auto& existing : family.series) {
    if (existing->labels == labels) {
      if (is_callback || existing->callback) {
        throw std::invalid_argument("metric " + std::string(name) +
                                    " with these labels is already registered");
      }
      return *existing;
    }
  }

  auto series = std::make_unique<Series>();
  for (const auto& [label, value] : labels) {
    if (!series->label_text.empty()) series->label_text += ',';
    series->label_text += label + "=\"" + escape_label_value(value) + "\"";
  }
  series->labels = std::move(labels);
  series->callback = std::move(callback);
  if (!is_callback) {
    switch (type) {
      case Type::kCounter:
        series->counter = std::make_unique<Counter>();
        break;
      case Type::kGauge:
        series->gauge = std::make_unique<Gauge>();
        break;
      case Type::kHistogram:
        series->histogram = std::make_unique<Histogram>(std::move(bounds));
        break;
    }
  }
  family.series.push_back(std::move(series));
  return *family.series.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  MetricLabels labels) {
  return *series_for(name, help, Type::kCounter, {}, std::move(labels), nullptr).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, MetricLabels labels) {
  return *series_for(name, help, Type::kGauge, {}, std::move(labels), nullptr).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> upper_bounds, MetricLabels labels) {
  return *series_for(name, help, Type::kHistogram, std::move(upper_bounds), std::move(labels),
                     nullptr)
              .histogram;
}

void MetricsRegistry::gauge_callback(std::string_view name, std::string_view help,
                                     std::function<double()> fn, MetricLabels labels) {
  if (!fn) throw std::invalid_argument("empty callback for " + std::string(name));
  series_for(name, help, Type::kGauge, {}, std::move(labels), std::move(fn));
}

void MetricsRegistry::counter_callback(std::string_view name, std::string_view help,
                                       std::function<double()> fn, MetricLabels labels) {
  if (!fn) throw std::invalid_argument("empty callback for " + std::string(name));
  series_for(name, help, Type::kCounter, {}, std::move(labels), std::move(fn));
}

std::string MetricsRegistry::render() const {
  // Collect under the lock, format and run callbacks outside it: a slow or re-entrant callback
  // must not stall registration or deadlock. Series are never removed, so the pointers stay valid.
  struct Item {
    const std::string* name;
    const Family* family;
    const Series* series;
    std::function<double()> callback;
  };
  std::vector<Item> items;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, family] : families_) {
      for (const auto& series : family.series) {
        items.push_back(Item{&name, &family, series.get(), series->callback});
      }
    }
  }

  std::string out;
  const Family* current = nullptr;
  for (const Item& item : items) {
    const Family& family = *item.family;
    const std::string& name = *item.name;
    const Series& series = *item.series;
    if (current != &family) {
      current = &family;
      out += "# HELP " + name + " " + escape_help(family.help) + "\n";
      out += "# TYPE " + name + " " + type_name(family.type) + "\n";
    }
    if (item.callback) {
      try {
        append_sample(out, name, "", series.label_text, "", format_metric_value(item.callback()));
      } catch (const std::exception& e) {
        spdlog::warn("metrics: callback for {} threw: {}", name, e.what());
      } catch (...) {
        spdlog::warn("metrics: callback for {} threw", name);
      }
    } else if (series.counter) {
      append_sample(out, name, "", series.label_text, "", format_uint(series.counter->value()));
    } else if (series.gauge) {
      append_sample(out, name, "", series.label_text, "",
                    format_metric_value(series.gauge->value()));
    } else if (series.histogram) {
      Histogram::Snapshot snap = series.histogram->snapshot();
      const auto& bounds = series.histogram->upper_bounds();
      for (std::size_t i = 0; i <= bounds.size(); ++i) {
        std::string le =
            "le=\"" + (i < bounds.size() ? format_metric_value(bounds[i]) : std::string("+Inf")) +
            "\"";
        append_sample(out, name, "_bucket", series.label_text, le,
                      format_uint(snap.cumulative_counts[i]));
      }
      append_sample(out, name, "_sum", series.label_text, "", format_metric_value(snap.sum));
      append_sample(out, name, "_count", series.label_text, "", format_uint(snap.count));
    }
  }
  return out;
}

}  // namespace painpoint::service

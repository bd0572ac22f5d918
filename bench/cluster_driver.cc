// Dev driver for the aggregator: the same loop as `painpoint cluster` (service/src/
// cluster_command.cc) but with plain proto3-JSON parsing instead of ingest validation, so that
// clustering can be measured and tuned independently of the other modules.
//
//   cluster_driver --input EVENTS.jsonl --output ASSIGNMENTS.jsonl [--vectors FILE|none]
//                  [--summaries SUMMARIES.jsonl] [key=value ...]   (overrides, see config.h)
//
// --summaries writes the last summary of every active pain point (proto3 JSON, one per line):
// labels, keywords and exemplars to read after a run.
//
// --alerts RULES evaluates the alert rules of RULES (lines `alerts.rules.<name> = <rule>`, as in
// serve's configuration) on the summaries of every batch, with the episodes and once-per-id
// promise of serve, and prints each alert with the counts that raised it, then `alerts N`.

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/alerts.h"
#include "painpoint/aggregator/word_vectors.h"

namespace agg = painpoint::aggregator;

namespace {

// `alerts.rules.<name> = <rule>` lines of `path`; other lines are ignored.
bool read_rules(const std::string& path, std::vector<agg::AlertRule>* out) {
  std::ifstream in(path);
  if (!in) return false;
  constexpr std::string_view kPrefix = "alerts.rules.";
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (!line.starts_with(kPrefix) || eq == std::string::npos) continue;
    std::string name = line.substr(kPrefix.size(), eq - kPrefix.size());
    while (!name.empty() && name.back() == ' ') name.pop_back();
    auto parsed = agg::parse_alert_rule(name, line.substr(eq + 1));
    if (auto* error = std::get_if<std::string>(&parsed)) {
      std::cerr << path << ": " << *error << "\n";
      return false;
    }
    out->push_back(std::get<agg::AlertRule>(std::move(parsed)));
  }
  return true;
}

// Serve's AlertFiring without a store: episodes and product volumes in memory, each id once.
struct AlertLog {
  std::vector<agg::AlertRule> rules;
  agg::AlertEpisodes episodes;
  agg::ProductVolumes volumes;
  std::unordered_set<std::string> fired;

  void evaluate(const std::vector<painpoint::v1::PainPointSummary>& summaries) {
    std::vector<agg::StateWrite> writes;
    for (const auto& s : summaries) volumes.update(s);
    for (const auto& s : summaries) {
      for (const auto& a : episodes.evaluate(rules, s, &volumes, &writes)) {
        if (!fired.insert(a.alert_id()).second) continue;
        std::printf(
            "alert %s %s %s last7=%lld previous7=%lld events=%lld accounts=%lld "
            "severity=%.2f first_seen=%lld last_seen=%lld\n",
            a.rule().c_str(), a.product_id().c_str(), a.pain_point_id().c_str(),
            static_cast<long long>(a.last_7_days_count()),
            static_cast<long long>(a.previous_7_days_count()),
            static_cast<long long>(a.event_count()), static_cast<long long>(a.account_count()),
            a.severity(), static_cast<long long>(s.first_seen().seconds()),
            static_cast<long long>(s.last_seen().seconds()));
      }
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string input, output, summaries_path, alerts_path,
      vectors_path = agg::default_word_vectors_path();
  agg::ClusterConfig cfg;
  cfg.encoder = agg::EncoderMode::kStatic;  // this driver has no sentence encoder
  std::size_t batch = 512;  // events per take_changes(), like a service batch
  bool parse_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--input" && i + 1 < argc) {
      input = argv[++i];
    } else if (a == "--output" && i + 1 < argc) {
      output = argv[++i];
    } else if (a == "--summaries" && i + 1 < argc) {
      summaries_path = argv[++i];
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::stoul(argv[++i]);
    } else if (a == "--alerts" && i + 1 < argc) {
      alerts_path = argv[++i];
    } else if (a == "--parse-only") {
      parse_only = true;
    } else if (a == "--vectors" && i + 1 < argc) {
      vectors_path = argv[++i];
    } else if (const auto eq = a.find('='); eq != std::string::npos) {
      if (agg::apply_config_override(cfg, a.substr(0, eq), a.substr(eq + 1))) {
        std::cerr << "bad override " << a << "\n";
        return 2;
      }
    } else {
      std::cerr << "usage: cluster_driver --input F --output F [--summaries F] [--alerts RULES] "
                   "[--vectors F|none] [k=v...]\n";
      return 2;
    }
  }
  AlertLog alerts;
  if (!alerts_path.empty() && !read_rules(alerts_path, &alerts.rules)) {
    std::cerr << "cannot read the rules of " << alerts_path << "\n";
    return 2;
  }
  agg::LoadedVectors vectors;
  if (vectors_path != "none") {
    vectors = agg::load_word_vectors(vectors_path);
    if (!vectors.vectors) std::cerr << "no word vectors: " << vectors.detail << "\n";
    cfg.word_vectors = vectors.vectors.get();
  }
  std::ifstream in(input);
  if (!in) {
    std::cerr << "cannot open " << input << "\n";
    return 1;
  }
  struct Row {
    std::string event_id, product_id, pain_point, error;
  };
  std::vector<Row> rows;
  std::unordered_set<std::string> seen;
  const auto t0 = std::chrono::steady_clock::now();
  agg::Aggregator aggregator(cfg, nullptr);
  std::string line;
  painpoint::v1::FeedbackEvent e;
  std::size_t n_events = 0;
  google::protobuf::util::JsonParseOptions opts;
  std::map<std::string, painpoint::v1::PainPointSummary> latest;  // only with --summaries
  auto keep = [&](agg::Changes changes) {
    if (!alerts.rules.empty()) alerts.evaluate(changes.summaries);
    if (summaries_path.empty()) return;
    for (auto& s : changes.summaries) latest[s.id()] = std::move(s);
  };
  while (std::getline(in, line)) {
    e.Clear();
    Row r;
    if (!google::protobuf::util::JsonStringToMessage(line, &e, opts).ok() || e.event_id().empty() ||
        e.product_id().empty() || e.text().empty()) {
      r.event_id = e.event_id();
      r.error = "invalid";
    } else {
      r.event_id = e.event_id();
      r.product_id = e.product_id();
      if (parse_only) {
        r.pain_point = "x";
      } else if (seen.insert(e.event_id()).second) {
        r.pain_point = aggregator.add(e);
        ++n_events;
      } else {
        r.pain_point = "";
      }
    }
    rows.push_back(std::move(r));
    if (rows.size() % batch == 0) keep(aggregator.take_changes());
  }
  keep(aggregator.take_changes());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ofstream out(output);
  for (const auto& r : rows) {
    if (!r.error.empty()) {
      out << "{\"eventId\":\"" << r.event_id << "\",\"error\":\"" << r.error << "\"}\n";
    } else {
      out << "{\"eventId\":\"" << r.event_id << "\",\"productId\":\"" << r.product_id
          << "\",\"painPointId\":\"" << aggregator.resolve(r.pain_point) << "\"}\n";
    }
  }
  if (!summaries_path.empty()) {
    std::ofstream sums(summaries_path);
    std::string json;
    for (const auto& [id, s] : latest) {
      if (s.status() != painpoint::v1::STATUS_ACTIVE) continue;
      json.clear();
      (void)google::protobuf::util::MessageToJsonString(s, &json);
      sums << json << "\n";
    }
  }
  if (!alerts_path.empty()) std::printf("alerts %zu\n", alerts.fired.size());
  const auto mem = aggregator.memory_stats();
  std::fprintf(
      stderr,
      "events %zu pain_points %zu seconds %.3f events/s %.0f | products %zu clusters %zu "
      "state_bytes %zu bytes/cluster %.0f\n",
      n_events, aggregator.active_pain_points(), secs, static_cast<double>(n_events) / secs,
      mem.products, mem.clusters, mem.bytes,
      mem.clusters ? static_cast<double>(mem.bytes) / static_cast<double>(mem.clusters) : 0.0);
  return 0;
}

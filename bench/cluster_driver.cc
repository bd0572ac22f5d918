// Dev driver for the aggregator: the same loop as `painpoint cluster` (service/src/
// cluster_command.cc) but with plain proto3-JSON parsing instead of ingest validation, so that
// clustering can be measured and tuned independently of the other modules.
//
//   cluster_driver --input EVENTS.jsonl --output ASSIGNMENTS.jsonl [--vectors FILE|none]
//                  [--summaries SUMMARIES.jsonl] [key=value ...]   (overrides, see config.h)
//
// --summaries writes the last summary of every active pain point (proto3 JSON, one per line):
// labels, keywords and exemplars to read after a run.

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
#include "painpoint/aggregator/word_vectors.h"

namespace agg = painpoint::aggregator;

int main(int argc, char** argv) {
  std::string input, output, summaries_path, vectors_path = agg::default_word_vectors_path();
  agg::ClusterConfig cfg;
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
      std::cerr << "usage: cluster_driver --input F --output F [--summaries F] [--vectors F|none] "
                   "[k=v...]\n";
      return 2;
    }
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

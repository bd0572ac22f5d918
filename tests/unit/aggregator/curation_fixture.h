#pragma once

// What the curation and succession tests share: an aggregator configured so that maintenance
// runs often and merges eagerly, two unrelated complaints to feed it, and the latest summary per
// pain point of a batch of changes.

#include <cstdint>
#include <map>
#include <string>

#include "painpoint/aggregator/aggregator.h"

namespace painpoint::aggregator::testing {

inline v1::FeedbackEvent event(const std::string& id, const std::string& text,
                               std::int64_t unix_s = 1'790'000'000,
                               const std::string& product = "p") {
  v1::FeedbackEvent e;
  e.set_event_id(id);
  e.set_product_id(product);
  e.set_text(text);
  e.mutable_occurred_at()->set_seconds(unix_s);
  e.set_account_id("acct-" + id);
  e.set_source(v1::SOURCE_SUPPORT);
  return e;
}

// Small maintenance interval and an eager merge threshold: a split would be undone at once if
// maintenance ignored it.
inline ClusterConfig config() {
  ClusterConfig c;
  c.encoder = EncoderMode::kStatic;
  c.maintenance_interval = 4;
  c.merge_threshold = 0.5;
  c.min_support = 3;
  return c;
}

inline const std::string kCamera = "app crashes when I open the camera";
inline const std::string kBilling = "invoice shows the wrong amount charged twice";

// Adds n events with `text`, one a minute from t0; returns the id the last one joined.
inline std::string feed(Aggregator& a, const std::string& prefix, const std::string& text, int n,
                        std::int64_t t0 = 1'790'000'000) {
  std::string id;
  for (int i = 0; i < n; ++i) id = a.add(event(prefix + std::to_string(i), text, t0 + i * 60));
  return id;
}

// The last summary of each pain point in `c`.
inline std::map<std::string, v1::PainPointSummary> latest(const Changes& c) {
  std::map<std::string, v1::PainPointSummary> out;
  for (const auto& s : c.summaries) out[s.id()] = s;
  return out;
}

}  // namespace painpoint::aggregator::testing

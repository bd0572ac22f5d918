#pragma once

// The proto3 JSON of pain point summaries, rendered once per distinct summary. protobuf's JSON
// printer was ~3/4 of serve's CPU under a load of GET .../pain-points (50 summaries per page);
// pages are mostly the same summaries again.

#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::service {

class SummaryJsonCache {
 public:
  // Past `max_entries` distinct summaries the cache starts over (entries are ~2 KB).
  explicit SummaryJsonCache(std::size_t max_entries) : max_entries_(max_entries) {}

  // What google::protobuf::util::MessageToJsonString prints for `summary` with
  // always_print_primitive_fields. An entry is reused only for a summary with the same
  // serialized bytes, so it is never stale. nullopt if the printer fails.
  std::optional<std::string> render(const v1::PainPointSummary& summary);

  // The JSON of a v1::PainPointList of `summaries` and `next_cursor`, byte for byte as the
  // printer would render the whole message.
  std::optional<std::string> render_list(std::span<const v1::PainPointSummary> summaries,
                                         const std::string& next_cursor);

 private:
  struct Entry {
    std::string bytes;
    std::string json;
  };
  const std::size_t max_entries_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // by pain point id
};

}  // namespace painpoint::service

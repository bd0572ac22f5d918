#include "summary_json.h"

#include <google/protobuf/util/json_util.h>

#include "http_server.h"

namespace painpoint::service {

std::optional<std::string> SummaryJsonCache::render(const v1::PainPointSummary& summary) {
  std::string bytes = summary.SerializeAsString();
  {
    std::lock_guard lock(mutex_);
    if (auto found = entries_.find(summary.id());
        found != entries_.end() && found->second.bytes == bytes) {
      return found->second.json;
    }
  }
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(summary, &json, options).ok()) {
    return std::nullopt;
  }
  std::lock_guard lock(mutex_);
  if (entries_.size() >= max_entries_) entries_.clear();
  entries_.insert_or_assign(summary.id(), Entry{std::move(bytes), json});
  return json;
}

std::optional<std::string> SummaryJsonCache::render_list(
    std::span<const v1::PainPointSummary> summaries, const std::string& next_cursor) {
  std::string body = "{\"painPoints\":[";
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    auto json = render(summaries[i]);
    if (!json) return std::nullopt;
    if (i > 0) body += ',';
    body += *json;
  }
  body += "],\"nextCursor\":";
  body += json_quote(next_cursor);
  body += '}';
  return body;
}

}  // namespace painpoint::service

#include "codec.h"

#include <charconv>

namespace painpoint::changelog::detail {
namespace {

constexpr char kControlPrefix = '\0';
constexpr std::string_view kBatchName = "batch/";
constexpr std::string_view kFenceName = "fence/";
constexpr std::string_view kRestoredName = "restored/";

std::optional<std::int64_t> parse_decimal(std::string_view text) {
  std::int64_t out = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return out;
}

Status corrupt(std::string what) { return Status::Error(ChangelogErrc::kCorrupt, std::move(what)); }

}  // namespace

std::string data_key(const Record& record) {
  std::string key;
  key.reserve(record.family.size() + 1 + record.key.size());
  key += record.family;
  key += '\0';
  key += record.key;
  return key;
}

std::string control_key(ControlKind kind, std::int64_t epoch) {
  std::string key(1, kControlPrefix);
  key += kind == ControlKind::kBatch ? kBatchName
         : kind == ControlKind::kFence ? kFenceName
                                       : kRestoredName;
  key += std::to_string(epoch);
  return key;
}

Status check_family(std::string_view family) {
  if (family.empty() || family.find('\0') != std::string_view::npos) {
    return Status::Error(ChangelogErrc::kInvalidArgument,
                         "a record's family must be non-empty and hold no NUL byte");
  }
  return Status::Ok();
}

v1::ChangelogMarker to_marker(std::int64_t epoch, std::int64_t sequence,
                              const PartitionState& state) {
  v1::ChangelogMarker marker;
  marker.set_epoch(epoch);
  marker.set_batch_sequence(sequence);
  marker.set_next_input_offset(state.next_input_offset);
  marker.set_cluster_id(state.cluster_id);
  for (const auto& [name, value] : state.counters) (*marker.mutable_counters())[name] = value;
  return marker;
}

PartitionState state_of(const v1::ChangelogMarker& marker) {
  PartitionState state;
  state.next_input_offset = marker.next_input_offset();
  state.cluster_id = marker.cluster_id();
  for (const auto& [name, value] : marker.counters()) state.counters[name] = value;
  return state;
}

Result<Decoded> decode(std::string_view key, std::optional<std::string_view> value,
                       std::optional<std::string_view> epoch_header,
                       std::optional<std::string_view> batch_header) {
  Decoded out;
  if (key.empty()) return corrupt("a changelog record without a key");
  if (key.front() != kControlPrefix) {
    const auto separator = key.find('\0');
    if (separator == std::string_view::npos || separator == 0) {
      return corrupt("a changelog key without a family");
    }
    const auto epoch = epoch_header ? parse_decimal(*epoch_header) : std::nullopt;
    const auto batch = batch_header ? parse_decimal(*batch_header) : std::nullopt;
    if (!epoch || !batch) return corrupt("a changelog record without epoch or batch header");
    out.kind = Decoded::Kind::kData;
    out.record.family = std::string(key.substr(0, separator));
    out.record.key = std::string(key.substr(separator + 1));
    if (value) out.record.value = std::string(*value);
    out.epoch = *epoch;
    out.sequence = *batch;
    return out;
  }
  const std::string_view name = key.substr(1);
  if (name.starts_with(kBatchName)) {
    out.kind = Decoded::Kind::kBatchMarker;
  } else if (name.starts_with(kFenceName)) {
    out.kind = Decoded::Kind::kFence;
  } else if (name.starts_with(kRestoredName)) {
    out.kind = Decoded::Kind::kRestoreMarker;
  } else {
    return corrupt("an unknown changelog control key");
  }
  out.marker.emplace();
  if (!value || !out.marker->ParseFromArray(value->data(), static_cast<int>(value->size()))) {
    return corrupt("a changelog marker that does not parse");
  }
  out.epoch = out.marker->epoch();
  out.sequence = out.marker->batch_sequence();
  return out;
}

}  // namespace painpoint::changelog::detail

#pragma once

// Private: how records and markers look on the changelog topic.
//   data record    key = family NUL store-key, value = the value (null: a delete),
//                  headers painpoint.epoch and painpoint.batch (decimal)
//   batch marker   key = NUL "batch/" epoch, value = ChangelogMarker
//   fence          key = NUL "fence/" epoch, value = ChangelogMarker (epoch only)
//   restore marker key = NUL "restored/" epoch, value = ChangelogMarker
// Control keys carry the epoch so that a superseded owner's late marker never replaces (under
// compaction) the marker of a newer owner, and every fence and restore marker survives.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/changelog/changelog.h"
#include "painpoint/v1/changelog.pb.h"

namespace painpoint::changelog::detail {

inline constexpr std::string_view kHeaderEpoch = "painpoint.epoch";
inline constexpr std::string_view kHeaderBatch = "painpoint.batch";

enum class ControlKind { kBatch, kFence, kRestored };

std::string data_key(const Record& record);
std::string control_key(ControlKind kind, std::int64_t epoch);
Status check_family(std::string_view family);

v1::ChangelogMarker to_marker(std::int64_t epoch, std::int64_t sequence,
                              const PartitionState& state);
PartitionState state_of(const v1::ChangelogMarker& marker);

// One message read back from the changelog.
struct Decoded {
  enum class Kind { kData, kBatchMarker, kFence, kRestoreMarker };
  Kind kind = Kind::kData;
  Record record;                 // kData
  std::int64_t epoch = 0;        // every kind
  std::int64_t sequence = 0;     // kData: its batch; markers: their batch_sequence
  // Markers and fences only: a protobuf message with a map field is costly to build and destroy
  // for each of a restore's data records.
  std::optional<v1::ChangelogMarker> marker;
};

// kCorrupt when the message is not in the format above.
Result<Decoded> decode(std::string_view key, std::optional<std::string_view> value,
                       std::optional<std::string_view> epoch_header,
                       std::optional<std::string_view> batch_header);

}  // namespace painpoint::changelog::detail

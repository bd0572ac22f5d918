#pragma once

// Key encoding of the store. Big-endian fixed-width integers keep RocksDB's bytewise order
// equal to numeric order, so iteration by time or offset is a plain range scan.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace painpoint::store::keys {

void append_be32(std::string& out, std::uint32_t value);
void append_be64(std::string& out, std::uint64_t value);
[[nodiscard]] std::optional<std::uint64_t> read_be64(std::string_view bytes);
[[nodiscard]] std::optional<std::uint32_t> read_be32(std::string_view bytes);

// Signed times map to unsigned keys that sort the same way (flip the sign bit).
[[nodiscard]] std::uint64_t order_preserving(std::int64_t value);
[[nodiscard]] std::int64_t from_order_preserving(std::uint64_t value);

// by_time: be64(occurred_at micros, order-preserving) | event_id
[[nodiscard]] std::string time_key(std::int64_t occurred_at_micros, std::string_view event_id);
struct TimeKey {
  std::int64_t occurred_at_micros;
  std::string_view event_id;
};
[[nodiscard]] std::optional<TimeKey> parse_time_key(std::string_view key);

// offsets: topic | 0x00 | be32(partition). Topic names cannot contain 0x00.
[[nodiscard]] std::string offset_key(std::string_view topic, std::int32_t partition);
struct OffsetKey {
  std::string_view topic;
  std::int32_t partition;
};
[[nodiscard]] std::optional<OffsetKey> parse_offset_key(std::string_view key);

// pain points by product: product | 0x00 | pain point id. Product ids are validated charset.
[[nodiscard]] std::string product_item_key(std::string_view product_id, std::string_view item_id);

// members_by_pain_point: pain point id | 0x00 | position, where
// position = be64(~order_preserving(occurred_at micros)) | event_id, so that a forward scan of one
// pain point lists its events newest first (ties by event id). Pain point ids contain no 0x00.
[[nodiscard]] std::string member_position(std::int64_t occurred_at_micros,
                                          std::string_view event_id);
[[nodiscard]] std::string member_key(std::string_view pain_point_id, std::string_view position);
// The id in front of the 0x00 separator of a product_item_key() (the product) or a member_key()
// (the pain point); nullopt for a key without the separator.
[[nodiscard]] std::optional<std::string_view> leading_id(std::string_view key);

// Partitioned families (docs/adr-005-scale-out.md, decision (b)): be16(partition) | key, so that
// each partition of the input topic is one contiguous range of every such family, from
// partition_prefix(p) up to (excluded) partition_prefix(p + 1). Partitions 0 .. kPartitionLimit -
// 1; the last 2-byte value stays unused so that every partition's range has an end key.
inline constexpr std::int32_t kPartitionLimit = 0xFFFF;
[[nodiscard]] bool valid_partition(std::int32_t partition);
// partition_prefix() takes 0 .. kPartitionLimit (the last: the end of the last partition's range);
// partitioned_key() requires valid_partition(partition).
[[nodiscard]] std::string partition_prefix(std::int32_t partition);
[[nodiscard]] std::string partitioned_key(std::int32_t partition, std::string_view key);
struct PartitionedKey {
  std::int32_t partition;
  std::string_view key;  // the key without the prefix
};
[[nodiscard]] std::optional<PartitionedKey> parse_partitioned_key(std::string_view key);

}  // namespace painpoint::store::keys

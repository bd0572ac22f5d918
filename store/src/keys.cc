#include "painpoint/store/keys.h"

namespace painpoint::store::keys {

void append_be32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFFU));
  }
}

void append_be64(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFFU));
  }
}

std::optional<std::uint64_t> read_be64(std::string_view bytes) {
  if (bytes.size() < 8) return std::nullopt;
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return value;
}

std::optional<std::uint32_t> read_be32(std::string_view bytes) {
  if (bytes.size() < 4) return std::nullopt;
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return value;
}

std::uint64_t order_preserving(std::int64_t value) {
  return static_cast<std::uint64_t>(value) ^ (std::uint64_t{1} << 63);
}

std::int64_t from_order_preserving(std::uint64_t value) {
  return static_cast<std::int64_t>(value ^ (std::uint64_t{1} << 63));
}

std::string time_key(std::int64_t occurred_at_micros, std::string_view event_id) {
  std::string key;
  key.reserve(8 + event_id.size());
  append_be64(key, order_preserving(occurred_at_micros));
  key.append(event_id);
  return key;
}

std::optional<TimeKey> parse_time_key(std::string_view key) {
  auto encoded = read_be64(key);
  if (!encoded || key.size() == 8) return std::nullopt;
  return TimeKey{from_order_preserving(*encoded), key.substr(8)};
}

std::string offset_key(std::string_view topic, std::int32_t partition) {
  std::string key;
  key.reserve(topic.size() + 5);
  key.append(topic);
  key.push_back('\0');
  append_be32(key, static_cast<std::uint32_t>(partition));
  return key;
}

std::optional<OffsetKey> parse_offset_key(std::string_view key) {
  if (key.size() < 6) return std::nullopt;
  const std::size_t separator = key.size() - 5;
  if (key[separator] != '\0') return std::nullopt;
  auto partition = read_be32(key.substr(separator + 1));
  if (!partition) return std::nullopt;
  return OffsetKey{key.substr(0, separator), static_cast<std::int32_t>(*partition)};
}

std::optional<std::string_view> leading_id(std::string_view key) {
  const std::size_t separator = key.find('\0');
  if (separator == std::string_view::npos) return std::nullopt;
  return key.substr(0, separator);
}

std::string product_item_key(std::string_view product_id, std::string_view item_id) {
  std::string key;
  key.reserve(product_id.size() + 1 + item_id.size());
  key.append(product_id);
  key.push_back('\0');
  key.append(item_id);
  return key;
}

std::string member_position(std::int64_t occurred_at_micros, std::string_view event_id) {
  std::string position;
  position.reserve(8 + event_id.size());
  append_be64(position, ~order_preserving(occurred_at_micros));
  position.append(event_id);
  return position;
}

std::string member_key(std::string_view pain_point_id, std::string_view position) {
  return product_item_key(pain_point_id, position);
}

bool valid_partition(std::int32_t partition) {
  return partition >= 0 && partition < kPartitionLimit;
}

std::string partition_prefix(std::int32_t partition) {
  const auto value = static_cast<std::uint32_t>(partition);
  return {static_cast<char>((value >> 8) & 0xFFU), static_cast<char>(value & 0xFFU)};
}

std::string partitioned_key(std::int32_t partition, std::string_view key) {
  std::string out = partition_prefix(partition);
  out.append(key);
  return out;
}

std::optional<PartitionedKey> parse_partitioned_key(std::string_view key) {
  if (key.size() < 2) return std::nullopt;
  const auto partition = static_cast<std::int32_t>((static_cast<unsigned char>(key[0]) << 8) |
                                                   static_cast<unsigned char>(key[1]));
  if (!valid_partition(partition)) return std::nullopt;
  return PartitionedKey{partition, key.substr(2)};
}

}  // namespace painpoint::store::keys

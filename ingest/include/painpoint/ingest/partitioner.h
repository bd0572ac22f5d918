#pragma once

#include <cstdint>
#include <string_view>

namespace painpoint::ingest {

// The partition a keyed record goes to among `partition_count`: murmur2 of the key, as Kafka's
// Java clients and librdkafka's murmur2 partitioners compute it, so any instance can tell from a
// product id which partition (and so which instance) holds its state. `partition_count` > 0.
std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count);

}  // namespace painpoint::ingest

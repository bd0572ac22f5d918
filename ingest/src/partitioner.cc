#include "painpoint/ingest/partitioner.h"

#include <librdkafka/rdkafka.h>

namespace painpoint::ingest {

std::int32_t partition_for_key(std::string_view key, std::int32_t partition_count) {
  // A null key would be placed at random; an empty one is hashed like any other.
  const char* data = key.data() != nullptr ? key.data() : "";
  return rd_kafka_msg_partitioner_murmur2(nullptr, data, key.size(), partition_count, nullptr,
                                          nullptr);
}

}  // namespace painpoint::ingest

#pragma once

// What the Kafka clients (producer.h, consumer.h, admin.h) share: partitions, offsets, headers,
// and the rules they all follow. No header of the clients includes rdkafka.h; the handles live
// in internal/painpoint/ingest/kafka_handles.h.
//
// Common rules:
//  - Every class owns its librdkafka handle; destruction releases it (a Producer flushes first
//    with a short timeout, a Consumer leaves its group). Objects are movable, not copyable.
//  - Calls that talk to the cluster take an explicit timeout and may block up to that long.
//    Everything else is non-blocking.
//  - Config structs carry typed fields with defaults; `extra` passes any other librdkafka
//    property through verbatim (and overrides the typed fields — use it knowingly).

#include <chrono>
#include <compare>
#include <cstdint>
#include <string>

#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

using namespace std::chrono_literals;

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
};

// For commit(): `offset` is the NEXT offset to consume (last processed + 1), as in Kafka.
// For offsets_for_times(): `offset` is a timestamp in ms on input and an offset on output.
struct TopicPartitionOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  friend bool operator==(const TopicPartitionOffset&, const TopicPartitionOffset&) = default;
};

struct Header {
  std::string key;
  std::string value;
};

// "Kafka broker unreachable", followed by the client's connection_problem() when it has one:
// what readiness checks report.
std::string unreachable_detail(const std::string& connection_problem);

// The version of the librdkafka linked in (rd_kafka_version_str()), e.g. "2.12.0": the library
// decides which brokers and SASL mechanisms work (docs/adr-004-real-kafka.md).
std::string librdkafka_version();

}  // namespace painpoint::ingest

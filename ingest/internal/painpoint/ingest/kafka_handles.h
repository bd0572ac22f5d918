#pragma once

// Internal: owning handles over librdkafka's C objects, and the helpers every client built on them
// shares (error mapping, the conf builder that keeps secrets out of error text). For the ingest
// module's clients and for modules that link the painpoint_kafka_handles target (changelog);
// ingest's public headers stay free of rdkafka.h.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "painpoint/ingest/kafka_types.h"
#include "painpoint/ingest/status.h"

namespace painpoint::ingest::detail {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
  void operator()(rd_kafka_topic_partition_list_t* list) const noexcept {
    rd_kafka_topic_partition_list_destroy(list);
  }
  void operator()(rd_kafka_message_t* msg) const noexcept { rd_kafka_message_destroy(msg); }
  void operator()(rd_kafka_headers_t* hdrs) const noexcept { rd_kafka_headers_destroy(hdrs); }
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* ev) const noexcept { rd_kafka_event_destroy(ev); }
  void operator()(rd_kafka_error_t* err) const noexcept { rd_kafka_error_destroy(err); }
  void operator()(rd_kafka_AdminOptions_t* o) const noexcept { rd_kafka_AdminOptions_destroy(o); }
  void operator()(rd_kafka_NewTopic_t* t) const noexcept { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
  void operator()(const rd_kafka_metadata_t* md) const noexcept { rd_kafka_metadata_destroy(md); }
  void operator()(char* mem) const noexcept { rd_kafka_mem_free(nullptr, mem); }
  void operator()(rd_kafka_ConfigResource_t* r) const noexcept {
    rd_kafka_ConfigResource_destroy(r);
  }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, KafkaDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, KafkaDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, KafkaDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, KafkaDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, KafkaDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, KafkaDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, KafkaDeleter>;
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, KafkaDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, KafkaDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, KafkaDeleter>;
using KafkaStringPtr = std::unique_ptr<char, KafkaDeleter>;
using ConfigResourcePtr = std::unique_ptr<rd_kafka_ConfigResource_t, KafkaDeleter>;

// Maps librdkafka's error to the module's error code.
KafkaErrc errc_from(rd_kafka_resp_err_t err);
Status status_from(rd_kafka_resp_err_t err, const std::string& context);
Status status_from(const rd_kafka_error_t* error, const std::string& context);

// A conf with every property of `props` set; kInvalidConfig names the offending property.
Result<ConfPtr> make_conf(const std::map<std::string, std::string>& props);

int to_timeout_ms(std::chrono::milliseconds timeout);

// rd_kafka_new for `conf` (which it takes over on success); kInvalidConfig with librdkafka's text.
Result<KafkaPtr> new_client(rd_kafka_type_t type, ConfPtr conf);

// The cluster id (KIP-78) of the cluster `rk` is connected to, waiting up to `timeout` for a
// metadata response; an error (timeout, transport) when none came.
Result<std::string> cluster_id(rd_kafka_t* rk, std::chrono::milliseconds timeout);

// A partition list with `offsets` (their offset fields set), or with `partitions` (offsets unset).
PartitionListPtr to_list(std::span<const TopicPartitionOffset> offsets);
PartitionListPtr to_list(std::span<const TopicPartition> partitions);
std::vector<TopicPartition> to_partitions(const rd_kafka_topic_partition_list_t* list);
std::vector<TopicPartitionOffset> to_offsets(const rd_kafka_topic_partition_list_t* list);

// The first per-partition error in `list` (after commit, seek, ...), named with its partition.
Status first_partition_error(const rd_kafka_topic_partition_list_t* list,
                             const std::string& context);

// Forwards librdkafka's log lines to spdlog (so they follow Painpoint's log format and level).
void install_log_cb(rd_kafka_conf_t* conf);

}  // namespace painpoint::ingest::detail

#include "painpoint/ingest/kafka_handles.h"

#include <algorithm>
#include <limits>
#include <string_view>

#include "painpoint/ingest/client_settings.h"
#include "painpoint/ingest/kafka_types.h"

namespace painpoint::ingest {
namespace detail {

KafkaErrc errc_from(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return KafkaErrc::kOk;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return KafkaErrc::kQueueFull;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return KafkaErrc::kTimedOut;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
      return KafkaErrc::kTransport;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return KafkaErrc::kUnknownTopic;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      return KafkaErrc::kMessageTooLarge;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
      return KafkaErrc::kOffsetOutOfRange;
    case RD_KAFKA_RESP_ERR__FATAL:
      return KafkaErrc::kFatal;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
      return KafkaErrc::kInvalidArgument;
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return KafkaErrc::kState;
    default:
      return KafkaErrc::kOther;
  }
}

Status status_from(rd_kafka_resp_err_t err, const std::string& context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  return Status::Error(errc_from(err), context + ": " + rd_kafka_err2str(err), err);
}

Status status_from(const rd_kafka_error_t* error, const std::string& context) {
  if (error == nullptr) return Status::Ok();
  const auto code = rd_kafka_error_code(error);
  auto errc = errc_from(code);
  if (rd_kafka_error_is_fatal(error)) errc = KafkaErrc::kFatal;
  return Status::Error(errc, context + ": " + rd_kafka_error_string(error), code);
}

Result<ConfPtr> make_conf(const std::map<std::string, std::string>& props) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      if (!is_secret_property(name)) {
        return Status::Error(KafkaErrc::kInvalidConfig, name + "=" + value + ": " + errstr);
      }
      std::string reason = errstr;
      constexpr std::string_view kRedacted = "<redacted>";
      for (auto at = reason.find(value); !value.empty() && at != std::string::npos;
           at = reason.find(value, at + kRedacted.size())) {
        reason.replace(at, value.size(), kRedacted);
      }
      return Status::Error(KafkaErrc::kInvalidConfig, name + ": " + reason);
    }
  }
  return conf;
}

int to_timeout_ms(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return 0;
  return static_cast<int>(
      std::min<std::chrono::milliseconds::rep>(timeout.count(), std::numeric_limits<int>::max()));
}

Result<std::string> cluster_id(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  // rd_kafka_clusterid() alone waited for the client's own periodic metadata refresh: 1.0 s of
  // every start against a broker with 128-partition topics, where a metadata request answers in
  // milliseconds. A brokers-only metadata request blocks until a response arrived, and every
  // response carries the cluster id, which the client caches.
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, nullptr, &raw, to_timeout_ms(timeout));
  MetadataPtr md(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return status_from(err, "metadata for the cluster id (broker unreachable?)");
  }
  KafkaStringPtr id(rd_kafka_clusterid(rk, 0));
  if (!id) {
    return Status::Error(KafkaErrc::kOther,
                         "the broker reports no cluster id (Kafka older than 0.10.1?)");
  }
  return std::string(id.get());
}

Result<KafkaPtr> new_client(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (rk == nullptr) return Status::Error(KafkaErrc::kInvalidConfig, errstr);
  (void)conf.release();  // rd_kafka_new took ownership
  return KafkaPtr(rk);
}

PartitionListPtr to_list(std::span<const TopicPartitionOffset> offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& tpo : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tpo.topic.c_str(), tpo.partition)->offset =
        tpo.offset;
  }
  return list;
}

Status first_partition_error(const rd_kafka_topic_partition_list_t* list,
                             const std::string& context) {
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return status_from(p.err, context + " " + p.topic + "[" + std::to_string(p.partition) + "]");
    }
  }
  return Status::Ok();
}

PartitionListPtr to_list(std::span<const TopicPartition> partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

std::vector<TopicPartition> to_partitions(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  out.reserve(static_cast<std::size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

std::vector<TopicPartitionOffset> to_offsets(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartitionOffset> out;
  out.reserve(static_cast<std::size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

}  // namespace detail

std::string librdkafka_version() { return rd_kafka_version_str(); }

}  // namespace painpoint::ingest

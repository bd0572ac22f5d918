#pragma once

// Private: the group consumer's state shared by consumer.cc (the public calls) and
// consumer_rebalance.cc (assignments, revocations and offset resets, which librdkafka hands to
// the callbacks inside poll_batch and close).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "client_state.h"
#include "painpoint/ingest/consumer.h"
#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest {

struct Consumer::Impl : detail::ClientState {
  detail::KafkaPtr rk;
  // The caller's listener, or owned_listener (subscribe with handlers).
  RebalanceListener* listener = nullptr;
  std::unique_ptr<RebalanceListener> owned_listener;
  bool start_from_earliest = true;
  bool closed = false;
  // The main queue (errors, statistics) is forwarded to the consumer queue at subscribe; before
  // that, lookups serve it themselves so that a failed connection's cause reaches error_cb.
  std::mutex main_queue_mutex;
  bool main_queue_forwarded = false;
  // close() gave up waiting for the group: destroying the handle must not wait for it again
  // (rd_kafka_destroy would run the blocking close that close() bounded).
  bool abandon_group_on_destroy = false;
  // Offset resets seen while serving the current poll; handed out with its batch.
  std::vector<OffsetReset> pending_resets;
  // The offset each assigned partition was started at, to rebuild the assignment after a reset.
  std::map<TopicPartition, std::int64_t> assigned_start;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() override {
    if (abandon_group_on_destroy && rk) {
      rd_kafka_destroy_flags(rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
  }

  std::int64_t fallback_offset() const {
    return start_from_earliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
  }
  bool cooperative() const;
  RebalanceProtocol protocol() const {
    return cooperative() ? RebalanceProtocol::kCooperative : RebalanceProtocol::kEager;
  }

  // librdkafka's rebalance callback (conf opaque: the Impl); close() passes its events here too.
  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void assign_partitions(rd_kafka_topic_partition_list_t* partitions);
  void revoke_partitions(rd_kafka_topic_partition_list_t* partitions);
  void resolve_committed(rd_kafka_topic_partition_list_t* partitions);

  void handle_offset_reset(const rd_kafka_message_t* msg);
  Status restart_partition(const TopicPartition& tp, std::int64_t offset);
};

}  // namespace painpoint::ingest

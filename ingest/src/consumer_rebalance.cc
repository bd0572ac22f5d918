// The group consumer's side of rebalances: start offsets of assigned partitions, revocations, and
// the restart of a partition whose start offset was no longer on the broker.
#include <spdlog/spdlog.h>

#include <cstring>

#include "consumer_impl.h"

namespace painpoint::ingest {

using detail::ClientState;
using detail::PartitionListPtr;
using detail::status_from;

bool Consumer::Impl::cooperative() const {
  return std::strcmp(rd_kafka_rebalance_protocol(rk.get()), "COOPERATIVE") == 0;
}

void Consumer::Impl::rebalance_cb(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Impl*>(static_cast<ClientState*>(opaque));
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->assign_partitions(partitions);
  } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    self->revoke_partitions(partitions);
  } else {
    spdlog::error("kafka consumer: rebalance error: {}", rd_kafka_err2str(err));
    self->assigned_start.clear();
    rd_kafka_assign(self->rk.get(), nullptr);
  }
}

namespace {

std::int64_t to_librdkafka_offset(const StartOffset& start, std::int64_t fallback) {
  switch (start.kind) {
    case StartOffset::Kind::kOffset:
      return start.offset >= 0 ? start.offset : fallback;
    case StartOffset::Kind::kCommitted:
      return RD_KAFKA_OFFSET_STORED;
    case StartOffset::Kind::kEarliest:
      return RD_KAFKA_OFFSET_BEGINNING;
    case StartOffset::Kind::kLatest:
      return RD_KAFKA_OFFSET_END;
  }
  return RD_KAFKA_OFFSET_STORED;
}

// ": topic[0] topic[3]" for the log, or nothing for an empty list.
std::string describe(std::span<const TopicPartition> partitions) {
  std::string out;
  for (const auto& tp : partitions) {
    out += (out.empty() ? ": " : " ") + tp.topic + "[" + std::to_string(tp.partition) + "]";
  }
  return out;
}

}  // namespace

void Consumer::Impl::assign_partitions(rd_kafka_topic_partition_list_t* partitions) {
  const bool incremental = cooperative();
  const auto tps = detail::to_partitions(partitions);
  std::vector<StartOffset> starts;
  if (listener != nullptr) {
    try {
      starts = listener->on_assigned(tps, protocol());
    } catch (const std::exception& e) {
      spdlog::error("kafka {}: assign handler threw ({}); using committed offsets", what, e.what());
      starts.clear();
    }
  }
  if (starts.size() != tps.size()) starts.assign(tps.size(), StartOffset::committed());
  for (int i = 0; i < partitions->cnt; ++i) {
    partitions->elems[i].offset =
        to_librdkafka_offset(starts[static_cast<std::size_t>(i)], fallback_offset());
  }
  resolve_committed(partitions);
  if (!incremental) assigned_start.clear();
  for (int i = 0; i < partitions->cnt; ++i) {
    assigned_start[tps[static_cast<std::size_t>(i)]] = partitions->elems[i].offset;
  }
  spdlog::info("kafka {}: assigned {} partitions ({}){}", what, partitions->cnt,
               incremental ? "incremental" : "eager", describe(tps));
  if (incremental) {
    detail::ErrorPtr error(rd_kafka_incremental_assign(rk.get(), partitions));
    if (error) {
      spdlog::error("kafka consumer: incremental assign: {}", rd_kafka_error_string(error.get()));
    }
  } else if (auto e = rd_kafka_assign(rk.get(), partitions); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::error("kafka consumer: assign: {}", rd_kafka_err2str(e));
  }
}

void Consumer::Impl::revoke_partitions(rd_kafka_topic_partition_list_t* partitions) {
  const auto tps = detail::to_partitions(partitions);
  const bool lost = rd_kafka_assignment_lost(rk.get()) != 0;
  if (lost) {
    spdlog::warn("kafka {}: {} partitions lost (session timed out){}", what, partitions->cnt,
                 describe(tps));
  } else {
    spdlog::info("kafka {}: {} partitions revoked ({}){}", what, partitions->cnt,
                 cooperative() ? "incremental" : "eager", describe(tps));
  }
  if (listener != nullptr) {
    try {
      listener->on_revoked(tps, lost, protocol());
    } catch (const std::exception& e) {
      spdlog::error("kafka {}: revoke handler threw: {}", what, e.what());
    }
  }
  for (const auto& tp : tps) assigned_start.erase(tp);
  if (cooperative()) {
    detail::ErrorPtr error(rd_kafka_incremental_unassign(rk.get(), partitions));
  } else {
    rd_kafka_assign(rk.get(), nullptr);
  }
}

// Resolves committed() starts here rather than leaving RD_KAFKA_OFFSET_STORED to librdkafka:
// with auto.offset.reset=error, a partition without a committed offset would otherwise stop
// with an error (see handle_offset_reset for why reset is "error").
void Consumer::Impl::resolve_committed(rd_kafka_topic_partition_list_t* partitions) {
  PartitionListPtr wanted(rd_kafka_topic_partition_list_new(partitions->cnt));
  for (int i = 0; i < partitions->cnt; ++i) {
    if (partitions->elems[i].offset == RD_KAFKA_OFFSET_STORED) {
      rd_kafka_topic_partition_list_add(wanted.get(), partitions->elems[i].topic,
                                        partitions->elems[i].partition);
    }
  }
  if (wanted->cnt == 0) return;
  if (auto e = rd_kafka_committed(rk.get(), wanted.get(), 10000); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka consumer: fetching committed offsets: {}", rd_kafka_err2str(e));
    return;  // keep STORED; a missing offset then comes back through handle_offset_reset
  }
  for (int i = 0; i < wanted->cnt; ++i) {
    const auto& w = wanted->elems[i];
    auto* p = rd_kafka_topic_partition_list_find(partitions, w.topic, w.partition);
    if (p == nullptr || w.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    p->offset = w.offset >= 0 ? w.offset : fallback_offset();
  }
}

// auto.offset.reset is "error" because librdkafka would otherwise reset silently, and
// Painpoint must count what retention took. The partition's fetcher is stopped at this point
// and a seek does not restart it (librdkafka 2.0.2), so the partition is re-assigned at the
// new offset; the other partitions are re-assigned at their current positions.
void Consumer::Impl::handle_offset_reset(const rd_kafka_message_t* msg) {
  if (msg->rkt == nullptr) return;
  OffsetReset reset;
  reset.partition = {rd_kafka_topic_name(msg->rkt), msg->partition};
  reset.requested = msg->offset;
  const auto werr = rd_kafka_query_watermark_offsets(
      rk.get(), reset.partition.topic.c_str(), reset.partition.partition, &reset.low_watermark,
      &reset.high_watermark, 5000);
  std::int64_t target = fallback_offset();
  if (werr == RD_KAFKA_RESP_ERR_NO_ERROR) {
    target = start_from_earliest ? reset.low_watermark : reset.high_watermark;
  }
  reset.resumed_at = target;
  if (auto s = restart_partition(reset.partition, target); !s.ok()) {
    spdlog::error("kafka consumer: restarting {}[{}] after offset reset: {}", reset.partition.topic,
                  reset.partition.partition, s.to_string());
  }
  if (reset.requested >= 0) {
    pending_resets.push_back(std::move(reset));
  } else {
    spdlog::debug("kafka consumer: {}[{}] had no committed offset; starting at {}",
                  reset.partition.topic, reset.partition.partition, target);
  }
}

Status Consumer::Impl::restart_partition(const TopicPartition& tp, std::int64_t offset) {
  assigned_start[tp] = offset;
  if (cooperative()) {
    const TopicPartitionOffset tpo{tp.topic, tp.partition, offset};
    auto one = detail::to_list(std::span(&tpo, 1));
    detail::ErrorPtr unassign(rd_kafka_incremental_unassign(rk.get(), one.get()));
    if (unassign) return status_from(unassign.get(), "incremental unassign");
    detail::ErrorPtr assign(rd_kafka_incremental_assign(rk.get(), one.get()));
    return status_from(assign.get(), "incremental assign");
  }
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (auto e = rd_kafka_assignment(rk.get(), &raw); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return status_from(e, "assignment");
  }
  PartitionListPtr current(raw);
  rd_kafka_position(rk.get(), current.get());  // next offset after what the app has seen
  for (int i = 0; i < current->cnt; ++i) {
    auto& p = current->elems[i];
    const TopicPartition key{p.topic, p.partition};
    if (key == tp) {
      p.offset = offset;
    } else if (p.offset < 0) {
      auto it = assigned_start.find(key);
      p.offset = it != assigned_start.end() ? it->second : RD_KAFKA_OFFSET_STORED;
    }
  }
  return status_from(rd_kafka_assign(rk.get(), current.get()), "assign");
}

}  // namespace painpoint::ingest

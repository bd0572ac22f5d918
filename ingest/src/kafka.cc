#include "painpoint/ingest/kafka.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "client_state.h"
#include "kafka_handles.h"
#include "painpoint/ingest/client_settings.h"

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

namespace {

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

}  // namespace
}  // namespace detail

using detail::ClientState;
using detail::KafkaPtr;
using detail::PartitionListPtr;
using detail::status_from;
using detail::to_timeout_ms;

// =============================================================================================
// Producer

struct Producer::Impl : ClientState {
  KafkaPtr rk;
  DeliveryCallback on_delivery;
  std::chrono::milliseconds backpressure_timeout{};
  std::atomic<std::uint64_t> produced{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};

  static void dr_msg_cb(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<Impl*>(static_cast<ClientState*>(opaque));
    DeliveryReport report;
    report.tag = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(msg->_private));
    report.partition = msg->partition;
    if (msg->rkt != nullptr) report.topic = rd_kafka_topic_name(msg->rkt);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->delivered.fetch_add(1);
      self->reachable.store(true);
      report.offset = msg->offset;
    } else {
      self->failed.fetch_add(1);
      // A message that timed out while no broker was reachable: say why none was.
      report.status = detail::with_connection_problem(
          status_from(msg->err, "delivery to " + std::string(report.topic)), *self);
    }
    if (self->on_delivery) {
      try {
        self->on_delivery(report);
      } catch (const std::exception& e) {
        spdlog::error("kafka producer: delivery callback threw: {}", e.what());
      }
    }
  }
};

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;

void Producer::purge() {
  if (!impl_ || !impl_->rk) return;
  rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  // Purged messages are reported through the delivery callback, like any other failure.
  (void)rd_kafka_flush(impl_->rk.get(), 100);
  rd_kafka_poll(impl_->rk.get(), 0);
}

Producer::~Producer() {
  if (!impl_ || !impl_->rk) return;
  if (rd_kafka_flush(impl_->rk.get(), 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka producer: {} messages undelivered at shutdown",
                 rd_kafka_outq_len(impl_->rk.get()));
    // Purged messages get failed delivery reports, so callers see every message's fate.
    rd_kafka_purge(impl_->rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(impl_->rk.get(), 0);
  }
}

Result<Producer> Producer::create(const ProducerConfig& config, DeliveryCallback on_delivery) {
  if (config.brokers.empty()) return Status::Error(KafkaErrc::kInvalidConfig, "no brokers");
  std::map<std::string, std::string> props{
      {"bootstrap.servers", config.brokers},
      {"client.id", config.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", std::to_string(config.linger.count())},
      {"batch.size", std::to_string(config.batch_bytes)},
      {"compression.codec", config.compression},
      {"message.timeout.ms", std::to_string(config.delivery_timeout.count())},
      {"queue.buffering.max.messages", std::to_string(config.queue_max_messages)},
      {"statistics.interval.ms", "5000"},
  };
  for (const auto& [k, v] : config.extra) props[k] = v;
  auto conf = detail::make_conf(props);
  if (!conf.ok()) return conf.status();

  auto impl = std::make_unique<Impl>();
  impl->what = "producer";
  impl->on_delivery = std::move(on_delivery);
  impl->backpressure_timeout = config.backpressure_timeout;
  detail::install_common_cbs(conf->get(), impl.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Impl::dr_msg_cb);
  auto rk = detail::new_client(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!rk.ok()) return rk.status();
  impl->rk = std::move(rk).value();
  return Producer(std::move(impl));
}

Status Producer::produce(std::string_view topic, std::optional<std::string_view> key,
                         std::string_view payload, std::span<const Header> headers,
                         std::uint64_t tag) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "producer moved from");
  const std::string topic_name(topic);
  std::vector<rd_kafka_vu_t> vus;
  vus.reserve(5 + headers.size());
  auto add = [&vus](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    vus.emplace_back();
    std::memset(&vus.back(), 0, sizeof(rd_kafka_vu_t));
    vus.back().vtype = type;
    return vus.back();
  };
  add(RD_KAFKA_VTYPE_TOPIC).u.cstr = topic_name.c_str();
  add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
  // librdkafka's API is not const-correct; with F_COPY it only reads the payload.
  auto& value = add(RD_KAFKA_VTYPE_VALUE);
  value.u.mem.ptr = const_cast<char*>(payload.data());
  value.u.mem.size = payload.size();
  if (key) {
    auto& k = add(RD_KAFKA_VTYPE_KEY);
    k.u.mem.ptr = const_cast<char*>(key->data());
    k.u.mem.size = key->size();
  }
  add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(tag));
  for (const auto& h : headers) {
    auto& hv = add(RD_KAFKA_VTYPE_HEADER);
    hv.u.header.name = h.key.c_str();
    hv.u.header.val = h.value.data();
    hv.u.header.size = static_cast<ssize_t>(h.value.size());
  }

  const auto deadline = std::chrono::steady_clock::now() + impl_->backpressure_timeout;
  while (true) {
    detail::ErrorPtr error(rd_kafka_produceva(impl_->rk.get(), vus.data(), vus.size()));
    if (!error) {
      impl_->produced.fetch_add(1);
      rd_kafka_poll(impl_->rk.get(), 0);  // serve delivery reports as we go
      return Status::Ok();
    }
    if (rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return status_from(error.get(), "produce to " + topic_name);
    }
    // Backpressure: the local queue drains as the broker acknowledges; serve reports meanwhile.
    if (std::chrono::steady_clock::now() >= deadline) {
      return status_from(error.get(), "produce to " + topic_name);
    }
    rd_kafka_poll(impl_->rk.get(), 100);
  }
}

int Producer::poll(std::chrono::milliseconds timeout) {
  return impl_ ? rd_kafka_poll(impl_->rk.get(), to_timeout_ms(timeout)) : 0;
}

Status Producer::prefetch_metadata(std::span<const std::string> topics,
                                   std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "producer moved from");
  for (const std::string& topic : topics) {
    // The reply fills the client's metadata cache, which a topic's first produce() reads.
    detail::TopicPtr rkt(rd_kafka_topic_new(impl_->rk.get(), topic.c_str(), nullptr));
    if (!rkt) return status_from(rd_kafka_last_error(), "topic handle " + topic);
    const rd_kafka_metadata_t* raw = nullptr;
    const auto err = rd_kafka_metadata(impl_->rk.get(), 0, rkt.get(), &raw, to_timeout_ms(timeout));
    detail::MetadataPtr md(raw);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "metadata of " + topic);
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return status_from(md->topics[i].err, "metadata of " + topic);
      }
    }
  }
  return Status::Ok();
}

Status Producer::flush(std::chrono::milliseconds timeout) {
  if (!impl_) return Status::Error(KafkaErrc::kState, "producer moved from");
  const auto err = rd_kafka_flush(impl_->rk.get(), to_timeout_ms(timeout));
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return Status::Error(KafkaErrc::kTimedOut,
                         "flush: " + std::to_string(rd_kafka_outq_len(impl_->rk.get())) +
                             " messages still in flight",
                         err);
  }
  return status_from(err, "flush");
}

std::size_t Producer::in_flight() const {
  return impl_ ? static_cast<std::size_t>(rd_kafka_outq_len(impl_->rk.get())) : 0;
}

ProducerCounters Producer::counters() const {
  if (!impl_) return {};
  return {impl_->produced.load(), impl_->delivered.load(), impl_->failed.load()};
}

bool Producer::broker_reachable() const { return impl_ && impl_->reachable.load(); }
std::string Producer::connection_problem() const {
  return impl_ ? impl_->connection_problem() : std::string();
}

// =============================================================================================
// Messages

std::string_view Message::topic() const {
  return msg_->rkt != nullptr ? rd_kafka_topic_name(msg_->rkt) : std::string_view{};
}
std::int32_t Message::partition() const { return msg_->partition; }
std::int64_t Message::offset() const { return msg_->offset; }
std::optional<std::string_view> Message::key() const {
  if (msg_->key == nullptr) return std::nullopt;
  return std::string_view(static_cast<const char*>(msg_->key), msg_->key_len);
}
std::string_view Message::payload() const {
  if (msg_->payload == nullptr) return {};
  return {static_cast<const char*>(msg_->payload), msg_->len};
}
std::optional<std::int64_t> Message::timestamp_ms() const {
  rd_kafka_timestamp_type_t type;
  const auto ts = rd_kafka_message_timestamp(msg_, &type);
  if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ts < 0) return std::nullopt;
  return ts;
}

std::vector<std::pair<std::string_view, std::string_view>> Message::headers() const {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  rd_kafka_headers_t* hdrs = nullptr;
  // The message keeps ownership of its parsed headers; the views live as long as it does.
  if (rd_kafka_message_headers(msg_, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out.emplace_back(name, value != nullptr
                               ? std::string_view(static_cast<const char*>(value), size)
                               : std::string_view{});
  }
  return out;
}

std::optional<std::string_view> Message::header(std::string_view name) const {
  std::optional<std::string_view> found;
  for (const auto& [k, v] : headers()) {
    if (k == name) found = v;
  }
  return found;
}

MessageBatch::MessageBatch(MessageBatch&& other) noexcept
    : messages_(std::move(other.messages_)),
      errors_(std::move(other.errors_)),
      offset_resets_(std::move(other.offset_resets_)) {
  other.messages_.clear();
}

MessageBatch& MessageBatch::operator=(MessageBatch&& other) noexcept {
  if (this != &other) {
    release();
    messages_ = std::move(other.messages_);
    errors_ = std::move(other.errors_);
    offset_resets_ = std::move(other.offset_resets_);
    other.messages_.clear();
  }
  return *this;
}

MessageBatch::~MessageBatch() { release(); }

void MessageBatch::release() noexcept {
  for (const auto& m : messages_) {
    // Message only hands out const views; the batch is the owner.
    rd_kafka_message_destroy(const_cast<rd_kafka_message_t*>(m.msg_));
  }
  messages_.clear();
}

namespace {
template <bool kFirst>
std::vector<TopicPartitionOffset> edge_offsets(const std::vector<Message>& messages) {
  std::map<std::pair<std::string_view, std::int32_t>, std::int64_t> edges;
  for (const auto& m : messages) {
    const auto key = std::make_pair(m.topic(), m.partition());
    const std::int64_t value = kFirst ? m.offset() : m.offset() + 1;
    auto [it, inserted] = edges.emplace(key, value);
    if (!inserted) it->second = kFirst ? std::min(it->second, value) : std::max(it->second, value);
  }
  std::vector<TopicPartitionOffset> out;
  out.reserve(edges.size());
  for (const auto& [key, offset] : edges) {
    out.push_back({std::string(key.first), key.second, offset});
  }
  return out;
}
}  // namespace

std::vector<TopicPartitionOffset> MessageBatch::next_offsets() const {
  return edge_offsets<false>(messages_);
}
std::vector<TopicPartitionOffset> MessageBatch::first_offsets() const {
  return edge_offsets<true>(messages_);
}

// =============================================================================================
// Consumer

struct Consumer::Impl : ClientState {
  KafkaPtr rk;
  AssignHandler on_assign;
  RevokeHandler on_revoke;
  bool start_from_earliest = true;
  bool closed = false;
  // The main queue (errors, statistics) is forwarded to the consumer queue at subscribe; before
  // that, lookups serve it themselves so that a failed connection's cause reaches error_cb.
  std::mutex main_queue_mutex;
  bool main_queue_forwarded = false;
  // close() gave up waiting for the group: destroying the handle must not wait for it again
  // (rd_kafka_destroy would run the blocking close that close() bounded).
  bool abandon_group_on_destroy = false;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() override {
    if (abandon_group_on_destroy && rk) {
      rd_kafka_destroy_flags(rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
  }
  // Offset resets seen while serving the current poll; handed out with its batch.
  std::vector<OffsetReset> pending_resets;
  // The offset each assigned partition was started at, to rebuild the assignment after a reset.
  std::map<TopicPartition, std::int64_t> assigned_start;

  std::int64_t fallback_offset() const {
    return start_from_earliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
  }

  static std::vector<TopicPartition> to_partitions(const rd_kafka_topic_partition_list_t* list) {
    std::vector<TopicPartition> out;
    out.reserve(static_cast<std::size_t>(list->cnt));
    for (int i = 0; i < list->cnt; ++i) {
      out.push_back({list->elems[i].topic, list->elems[i].partition});
    }
    return out;
  }

  // Resolves committed() starts here rather than leaving RD_KAFKA_OFFSET_STORED to librdkafka:
  // with auto.offset.reset=error, a partition without a committed offset would otherwise stop
  // with an error (see handle_offset_reset for why reset is "error").
  void resolve_committed(rd_kafka_topic_partition_list_t* partitions) {
    PartitionListPtr wanted(rd_kafka_topic_partition_list_new(partitions->cnt));
    for (int i = 0; i < partitions->cnt; ++i) {
      if (partitions->elems[i].offset == RD_KAFKA_OFFSET_STORED) {
        rd_kafka_topic_partition_list_add(wanted.get(), partitions->elems[i].topic,
                                          partitions->elems[i].partition);
      }
    }
    if (wanted->cnt == 0) return;
    if (auto e = rd_kafka_committed(rk.get(), wanted.get(), 10000);
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
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

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    auto* self = static_cast<Impl*>(static_cast<ClientState*>(opaque));
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    const auto tps = to_partitions(partitions);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      std::vector<StartOffset> starts;
      if (self->on_assign) {
        try {
          starts = self->on_assign(tps);
        } catch (const std::exception& e) {
          spdlog::error("kafka consumer: assign handler threw ({}); using committed offsets",
                        e.what());
          starts.clear();
        }
      }
      if (starts.size() != tps.size()) starts.assign(tps.size(), StartOffset::committed());
      for (int i = 0; i < partitions->cnt; ++i) {
        const auto& s = starts[static_cast<std::size_t>(i)];
        auto& p = partitions->elems[i];
        switch (s.kind) {
          case StartOffset::Kind::kOffset:
            p.offset = s.offset >= 0 ? s.offset : self->fallback_offset();
            break;
          case StartOffset::Kind::kCommitted:
            p.offset = RD_KAFKA_OFFSET_STORED;
            break;
          case StartOffset::Kind::kEarliest:
            p.offset = RD_KAFKA_OFFSET_BEGINNING;
            break;
          case StartOffset::Kind::kLatest:
            p.offset = RD_KAFKA_OFFSET_END;
            break;
        }
      }
      self->resolve_committed(partitions);
      if (!cooperative) self->assigned_start.clear();
      for (int i = 0; i < partitions->cnt; ++i) {
        self->assigned_start[tps[static_cast<std::size_t>(i)]] = partitions->elems[i].offset;
      }
      spdlog::info("kafka consumer: assigned {} partitions", partitions->cnt);
      if (cooperative) {
        detail::ErrorPtr error(rd_kafka_incremental_assign(rk, partitions));
        if (error) {
          spdlog::error("kafka consumer: incremental assign: {}",
                        rd_kafka_error_string(error.get()));
        }
      } else if (auto e = rd_kafka_assign(rk, partitions); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::error("kafka consumer: assign: {}", rd_kafka_err2str(e));
      }
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      if (rd_kafka_assignment_lost(rk)) {
        spdlog::warn("kafka consumer: {} partitions lost (session timed out)", partitions->cnt);
      }
      if (self->on_revoke) {
        try {
          self->on_revoke(tps);
        } catch (const std::exception& e) {
          spdlog::error("kafka consumer: revoke handler threw: {}", e.what());
        }
      }
      for (const auto& tp : tps) self->assigned_start.erase(tp);
      if (cooperative) {
        detail::ErrorPtr error(rd_kafka_incremental_unassign(rk, partitions));
      } else {
        rd_kafka_assign(rk, nullptr);
      }
      return;
    }
    spdlog::error("kafka consumer: rebalance error: {}", rd_kafka_err2str(err));
    self->assigned_start.clear();
    rd_kafka_assign(rk, nullptr);
  }

  // auto.offset.reset is "error" because librdkafka would otherwise reset silently, and
  // Painpoint must count what retention took. The partition's fetcher is stopped at this point
  // and a seek does not restart it (librdkafka 2.0.2), so the partition is re-assigned at the
  // new offset; the other partitions are re-assigned at their current positions.
  void handle_offset_reset(const rd_kafka_message_t* msg) {
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
      spdlog::error("kafka consumer: restarting {}[{}] after offset reset: {}",
                    reset.partition.topic, reset.partition.partition, s.to_string());
    }
    if (reset.requested >= 0) {
      pending_resets.push_back(std::move(reset));
    } else {
      spdlog::debug("kafka consumer: {}[{}] had no committed offset; starting at {}",
                    reset.partition.topic, reset.partition.partition, target);
    }
  }

  Status restart_partition(const TopicPartition& tp, std::int64_t offset) {
    assigned_start[tp] = offset;
    if (std::strcmp(rd_kafka_rebalance_protocol(rk.get()), "COOPERATIVE") == 0) {
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
};

namespace {

// Consumers being destroyed in the background (see await_background_teardown). Never destroyed
// itself, so that a teardown still running while the process exits finds it intact.
struct Teardowns {
  std::mutex mutex;
  std::condition_variable done;
  int running = 0;
};

Teardowns& teardowns() {
  static auto* instance = new Teardowns;
  return *instance;
}

}  // namespace

// The thread owns the whole Impl: librdkafka's callbacks point at it until destroy returns.
void Consumer::release(std::unique_ptr<Impl> impl) {
  if (!impl) return;
  if (!impl->abandon_group_on_destroy) return;  // ~Impl destroys at once
  Teardowns& t = teardowns();
  {
    std::lock_guard lock(t.mutex);
    ++t.running;
  }
  std::thread([impl = std::move(impl)]() mutable {
    impl.reset();
    Teardowns& state = teardowns();
    std::lock_guard lock(state.mutex);
    --state.running;
    state.done.notify_all();
  }).detach();
}

bool await_background_teardown(std::chrono::milliseconds timeout) {
  Teardowns& t = teardowns();
  std::unique_lock lock(t.mutex);
  return t.done.wait_for(lock, timeout, [&t] { return t.running == 0; });
}

Consumer::Consumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    if (impl_) (void)close();
    release(std::move(impl_));
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Consumer::~Consumer() {
  if (impl_) (void)close();
  release(std::move(impl_));
}

Result<Consumer> Consumer::create(const ConsumerConfig& config) {
  if (config.brokers.empty()) return Status::Error(KafkaErrc::kInvalidConfig, "no brokers");
  if (config.group_id.empty()) return Status::Error(KafkaErrc::kInvalidConfig, "no group id");
  std::map<std::string, std::string> props{
      {"bootstrap.servers", config.brokers},
      {"group.id", config.group_id},
      {"client.id", config.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // librdkafka would reset silently; we reset ourselves so that lost data gets reported.
      {"auto.offset.reset", "error"},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", std::to_string(config.session_timeout.count())},
      {"max.poll.interval.ms", std::to_string(config.max_poll_interval.count())},
      {"statistics.interval.ms", std::to_string(config.stats_interval.count())},
      {"fetch.wait.max.ms", std::to_string(config.fetch_wait_max.count())},
  };
  for (const auto& [k, v] : config.extra) props[k] = v;
  auto conf = detail::make_conf(props);
  if (!conf.ok()) return conf.status();

  auto impl = std::make_unique<Impl>();
  impl->what = "consumer(" + config.group_id + ")";
  impl->start_from_earliest = config.start_from_earliest;
  detail::install_common_cbs(conf->get(), impl.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &Impl::rebalance_cb);
  auto rk = detail::new_client(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!rk.ok()) return rk.status();
  impl->rk = std::move(rk).value();
  return Consumer(std::move(impl));
}

Status Consumer::subscribe(std::span<const std::string> topics, AssignHandler on_assign,
                           RevokeHandler on_revoke) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  if (topics.empty()) return Status::Error(KafkaErrc::kInvalidArgument, "no topics");
  impl_->on_assign = std::move(on_assign);
  impl_->on_revoke = std::move(on_revoke);
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  {
    // From here on one queue carries messages, rebalances and errors, all served by poll_batch().
    std::lock_guard lock(impl_->main_queue_mutex);
    if (!impl_->main_queue_forwarded) rd_kafka_poll_set_consumer(impl_->rk.get());
    impl_->main_queue_forwarded = true;
  }
  return status_from(rd_kafka_subscribe(impl_->rk.get(), list.get()), "subscribe");
}

MessageBatch Consumer::poll_batch(std::size_t max_messages, std::chrono::milliseconds timeout,
                                  std::size_t max_bytes) {
  MessageBatch batch;
  if (!impl_ || impl_->closed || max_messages == 0) return batch;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t bytes = 0;
  while (batch.messages_.size() < max_messages && bytes < max_bytes) {
    int wait_ms = 0;
    if (batch.messages_.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 && !batch.errors_.empty()) break;
      wait_ms = to_timeout_ms(left);
    }
    detail::MessagePtr msg(rd_kafka_consumer_poll(impl_->rk.get(), wait_ms));
    if (!msg) {
      if (batch.messages_.empty() && std::chrono::steady_clock::now() < deadline) continue;
      break;
    }
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      impl_->reachable.store(true);
      bytes += msg->len;
      batch.messages_.emplace_back(msg.release());
      continue;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
      impl_->handle_offset_reset(msg.get());
      continue;
    }
    ConsumerError error;
    error.status = status_from(msg->err, rd_kafka_message_errstr(msg.get()));
    if (msg->rkt != nullptr) {
      error.partition = TopicPartition{rd_kafka_topic_name(msg->rkt), msg->partition};
    }
    batch.errors_.push_back(std::move(error));
    if (batch.messages_.empty() && std::chrono::steady_clock::now() >= deadline) break;
  }
  batch.offset_resets_ = std::move(impl_->pending_resets);
  impl_->pending_resets.clear();
  return batch;
}

Status Consumer::commit(std::span<const TopicPartitionOffset> offsets, bool async) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  if (offsets.empty()) return Status::Ok();
  auto list = detail::to_list(offsets);
  const auto err = rd_kafka_commit(impl_->rk.get(), list.get(), async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "commit");
  return async ? Status::Ok() : detail::first_partition_error(list.get(), "commit");
}

Status Consumer::seek(std::span<const TopicPartitionOffset> offsets,
                      std::chrono::milliseconds timeout) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  if (offsets.empty()) return Status::Ok();
  auto list = detail::to_list(offsets);
  detail::ErrorPtr error(
      rd_kafka_seek_partitions(impl_->rk.get(), list.get(), to_timeout_ms(timeout)));
  if (error) return status_from(error.get(), "seek");
  return detail::first_partition_error(list.get(), "seek");
}

std::optional<Watermarks> Consumer::cached_watermarks(const std::string& topic,
                                                      std::int32_t partition) const {
  if (!impl_) return std::nullopt;
  Watermarks w;
  const auto err =
      rd_kafka_get_watermark_offsets(impl_->rk.get(), topic.c_str(), partition, &w.low, &w.high);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || w.high < 0) return std::nullopt;
  return w;
}

Result<Watermarks> Consumer::query_watermarks(const std::string& topic, std::int32_t partition,
                                              std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  Watermarks w;
  const auto err = rd_kafka_query_watermark_offsets(impl_->rk.get(), topic.c_str(), partition,
                                                    &w.low, &w.high, to_timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return status_from(err, "watermarks of " + topic + "[" + std::to_string(partition) + "]");
  }
  return w;
}

Result<std::vector<TopicPartitionOffset>> Consumer::offsets_for_times(
    std::span<const TopicPartitionOffset> timestamps, std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  auto list = detail::to_list(timestamps);
  const auto err = rd_kafka_offsets_for_times(impl_->rk.get(), list.get(), to_timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "offsets_for_times");
  if (auto s = detail::first_partition_error(list.get(), "offsets_for_times"); !s.ok()) return s;
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

Result<std::vector<TopicPartitionOffset>> Consumer::committed(
    std::span<const TopicPartition> partitions, std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  const auto err = rd_kafka_committed(impl_->rk.get(), list.get(), to_timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "committed");
  if (auto s = detail::first_partition_error(list.get(), "committed"); !s.ok()) return s;
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

Result<std::string> Consumer::cluster_id(std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  auto id = detail::cluster_id(impl_->rk.get(), timeout);
  if (id.ok()) return id;
  {
    std::lock_guard lock(impl_->main_queue_mutex);
    if (!impl_->main_queue_forwarded) rd_kafka_poll(impl_->rk.get(), 0);
  }
  return detail::with_connection_problem(id.status(), *impl_);
}

Result<std::vector<TopicPartition>> Consumer::assignment() const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  rd_kafka_topic_partition_list_t* raw = nullptr;
  const auto err = rd_kafka_assignment(impl_->rk.get(), &raw);
  PartitionListPtr list(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "assignment");
  return Impl::to_partitions(list.get());
}

bool Consumer::broker_reachable() const { return impl_ && impl_->reachable.load(); }
std::string Consumer::connection_problem() const {
  return impl_ ? impl_->connection_problem() : std::string();
}

Status Consumer::close(std::chrono::milliseconds timeout) {
  if (!impl_ || impl_->closed) return Status::Ok();
  impl_->closed = true;
  rd_kafka_t* rk = impl_->rk.get();
  // rd_kafka_consumer_close() waits as long as the group coordinator takes to answer, which is
  // forever while the broker is down. The queue variant closes in the background and lets us
  // bound the wait; its rebalance events (the final revoke) arrive here as events and go through
  // the same handler as in poll_batch().
  detail::QueuePtr queue(rd_kafka_queue_new(rk));
  if (detail::ErrorPtr error(rd_kafka_consumer_close_queue(rk, queue.get())); error) {
    return status_from(error.get(), "close");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (rd_kafka_consumer_closed(rk) == 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      impl_->abandon_group_on_destroy = true;
      return Status::Error(KafkaErrc::kTimedOut,
                           "close: the group coordinator did not confirm within " +
                               std::to_string(timeout.count()) +
                               " ms; leaving without it (the member expires after the session "
                               "timeout)");
    }
    detail::EventPtr event(rd_kafka_queue_poll(queue.get(), std::min(to_timeout_ms(left), 100)));
    if (!event) continue;
    if (rd_kafka_event_type(event.get()) == RD_KAFKA_EVENT_REBALANCE) {
      Impl::rebalance_cb(rk, rd_kafka_event_error(event.get()),
                         rd_kafka_event_topic_partition_list(event.get()),
                         static_cast<ClientState*>(impl_.get()));
    }
  }
  return Status::Ok();
}

}  // namespace painpoint::ingest

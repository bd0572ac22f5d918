// The idempotent producer (producer.h): delivery reports with a caller tag, backpressure on a full
// local queue, metadata prefetch.
#include "painpoint/ingest/producer.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <map>
#include <optional>

#include "client_state.h"
#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest {

using detail::ClientState;
using detail::status_from;
using detail::to_timeout_ms;

struct Producer::Impl : ClientState {
  detail::KafkaPtr rk;
  // The queue poll() serves (delivery reports); wake() yields it. Destroyed before rk.
  detail::QueuePtr main_queue;
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
  impl->main_queue.reset(rd_kafka_queue_get_main(impl->rk.get()));
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

  std::optional<std::chrono::steady_clock::time_point> deadline;  // set when the queue is full
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
    const auto now = std::chrono::steady_clock::now();
    if (!deadline) deadline = now + impl_->backpressure_timeout;
    if (now >= *deadline) {
      return status_from(error.get(), "produce to " + topic_name);
    }
    rd_kafka_poll(impl_->rk.get(), 100);
  }
}

int Producer::poll(std::chrono::milliseconds timeout) {
  return impl_ ? rd_kafka_poll(impl_->rk.get(), to_timeout_ms(timeout)) : 0;
}

void Producer::wake() {
  if (impl_ && impl_->main_queue) rd_kafka_queue_yield(impl_->main_queue.get());
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

}  // namespace painpoint::ingest

// The group consumer (consumer.h): subscription, batched polls, commits, seeks and lookups, and its
// bounded close. Rebalances are in consumer_rebalance.cc.
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "consumer_impl.h"

namespace painpoint::ingest {

using detail::ClientState;
using detail::PartitionListPtr;
using detail::status_from;
using detail::to_timeout_ms;

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
      {"partition.assignment.strategy", config.assignment_strategy},
  };
  if (!config.group_instance_id.empty()) props["group.instance.id"] = config.group_instance_id;
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

namespace {

// The listener behind subscribe() with handlers.
class HandlerListener final : public RebalanceListener {
 public:
  HandlerListener(AssignHandler on_assign, RevokeHandler on_revoke)
      : on_assign_(std::move(on_assign)), on_revoke_(std::move(on_revoke)) {}
  std::vector<StartOffset> on_assigned(std::span<const TopicPartition> partitions,
                                       RebalanceProtocol /*protocol*/) override {
    return on_assign_ ? on_assign_(partitions) : std::vector<StartOffset>{};
  }
  void on_revoked(std::span<const TopicPartition> partitions, bool /*lost*/,
                  RebalanceProtocol /*protocol*/) override {
    if (on_revoke_) on_revoke_(partitions);
  }

 private:
  AssignHandler on_assign_;
  RevokeHandler on_revoke_;
};

}  // namespace

Status Consumer::subscribe(std::span<const std::string> topics, AssignHandler on_assign,
                           RevokeHandler on_revoke) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  auto listener = std::make_unique<HandlerListener>(std::move(on_assign), std::move(on_revoke));
  auto& handlers = *listener;
  impl_->owned_listener = std::move(listener);
  return subscribe(topics, handlers);
}

Status Consumer::subscribe(std::span<const std::string> topics, RebalanceListener& listener) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  if (topics.empty()) return Status::Error(KafkaErrc::kInvalidArgument, "no topics");
  impl_->listener = &listener;
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

Status Consumer::seek(const TopicPartition& partition, std::int64_t next_offset,
                      std::chrono::milliseconds timeout) {
  const TopicPartitionOffset one{partition.topic, partition.partition, next_offset};
  return seek(std::span(&one, 1), timeout);
}

namespace {

Status set_paused(rd_kafka_t* rk, std::span<const TopicPartition> partitions, bool paused) {
  auto list = detail::to_list(partitions);
  const auto err = paused ? rd_kafka_pause_partitions(rk, list.get())
                          : rd_kafka_resume_partitions(rk, list.get());
  const std::string what = paused ? "pause" : "resume";
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, what);
  return detail::first_partition_error(list.get(), what);
}

}  // namespace

Status Consumer::pause(std::span<const TopicPartition> partitions) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  return set_paused(impl_->rk.get(), partitions, true);
}

Status Consumer::resume(std::span<const TopicPartition> partitions) {
  if (!impl_ || impl_->closed) return Status::Error(KafkaErrc::kState, "consumer closed");
  return set_paused(impl_->rk.get(), partitions, false);
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
  return detail::to_offsets(list.get());
}

Result<std::vector<TopicPartitionOffset>> Consumer::committed(
    std::span<const TopicPartition> partitions, std::chrono::milliseconds timeout) const {
  if (!impl_) return Status::Error(KafkaErrc::kState, "consumer moved from");
  auto list = detail::to_list(partitions);
  const auto err = rd_kafka_committed(impl_->rk.get(), list.get(), to_timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return status_from(err, "committed");
  if (auto s = detail::first_partition_error(list.get(), "committed"); !s.ok()) return s;
  return detail::to_offsets(list.get());
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
  return detail::to_partitions(list.get());
}

RebalanceProtocol Consumer::rebalance_protocol() const {
  return impl_ ? impl_->protocol() : RebalanceProtocol::kEager;
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

#include "painpoint/ingest/worker.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <thread>

#include "painpoint/ingest/consumer.h"
#include "painpoint/ingest/producer.h"
#include "painpoint/ingest/topics.h"

namespace painpoint::ingest {
namespace {

// A dead letter must always be writable, or one oversize message would block its partition
// forever. Beyond this, the original bytes are cut (and the cut is flagged in a header).
constexpr std::size_t kDeadletterMaxPayload = 512 * 1024;

}  // namespace

struct IngestWorker::Impl {
  IngestConfig config;
  IngestCounters counters;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> running{false};
  // steady_clock time (ns since epoch) at which the batch in flight started waiting for its
  // acknowledgements; 0 while none waits.
  std::atomic<std::int64_t> waiting_since_ns{0};
  std::optional<Consumer> consumer;
  std::optional<Producer> producer;
  std::thread thread;
  // Failed deliveries of the batch in progress; only touched on the worker thread (delivery
  // reports are served inside produce()/flush(), which only the worker thread calls).
  std::uint64_t batch_delivery_failures = 0;
  // Offsets committed (asynchronously) per owned partition; committed once more, synchronously,
  // on stop. Revoked partitions are dropped so that a stale offset never overwrites the new
  // owner's commits.
  std::map<TopicPartition, std::int64_t> committed;
  // Whether input holds apply (config.stage_backlog on a mock cluster): unknown until the cluster
  // id was read, and applied meanwhile, on the safe side.
  std::optional<bool> mock_cluster;
  std::chrono::steady_clock::time_point next_cluster_lookup{};
  bool holding = false;
  std::chrono::steady_clock::time_point held_since{};

  void run();
  bool holds_apply();
  void update_hold();
  void set_input_paused(bool paused);
  bool process(const MessageBatch& batch);
  bool await_deliveries();
  Status route(const Message& message, std::chrono::system_clock::time_point now,
               v1::FeedbackEvent& event, std::string& buffer);
  void sleep_unless_stopped(std::chrono::milliseconds duration) const;
};

IngestWorker::IngestWorker(IngestConfig config) : impl_(std::make_unique<Impl>()) {
  if (config.input_topics.empty()) config.input_topics = input_topics();
  impl_->config = std::move(config);
}

IngestWorker::~IngestWorker() { stop(); }

const IngestCounters& IngestWorker::counters() const { return impl_->counters; }
bool IngestWorker::running() const { return impl_->running.load(); }
bool IngestWorker::broker_reachable() const {
  return impl_->consumer && impl_->producer && impl_->consumer->broker_reachable();
}

std::string IngestWorker::connection_problem() const {
  std::string problem = impl_->consumer ? impl_->consumer->connection_problem() : std::string();
  if (problem.empty() && impl_->producer) problem = impl_->producer->connection_problem();
  return problem;
}

std::chrono::milliseconds IngestWorker::waiting_for_acks() const {
  const std::int64_t since = impl_->waiting_since_ns.load();
  if (since == 0) return std::chrono::milliseconds{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now -
                                                               std::chrono::nanoseconds(since));
}

Status IngestWorker::start() {
  if (impl_->thread.joinable()) return Status::Error(KafkaErrc::kState, "already started");
  const auto& cfg = impl_->config;
  if (cfg.batch_size == 0) return Status::Error(KafkaErrc::kInvalidConfig, "batch_size is 0");

  ProducerConfig pc;
  pc.brokers = cfg.brokers;
  pc.client_id = "painpoint-ingest";
  pc.delivery_timeout = cfg.delivery_timeout;
  pc.compression = cfg.output_compression;
  pc.extra = cfg.producer_extra;
  auto* impl = impl_.get();
  auto producer = Producer::create(pc, [impl](const DeliveryReport& report) {
    if (report.status.ok()) {
      impl->counters.produced.fetch_add(1);
      if (impl->config.stage_backlog && report.topic == impl->config.output_topic) {
        impl->config.stage_backlog->produced(report.partition, report.offset, report.tag);
      }
    } else {
      impl->counters.delivery_failures.fetch_add(1);
      ++impl->batch_delivery_failures;
      // On stop, the abandoned batch's messages are purged: one summary line says so instead.
      if (impl->stop_requested.load()) {
        spdlog::debug("ingest: delivery failed: {}", report.status.to_string());
      } else {
        spdlog::warn("ingest: delivery failed: {}", report.status.to_string());
      }
    }
  });
  if (!producer.ok()) return producer.status();
  const std::array<std::string, 2> outputs{cfg.output_topic, cfg.deadletter_topic};
  if (auto s = producer->prefetch_metadata(outputs, std::chrono::seconds(2)); !s.ok()) {
    spdlog::warn("ingest: output topics not looked up yet ({}); the first batch waits for it",
                 s.to_string());
  }

  ConsumerConfig cc;
  cc.brokers = cfg.brokers;
  cc.group_id = cfg.group_id;
  cc.client_id = "painpoint-ingest";
  cc.extra = cfg.consumer_extra;
  auto consumer = Consumer::create(cc);
  if (!consumer.ok()) return consumer.status();
  // Ingest is stateless: the group's committed offsets are the whole truth.
  if (auto s = consumer->subscribe(cfg.input_topics, nullptr,
                                   [impl](std::span<const TopicPartition> revoked) {
                                     for (const auto& tp : revoked) impl->committed.erase(tp);
                                   });
      !s.ok()) {
    return s;
  }

  impl_->producer.emplace(std::move(producer).value());
  impl_->consumer.emplace(std::move(consumer).value());
  impl_->stop_requested.store(false);
  impl_->running.store(true);
  impl_->thread = std::thread([impl] {
    pthread_setname_np(pthread_self(), "pp-ingest");
    impl->run();
  });
  return Status::Ok();
}

void IngestWorker::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->stop_requested.store(true);
  impl_->thread.join();
}

void IngestWorker::Impl::sleep_unless_stopped(std::chrono::milliseconds duration) const {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (!stop_requested.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void IngestWorker::Impl::run() {
  spdlog::info("ingest: consuming {} topics as group {}", config.input_topics.size(),
               config.group_id);
  while (!stop_requested.load()) {
    update_hold();
    // While held, the poll only serves the group (and the few messages of partitions assigned
    // since the last pause); short, so that the input resumes soon after the stage caught up.
    const auto timeout = holding ? std::chrono::milliseconds(20) : config.poll_timeout;
    const std::size_t max_bytes = holds_apply() ? config.held_batch_bytes : SIZE_MAX;
    MessageBatch batch = consumer->poll_batch(config.batch_size, timeout, max_bytes);
    for (const auto& error : batch.errors()) {
      counters.consumer_errors.fetch_add(1);
      spdlog::warn("ingest: consumer error: {}", error.status.to_string());
    }
    for (const auto& reset : batch.offset_resets()) {
      counters.lost_to_retention.fetch_add(static_cast<std::uint64_t>(reset.lost()));
      spdlog::error(
          "ingest: offset {} of {}[{}] is no longer on the broker (earliest {}); {} messages "
          "lost to retention, continuing at {}",
          reset.requested, reset.partition.topic, reset.partition.partition, reset.low_watermark,
          reset.lost(), reset.resumed_at);
    }
    if (batch.empty()) continue;
    if (process(batch)) continue;
    if (stop_requested.load()) break;  // not committed: read again after a restart
    // Redo the batch: at-least-once, and the aggregator dedupes by event id.
    const auto first = batch.first_offsets();
    if (auto s = consumer->seek(first, std::chrono::seconds(5)); !s.ok()) {
      spdlog::warn("ingest: rewinding the failed batch: {}", s.to_string());
    }
    sleep_unless_stopped(config.retry_backoff);
  }
  if (holding) set_input_paused(false);
  // An abandoned batch may have left messages in the producer; they are re-sent after a restart.
  if (producer->in_flight() > 0) producer->purge();
  // Every batch was flushed before its offsets were committed asynchronously; commit the last
  // offsets once more and leave the group, which waits (bounded) for the outstanding commits. A
  // synchronous commit would wait for an unreachable coordinator without a bound.
  std::vector<TopicPartitionOffset> final_offsets;
  for (const auto& [tp, offset] : committed)
    final_offsets.push_back({tp.topic, tp.partition, offset});
  if (auto s = consumer->commit(final_offsets, true); !s.ok()) {
    spdlog::warn("ingest: final commit: {}", s.to_string());
  }
  if (auto s = consumer->close(config.close_timeout); !s.ok()) {
    spdlog::warn("ingest: close: {}", s.to_string());
  }
  running.store(false);
  spdlog::info("ingest: stopped");
}

bool IngestWorker::Impl::holds_apply() {
  if (!config.stage_backlog) return false;
  if (mock_cluster) return *mock_cluster;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_cluster_lookup) return true;
  next_cluster_lookup = now + std::chrono::seconds(5);
  auto id = consumer->cluster_id(std::chrono::milliseconds(500));
  if (!id.ok()) return true;
  mock_cluster = is_mock_cluster(*id);
  if (*mock_cluster) {
    const StageBacklog::Limits& limits = config.stage_backlog->limits();
    spdlog::info(
        "ingest: the broker is librdkafka's mock cluster, which keeps at most 5 MiB per "
        "partition: ingest holds its input while the aggregator stage is more than {} KiB or {} "
        "messages behind on a partition of {}",
        limits.hold_bytes >> 10, limits.hold_messages, config.output_topic);
  }
  return *mock_cluster;
}

// Holds start above the hold marks and end at the resume marks, so the input is not paused
// and resumed with every batch the stage polls.
void IngestWorker::Impl::update_hold() {
  const bool apply = holds_apply();
  const auto now = std::chrono::steady_clock::now();
  if (holding && (!apply || config.stage_backlog->may_resume())) {
    holding = false;
    counters.stage_held_ms.fetch_add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - held_since).count()));
    set_input_paused(false);
    return;
  }
  if (!holding && apply && config.stage_backlog->should_hold()) {
    holding = true;
    held_since = now;
    counters.stage_holds.fetch_add(1);
    const StageBacklog::Largest largest = config.stage_backlog->largest();
    spdlog::debug("ingest: holding the input: the aggregator stage is {} messages (~{} KiB) behind",
                  largest.messages, largest.bytes >> 10);
  }
  // Again on every poll while holding: partitions assigned meanwhile start unpaused.
  if (holding) set_input_paused(true);
}

void IngestWorker::Impl::set_input_paused(bool paused) {
  auto assigned = consumer->assignment();
  if (!assigned.ok()) {
    spdlog::warn("ingest: reading the assignment: {}", assigned.status().to_string());
    return;
  }
  if (assigned->empty()) return;
  const Status s = paused ? consumer->pause(*assigned) : consumer->resume(*assigned);
  if (!s.ok()) spdlog::warn("ingest: {}", s.to_string());
}

// Routes every message of the batch, waits for all acknowledgements, then commits.
// Returns false when the batch has to be redone.
bool IngestWorker::Impl::process(const MessageBatch& batch) {
  batch_delivery_failures = 0;
  v1::FeedbackEvent event;
  std::string buffer;
  // One reading of the clock per batch, whose messages were polled together.
  const auto now = std::chrono::system_clock::now();
  for (const auto& message : batch) {
    counters.consumed.fetch_add(1);
    if (auto s = route(message, now, event, buffer); !s.ok()) {
      spdlog::error("ingest: cannot produce output of {}[{}]@{}: {}", message.topic(),
                    message.partition(), message.offset(), s.to_string());
      (void)await_deliveries();  // settle what was sent, then redo
      return false;
    }
  }
  if (!await_deliveries()) return false;
  if (batch_delivery_failures > 0) return false;
  const auto next = batch.next_offsets();
  for (const auto& tpo : next) committed[{tpo.topic, tpo.partition}] = tpo.offset;
  if (auto s = consumer->commit(next, true); !s.ok()) {
    // Not fatal: the next commit covers these offsets, or they are re-read after a restart.
    spdlog::warn("ingest: commit: {}", s.to_string());
  }
  counters.batches_committed.fetch_add(1);
  return true;
}

// Waits until every message of the batch is acknowledged or failed. False after
// delivery_timeout, or stop_grace after a stop request: the batch is then not committed.
bool IngestWorker::Impl::await_deliveries() {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  const auto deadline = started + config.delivery_timeout;
  std::optional<Clock::time_point> stop_deadline;
  struct ClearOnExit {
    std::atomic<std::int64_t>& since;
    ~ClearOnExit() { since.store(0); }
  } clear{waiting_since_ns};
  waiting_since_ns.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count());
  for (;;) {
    if (producer->flush(std::chrono::milliseconds(100)).ok()) return true;
    const auto now = Clock::now();
    if (now >= deadline) {
      spdlog::error("ingest: {} output messages not acknowledged within {} ms; redoing the batch",
                    producer->in_flight(), config.delivery_timeout.count());
      return false;
    }
    if (stop_requested.load() && !stop_deadline) stop_deadline = now + config.stop_grace;
    if (stop_deadline && now >= *stop_deadline) {
      spdlog::warn(
          "ingest: stopping with {} output messages unacknowledged; their batch stays "
          "uncommitted and is read again after a restart",
          producer->in_flight());
      return false;
    }
  }
}

Status IngestWorker::Impl::route(const Message& message, std::chrono::system_clock::time_point now,
                                 v1::FeedbackEvent& event, std::string& buffer) {
  auto rejection = parse_wire_event(message.payload(), &event);
  if (!rejection) {
    rejection =
        validate_and_normalize(event, source_for_topic(message.topic()), config.validation, now);
  }
  if (!rejection) {
    counters.valid.fetch_add(1);
    event.SerializeToString(&buffer);
    // The tag tells the stage backlog the message's size when it is acknowledged.
    return producer->produce(config.output_topic, event.product_id(), buffer, {},
                             event.product_id().size() + buffer.size());
  }

  counters.invalid.fetch_add(1);
  std::vector<Header> headers{
      {std::string(kHeaderReason), std::string(reason_code(rejection->reason))},
      {std::string(kHeaderDetail), rejection->detail},
      {std::string(kHeaderTopic), std::string(message.topic())},
      {std::string(kHeaderPartition), std::to_string(message.partition())},
      {std::string(kHeaderOffset), std::to_string(message.offset())},
  };
  std::string_view payload = message.payload();
  if (payload.size() > kDeadletterMaxPayload) {
    payload = payload.substr(0, kDeadletterMaxPayload);
    headers.push_back({"painpoint.truncated_from", std::to_string(message.payload().size())});
  }
  return producer->produce(config.deadletter_topic, message.key(), payload, headers);
}

}  // namespace painpoint::ingest

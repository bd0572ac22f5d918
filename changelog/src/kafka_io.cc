#include "kafka_io.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

namespace painpoint::changelog::detail {
namespace kd = ingest::detail;
using Clock = std::chrono::steady_clock;

Status from_kafka(const ingest::Status& status) {
  if (status.ok()) return Status::Ok();
  const auto code = status.code == ingest::KafkaErrc::kTimedOut ? ChangelogErrc::kTimedOut
                                                               : ChangelogErrc::kKafka;
  return Status::Error(code, status.to_string(), status.native_error);
}

namespace {

std::optional<std::string_view> header_of(const rd_kafka_message_t& msg, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&msg, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return std::string_view(static_cast<const char*>(value), size);
}

constexpr int kRestoreFetchBytes = 16 * 1024 * 1024;

Status kafka_error(rd_kafka_resp_err_t err, const std::string& context) {
  return from_kafka(kd::status_from(err, context));
}

Result<kd::ConfPtr> conf_for(const ChangelogConfig& config, ingest::ClientRole role) {
  auto props = config.clients.for_role(role);
  props["bootstrap.servers"] = config.brokers;
  props["client.id"] = "painpoint-changelog";
  if (role == ingest::ClientRole::kProducer) {
    // Each batch waits for its acknowledgements before the local commit: no reordering, no
    // duplicates, every replica.
    props["enable.idempotence"] = "true";
    props["acks"] = "all";
    props["linger.ms"] = "5";
    props["compression.type"] = "lz4";
  } else {
    // One partition is read at a time: librdkafka's 1 MiB per partition and fetch capped a
    // restore from Apache Kafka at one round trip per MiB. The operator may still set it.
    props.try_emplace("fetch.message.max.bytes", std::to_string(kRestoreFetchBytes));
    props["enable.partition.eof"] = "true";
    // A restore waits for nothing but the records already there and its own markers; the
    // embedded broker holds an empty fetch for the whole wait (librdkafka's default: 500 ms).
    props["fetch.wait.max.ms"] = "10";
    // A checkpoint below the log start (retention on a topic that should be compacted) reads
    // what is there; compaction keeps every key's latest value, so nothing is skipped.
    props["auto.offset.reset"] = "earliest";
  }
  auto conf = kd::make_conf(props);
  if (!conf.ok()) return from_kafka(conf.status());
  kd::install_log_cb(conf->get());
  return std::move(conf).value();
}

// Fills the client's metadata cache for `topic`: without it a new client's first message (or
// fetch) waited for librdkafka's periodic lookup, 500 ms on the embedded broker. Asking also
// reports a missing topic now rather than as a timeout later.
Status prefetch_metadata(rd_kafka_t* rk, rd_kafka_topic_t* rkt, const std::string& topic,
                         std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  const auto err = rd_kafka_metadata(rk, 0, rkt, &raw, kd::to_timeout_ms(timeout));
  kd::MetadataPtr metadata(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(err, "metadata of " + topic);
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    if (metadata->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return kafka_error(metadata->topics[i].err, "metadata of " + topic);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Decoded> decode_message(const rd_kafka_message_t& msg) {
  const std::string_view key(static_cast<const char*>(msg.key), msg.key_len);
  std::optional<std::string_view> value;
  if (msg.payload != nullptr) value = std::string_view(static_cast<const char*>(msg.payload), msg.len);
  auto decoded = decode(key, value, header_of(msg, kHeaderEpoch.data()),
                        header_of(msg, kHeaderBatch.data()));
  if (!decoded.ok()) {
    return Status::Error(ChangelogErrc::kCorrupt,
                         decoded.status().message + " at offset " + std::to_string(msg.offset));
  }
  return decoded;
}

// ------------------------------------------------------------------------------------------------

namespace {

// The acknowledgements one appender waits for. A generation ends with each wait(): reports of
// messages from an earlier generation (after a failed or timed-out wait) are not counted again.
struct Pending {
  std::mutex mutex;
  std::condition_variable acknowledged;
  std::uint64_t generation = 0;        // guarded by mutex
  std::vector<std::int64_t> offsets;   // per message of this generation: its offset, or -1
  std::size_t delivered = 0;           // reports of this generation
  Status failure;                      // the generation's first failure
};

// A message's opaque: whose it is and where its offset goes. Owned by the message until its
// delivery report (or the producer's purge at destruction).
struct Token {
  std::shared_ptr<Pending> pending;
  std::uint64_t generation = 0;
  std::size_t index = 0;
};

}  // namespace

}  // namespace painpoint::changelog::detail

namespace painpoint::changelog {

// ChangelogProducer is public; its Impl uses this file's helpers.
using detail::Clock;
using detail::Pending;
using detail::Token;
using detail::conf_for;
using detail::from_kafka;
using detail::kafka_error;
using detail::prefetch_metadata;
namespace kd = ingest::detail;

struct ChangelogProducer::Impl {
  kd::KafkaPtr rk;
  std::string topic;
  std::atomic<bool> stop{false};
  std::thread poller;  // serves the delivery reports, so that appenders only wait

  ~Impl() {
    stop = true;
    if (poller.joinable()) poller.join();
    if (!rk) return;
    rd_kafka_flush(rk.get(), 5'000);
    // Whatever is left is reported as purged, which frees its tokens.
    rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk.get(), 0);
  }

  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void*) {
    std::unique_ptr<Token> token(static_cast<Token*>(msg->_private));
    if (!token) return;
    Pending& pending = *token->pending;
    Status failure;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) failure = delivery_failure(rk, msg->err);
    std::lock_guard lock(pending.mutex);
    if (token->generation != pending.generation) return;
    ++pending.delivered;
    if (!failure.ok()) {
      if (pending.failure.ok()) pending.failure = std::move(failure);
    } else if (token->index < pending.offsets.size()) {
      pending.offsets[token->index] = msg->offset;
    }
    if (pending.delivered == pending.offsets.size()) pending.acknowledged.notify_all();
  }

  static Status delivery_failure(rd_kafka_t* rk, rd_kafka_resp_err_t err) {
    if (err != RD_KAFKA_RESP_ERR__FATAL) return kafka_error(err, "changelog delivery");
    std::array<char, 512> reason{};
    rd_kafka_fatal_error(rk, reason.data(), reason.size());
    return Status::Error(ChangelogErrc::kKafka,
                         std::string("changelog delivery: the shared producer failed fatally (") +
                             reason.data() + "); every partition on it must be restored",
                         static_cast<int>(err));
  }
};

ChangelogProducer::ChangelogProducer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangelogProducer::~ChangelogProducer() = default;

Result<std::shared_ptr<ChangelogProducer>> ChangelogProducer::create(
    const ChangelogConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->topic = config.topic;
  auto conf = conf_for(config, ingest::ClientRole::kProducer);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Impl::on_delivery);
  auto rk = kd::new_client(RD_KAFKA_PRODUCER, std::move(conf).value());
  if (!rk.ok()) return from_kafka(rk.status());
  impl->rk = std::move(rk).value();
  kd::TopicPtr rkt(rd_kafka_topic_new(impl->rk.get(), impl->topic.c_str(), nullptr));
  if (!rkt) return kafka_error(rd_kafka_last_error(), "changelog topic handle");
  if (Status s = prefetch_metadata(impl->rk.get(), rkt.get(), impl->topic, config.ack_timeout);
      !s.ok()) {
    return s;
  }
  Impl* raw = impl.get();
  impl->poller = std::thread([raw] {
    while (!raw->stop.load()) rd_kafka_poll(raw->rk.get(), 50);
  });
  return std::shared_ptr<ChangelogProducer>(new ChangelogProducer(std::move(impl)));
}

Status ChangelogProducer::fatal_error() const {
  std::array<char, 512> reason{};
  const auto err = rd_kafka_fatal_error(impl_->rk.get(), reason.data(), reason.size());
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  return Status::Error(ChangelogErrc::kKafka,
                       std::string("the changelog producer failed fatally: ") + reason.data(),
                       static_cast<int>(err));
}

struct ChangelogConsumer::Impl {
  kd::KafkaPtr rk;
  kd::TopicPtr topic;
  std::string topic_name;

  ~Impl() {
    topic.reset();  // before the client it belongs to
    rk.reset();
  }
};

ChangelogConsumer::ChangelogConsumer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangelogConsumer::~ChangelogConsumer() = default;

Result<std::shared_ptr<ChangelogConsumer>> ChangelogConsumer::create(
    const ChangelogConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->topic_name = config.topic;
  auto conf = detail::conf_for(config, ingest::ClientRole::kConsumer);
  if (!conf.ok()) return conf.status();
  auto rk = kd::new_client(RD_KAFKA_CONSUMER, std::move(conf).value());
  if (!rk.ok()) return detail::from_kafka(rk.status());
  impl->rk = std::move(rk).value();
  impl->topic.reset(rd_kafka_topic_new(impl->rk.get(), config.topic.c_str(), nullptr));
  if (!impl->topic) return detail::kafka_error(rd_kafka_last_error(), "changelog topic handle");
  if (Status s = prefetch_metadata(impl->rk.get(), impl->topic.get(), config.topic,
                                   config.ack_timeout);
      !s.ok()) {
    return s;
  }
  return std::shared_ptr<ChangelogConsumer>(new ChangelogConsumer(std::move(impl)));
}

}  // namespace painpoint::changelog

namespace painpoint::changelog::detail {

// ------------------------------------------------------------------------------------------------

struct PartitionAppender::Impl {
  std::shared_ptr<ChangelogProducer> producer;
  std::int32_t partition = 0;
  std::shared_ptr<Pending> pending = std::make_shared<Pending>();
};

PartitionAppender::PartitionAppender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PartitionAppender::PartitionAppender(PartitionAppender&&) noexcept = default;
PartitionAppender& PartitionAppender::operator=(PartitionAppender&&) noexcept = default;
// Messages still in flight keep their Pending alive through their tokens; the producer, shared
// or not, delivers (or at its destruction flushes) them.
PartitionAppender::~PartitionAppender() = default;

Result<PartitionAppender> PartitionAppender::create(const ChangelogConfig& config,
                                                    std::int32_t partition) {
  auto producer = ChangelogProducer::create(config);
  if (!producer.ok()) return producer.status();
  return attach(std::move(producer).value(), partition);
}

PartitionAppender PartitionAppender::attach(std::shared_ptr<ChangelogProducer> producer,
                                            std::int32_t partition) {
  auto impl = std::make_unique<Impl>();
  impl->producer = std::move(producer);
  impl->partition = partition;
  return PartitionAppender(std::move(impl));
}

const std::shared_ptr<ChangelogProducer>& PartitionAppender::producer() const {
  return impl_->producer;
}

Status PartitionAppender::enqueue(std::string_view key, std::optional<std::string_view> value,
                                  std::optional<Headers> headers,
                                  std::chrono::milliseconds timeout) {
  ChangelogProducer::Impl& producer = *impl_->producer->impl_;
  Pending& pending = *impl_->pending;
  auto token = std::make_unique<Token>();
  token->pending = impl_->pending;
  {
    // Before producing: the report may come before produceva() returns.
    std::lock_guard lock(pending.mutex);
    token->generation = pending.generation;
    token->index = pending.offsets.size();
    pending.offsets.push_back(-1);
  }
  std::array<rd_kafka_vu_t, 8> vus{};
  std::size_t count = 0;
  auto add = [&vus, &count](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    vus[count].vtype = type;
    return vus[count++];
  };
  add(RD_KAFKA_VTYPE_TOPIC).u.cstr = producer.topic.c_str();
  add(RD_KAFKA_VTYPE_PARTITION).u.i32 = impl_->partition;
  add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
  // librdkafka's API is not const-correct; with F_COPY it only reads key and value.
  auto& k = add(RD_KAFKA_VTYPE_KEY);
  k.u.mem.ptr = const_cast<char*>(key.data());
  k.u.mem.size = key.size();
  auto& v = add(RD_KAFKA_VTYPE_VALUE);  // a null value is a tombstone
  v.u.mem.ptr = value ? const_cast<char*>(value->data()) : nullptr;
  v.u.mem.size = value ? value->size() : 0;
  add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = token.get();
  std::string epoch, batch;
  if (headers) {
    epoch = std::to_string(headers->epoch);
    batch = std::to_string(headers->batch);
    auto& he = add(RD_KAFKA_VTYPE_HEADER);
    he.u.header.name = kHeaderEpoch.data();
    he.u.header.val = epoch.data();
    he.u.header.size = static_cast<ssize_t>(epoch.size());
    auto& hb = add(RD_KAFKA_VTYPE_HEADER);
    hb.u.header.name = kHeaderBatch.data();
    hb.u.header.val = batch.data();
    hb.u.header.size = static_cast<ssize_t>(batch.size());
  }
  const auto deadline = Clock::now() + timeout;
  while (true) {
    kd::ErrorPtr error(rd_kafka_produceva(producer.rk.get(), vus.data(), count));
    if (!error) {
      (void)token.release();  // the delivery report frees it
      return Status::Ok();
    }
    if (rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
        Clock::now() >= deadline) {
      std::lock_guard lock(pending.mutex);
      pending.offsets.pop_back();  // never enqueued: no report will come
      return from_kafka(kd::status_from(error.get(), "changelog produce"));
    }
    // The poller thread drains the queue as acknowledgements come.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<std::vector<std::int64_t>> PartitionAppender::wait(std::chrono::milliseconds timeout) {
  Pending& pending = *impl_->pending;
  std::unique_lock lock(pending.mutex);
  const bool complete = pending.acknowledged.wait_for(
      lock, timeout, [&pending] { return pending.delivered == pending.offsets.size(); });
  std::vector<std::int64_t> offsets;
  offsets.swap(pending.offsets);
  ++pending.generation;
  pending.delivered = 0;
  Status failure = std::exchange(pending.failure, Status::Ok());
  if (!failure.ok()) return failure;
  if (!complete) {
    return Status::Error(ChangelogErrc::kTimedOut,
                         "changelog records not acknowledged within " +
                             std::to_string(timeout.count()) + " ms");
  }
  return offsets;
}

// ------------------------------------------------------------------------------------------------

struct PartitionReader::Impl {
  std::shared_ptr<ChangelogConsumer> consumer;
  std::int32_t partition = 0;
  bool started = false;

  rd_kafka_t* rk() const { return consumer->impl_->rk.get(); }
  rd_kafka_topic_t* topic() const { return consumer->impl_->topic.get(); }
  const std::string& topic_name() const { return consumer->impl_->topic_name; }

  ~Impl() {
    if (started) rd_kafka_consume_stop(topic(), partition);
  }
};

PartitionReader::PartitionReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PartitionReader::PartitionReader(PartitionReader&&) noexcept = default;
PartitionReader& PartitionReader::operator=(PartitionReader&&) noexcept = default;
PartitionReader::~PartitionReader() = default;

Result<PartitionReader> PartitionReader::create(const ChangelogConfig& config,
                                                std::int32_t partition,
                                                std::int64_t start_offset,
                                                std::shared_ptr<ChangelogConsumer> consumer) {
  if (!consumer) {
    auto own = ChangelogConsumer::create(config);
    if (!own.ok()) return own.status();
    consumer = std::move(own).value();
  }
  auto impl = std::make_unique<Impl>();
  impl->consumer = std::move(consumer);
  impl->partition = partition;
  const std::int64_t offset = start_offset < 0 ? RD_KAFKA_OFFSET_BEGINNING : start_offset;
  if (rd_kafka_consume_start(impl->topic(), partition, offset) != 0) {
    return kafka_error(rd_kafka_last_error(), "changelog read start");
  }
  impl->started = true;
  return PartitionReader(std::move(impl));
}

Result<std::int64_t> PartitionReader::high_watermark(std::chrono::milliseconds timeout) {
  std::int64_t low = -1, high = -1;
  const auto err = rd_kafka_query_watermark_offsets(impl_->rk(), impl_->topic_name().c_str(),
                                                    impl_->partition, &low, &high,
                                                    kd::to_timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka_error(err, "changelog watermarks");
  return high;
}

Result<PartitionReader::Chunk> PartitionReader::read(std::size_t max,
                                                     std::chrono::milliseconds timeout) {
  // rd_kafka_consume_batch() waits for `max` messages or the whole timeout: the first message is
  // waited for alone, the rest taken as far as they are already there.
  std::vector<rd_kafka_message_t*> raw(std::max<std::size_t>(max, 1));
  raw[0] = rd_kafka_consume(impl_->topic(), impl_->partition, kd::to_timeout_ms(timeout));
  if (raw[0] == nullptr) {
    const auto err = rd_kafka_last_error();
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) return Chunk{};
    return kafka_error(err, "changelog read");
  }
  ssize_t n = 1;
  if (raw.size() > 1) {
    const auto more = rd_kafka_consume_batch(impl_->topic(), impl_->partition, 0,
                                             raw.data() + 1, raw.size() - 1);
    if (more > 0) n += more;
  }
  Chunk chunk;
  chunk.messages.reserve(static_cast<std::size_t>(n));
  Status failure;
  for (ssize_t i = 0; i < n; ++i) {
    kd::MessagePtr msg(raw[static_cast<std::size_t>(i)]);
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      chunk.eof_offset = msg->offset;
    } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (failure.ok()) failure = kafka_error(msg->err, "changelog read");
    } else {
      chunk.messages.push_back(std::move(msg));
    }
  }
  if (!failure.ok()) return failure;
  return chunk;
}

}  // namespace painpoint::changelog::detail

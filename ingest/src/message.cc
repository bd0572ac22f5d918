// Consumed messages (views into librdkafka's) and the batch that owns them.
#include <algorithm>
#include <map>

#include "painpoint/ingest/consumer.h"
#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest {

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

}  // namespace painpoint::ingest

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "codec.h"
#include "kafka_io.h"
#include "painpoint/changelog/changelog.h"

namespace painpoint::changelog {
namespace {

// Someone else's records came between `from` and this writer's last offset. A superseded owner's
// late records are harmless (every restore ignores them); anything of a newer epoch means this
// writer has been superseded itself.
Status check_foreign_records(const ChangelogConfig& config, std::int32_t partition,
                             std::int64_t from, std::span<const std::int64_t> own,
                             std::int64_t own_epoch) {
  auto reader = detail::PartitionReader::create(config, partition, from);
  if (!reader.ok()) return reader.status();
  const auto deadline = std::chrono::steady_clock::now() + config.ack_timeout;
  std::int64_t position = from;
  while (position <= own.back()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Error(ChangelogErrc::kTimedOut, "reading back the changelog");
    }
    auto chunk = reader->read(1'000, 100ms);
    if (!chunk.ok()) return chunk.status();
    for (const auto& msg : chunk->messages) {
      position = msg->offset + 1;
      if (std::binary_search(own.begin(), own.end(), msg->offset)) continue;
      auto decoded = detail::decode_message(*msg);
      if (!decoded.ok()) return decoded.status();
      if (decoded->epoch > own_epoch) {
        return Status::Error(
            ChangelogErrc::kFenced,
            "partition " + std::to_string(partition) + " of " + config.topic + ": epoch " +
                std::to_string(decoded->epoch) + " at offset " + std::to_string(msg->offset) +
                " supersedes this writer's epoch " + std::to_string(own_epoch));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

struct ChangelogWriter::Impl {
  detail::PartitionAppender appender;
  ChangelogConfig config;
  std::int32_t partition = 0;
  Checkpoint checkpoint;
  Status failed;  // the first failure; the writer refuses batches after it
};

ChangelogWriter::ChangelogWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangelogWriter::ChangelogWriter(ChangelogWriter&&) noexcept = default;
ChangelogWriter& ChangelogWriter::operator=(ChangelogWriter&&) noexcept = default;
ChangelogWriter::~ChangelogWriter() = default;

const Checkpoint& ChangelogWriter::checkpoint() const { return impl_->checkpoint; }

Result<ChangelogWriter> ChangelogWriter::create(const ChangelogConfig& config,
                                                std::int32_t partition,
                                                const Checkpoint& restored,
                                                std::shared_ptr<ChangelogProducer> producer) {
  if (partition < 0 || restored.next_changelog_offset < 0 || restored.epoch <= 0) {
    return Status::Error(ChangelogErrc::kInvalidArgument,
                         "a changelog writer starts from the checkpoint of a finished restore");
  }
  if (producer) {
    return adopt(config, partition, restored,
                 detail::PartitionAppender::attach(std::move(producer), partition));
  }
  auto appender = detail::PartitionAppender::create(config, partition);
  if (!appender.ok()) return appender.status();
  return adopt(config, partition, restored, std::move(appender).value());
}

ChangelogWriter ChangelogWriter::adopt(const ChangelogConfig& config, std::int32_t partition,
                                       const Checkpoint& restored,
                                       detail::PartitionAppender appender) {
  return ChangelogWriter(std::unique_ptr<Impl>(
      new Impl{std::move(appender), config, partition, restored, Status::Ok()}));
}

Status ChangelogWriter::append_batch(std::span<const Record> records,
                                     const PartitionState& state) {
  Impl& impl = *impl_;
  if (!impl.failed.ok()) {
    return Status::Error(ChangelogErrc::kState,
                         "an earlier batch failed (" + impl.failed.to_string() + "); restore first");
  }
  for (const Record& record : records) {
    if (Status s = detail::check_family(record.family); !s.ok()) return s;
  }
  const std::int64_t epoch = impl.checkpoint.epoch;
  const std::int64_t sequence = impl.checkpoint.batch_sequence + 1;
  const auto fail = [&impl](Status status) {
    impl.failed = status;
    return status;
  };
  std::string key;
  for (const Record& record : records) {
    key = detail::data_key(record);
    std::optional<std::string_view> value;
    if (record.value) value = *record.value;
    if (Status s = impl.appender.enqueue(key, value, detail::PartitionAppender::Headers{epoch, sequence},
                                         impl.config.ack_timeout);
        !s.ok()) {
      return fail(s);
    }
  }
  const std::string marker = detail::to_marker(epoch, sequence, state).SerializeAsString();
  if (Status s = impl.appender.enqueue(detail::control_key(detail::ControlKind::kBatch, epoch),
                                       marker, std::nullopt, impl.config.ack_timeout);
      !s.ok()) {
    return fail(s);
  }
  auto offsets = impl.appender.wait(impl.config.ack_timeout);
  if (!offsets.ok()) return fail(offsets.status());
  // This writer's records normally follow each other and its previous marker; a gap means that
  // someone else appended meanwhile, and only a newer owner's records fence this one.
  const std::int64_t expected = impl.checkpoint.next_changelog_offset;
  const bool contiguous =
      offsets->front() == expected &&
      offsets->back() - offsets->front() + 1 == static_cast<std::int64_t>(offsets->size());
  if (!contiguous) {
    if (Status s = check_foreign_records(impl.config, impl.partition, expected, *offsets, epoch);
        !s.ok()) {
      return fail(s);
    }
  }
  impl.checkpoint = {offsets->back() + 1, epoch, sequence, state};
  return Status::Ok();
}

}  // namespace painpoint::changelog

#include <librdkafka/rdkafka.h>

#include <deque>

#include "codec.h"
#include "kafka_io.h"
#include "lineage.h"
#include "painpoint/changelog/changelog.h"

namespace painpoint::changelog {
namespace {

// read to the high watermark → write the fence → read up to the fence → write the restore
// marker → read up to it → done.
enum class Phase { kToHighWatermark, kToFence, kToRestoreMarker, kDone };

}  // namespace

struct ChangelogRestorer::Impl {
  Impl(ChangelogConfig c, std::int32_t p, detail::PartitionReader r, const Checkpoint& from)
      : config(std::move(c)), partition(p), reader(std::move(r)), lineage(from) {}

  ChangelogConfig config;
  std::int32_t partition = 0;
  detail::PartitionReader reader;
  std::optional<detail::PartitionAppender> appender;  // made at the start: its producer id is
                                                      // acquired while the restore reads
  detail::LineageReader lineage;
  Phase phase = Phase::kToHighWatermark;
  std::int64_t position = 0;  // next offset to read
  std::int64_t target = 0;    // the phase ends when position reaches it
  std::int64_t own_epoch = 0;
  std::int64_t fence_offset = -1;
  RestoreResult result;
  // Messages read beyond the current phase's target, for the next phase.
  std::deque<ingest::detail::MessagePtr> carried;

  Status feed(const rd_kafka_message_t* msg);
  Status append_control(detail::ControlKind kind, const v1::ChangelogMarker& marker,
                        std::int64_t* offset);
  Status next_phase();
};

Status ChangelogRestorer::Impl::feed(const rd_kafka_message_t* msg) {
  auto decoded = detail::decode_message(*msg);
  if (!decoded.ok()) return decoded.status();
  if (msg->offset == fence_offset && !lineage.accepts_fence(own_epoch)) {
    return Status::Error(ChangelogErrc::kFenced, "another owner fenced partition " +
                                                     std::to_string(partition) +
                                                     " during this restore");
  }
  return lineage.on_message(std::move(decoded).value(), msg->offset);
}

Status ChangelogRestorer::Impl::append_control(detail::ControlKind kind,
                                               const v1::ChangelogMarker& marker,
                                               std::int64_t* offset) {
  const std::string value = marker.SerializeAsString();
  if (Status s = appender->enqueue(detail::control_key(kind, marker.epoch()), value, std::nullopt,
                                   config.ack_timeout);
      !s.ok()) {
    return s;
  }
  auto offsets = appender->wait(config.ack_timeout);
  if (!offsets.ok()) return offsets.status();
  *offset = offsets->front();
  return Status::Ok();
}

Status ChangelogRestorer::Impl::next_phase() {
  switch (phase) {
    case Phase::kToHighWatermark: {
      own_epoch = lineage.lineage_epoch() + 1;
      v1::ChangelogMarker fence;
      fence.set_epoch(own_epoch);
      if (Status s = append_control(detail::ControlKind::kFence, fence, &fence_offset); !s.ok()) {
        return s;
      }
      target = fence_offset + 1;
      phase = Phase::kToFence;
      return Status::Ok();
    }
    case Phase::kToFence: {
      const Checkpoint& committed = lineage.committed();
      v1::ChangelogMarker marker = detail::to_marker(own_epoch, 0, committed.state);
      marker.set_committed_epoch(committed.epoch);
      marker.set_committed_sequence(committed.batch_sequence);
      std::int64_t offset = -1;
      if (Status s = append_control(detail::ControlKind::kRestored, marker, &offset); !s.ok()) {
        return s;
      }
      target = offset + 1;
      phase = Phase::kToRestoreMarker;
      return Status::Ok();
    }
    case Phase::kToRestoreMarker: {
      const Checkpoint& committed = lineage.committed();
      if (committed.epoch != own_epoch || committed.next_changelog_offset != target) {
        return Status::Error(ChangelogErrc::kFenced,
                             "another owner wrote to partition " + std::to_string(partition) +
                                 " between this restore's fence and its marker");
      }
      result.checkpoint = committed;
      result.stats = lineage.stats();
      phase = Phase::kDone;
      return Status::Ok();
    }
    case Phase::kDone:
      return Status::Ok();
  }
  return Status::Ok();
}

ChangelogRestorer::ChangelogRestorer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChangelogRestorer::ChangelogRestorer(ChangelogRestorer&&) noexcept = default;
ChangelogRestorer& ChangelogRestorer::operator=(ChangelogRestorer&&) noexcept = default;
ChangelogRestorer::~ChangelogRestorer() = default;

const RestoreResult& ChangelogRestorer::result() const { return impl_->result; }
std::int64_t ChangelogRestorer::position() const { return impl_->position; }

Result<ChangelogRestorer> ChangelogRestorer::create(const ChangelogConfig& config,
                                                    std::int32_t partition,
                                                    const Checkpoint& from,
                                                    std::shared_ptr<ChangelogProducer> producer,
                                                    std::shared_ptr<ChangelogConsumer> consumer) {
  if (partition < 0 || from.epoch < 0) {
    return Status::Error(ChangelogErrc::kInvalidArgument, "bad partition or checkpoint");
  }
  auto reader = detail::PartitionReader::create(config, partition, from.next_changelog_offset,
                                                std::move(consumer));
  if (!reader.ok()) return reader.status();
  auto high = reader->high_watermark(config.ack_timeout);
  if (!high.ok()) return high.status();
  if (from.next_changelog_offset > *high) {
    // The local state belongs to a log this topic is not (another cluster, a recreated topic).
    return Status::Error(ChangelogErrc::kInvalidArgument,
                         "checkpoint at offset " + std::to_string(from.next_changelog_offset) +
                             " is beyond the end of partition " + std::to_string(partition) +
                             " of " + config.topic + " (" + std::to_string(*high) +
                             "): restore from the beginning into an empty partition");
  }
  auto impl = std::unique_ptr<Impl>(new Impl(config, partition, std::move(reader).value(), from));
  if (producer) {
    impl->appender.emplace(detail::PartitionAppender::attach(std::move(producer), partition));
  } else {
    auto appender = detail::PartitionAppender::create(config, partition);
    if (!appender.ok()) return appender.status();
    impl->appender.emplace(std::move(appender).value());
  }
  impl->position = std::max<std::int64_t>(from.next_changelog_offset, 0);
  impl->target = *high;
  return ChangelogRestorer(std::move(impl));
}

Result<bool> ChangelogRestorer::step(const ApplyBatch& apply, std::size_t max_messages,
                                     std::chrono::milliseconds wait) {
  Impl& impl = *impl_;
  if (impl.phase == Phase::kDone) return true;
  if (impl.position >= impl.target) {
    if (Status s = impl.next_phase(); !s.ok()) return s;
    return impl.phase == Phase::kDone;
  }
  if (impl.carried.empty()) {
    auto chunk = impl.reader.read(max_messages, wait);
    if (!chunk.ok()) return chunk.status();
    for (auto& msg : chunk->messages) impl.carried.push_back(std::move(msg));
    // Compaction leaves gaps: the end of the partition also ends a phase.
    if (impl.carried.empty() && chunk->eof_offset && *chunk->eof_offset >= impl.target) {
      impl.position = impl.target;
    }
  }
  while (!impl.carried.empty() && impl.carried.front()->offset < impl.target) {
    if (Status s = impl.feed(impl.carried.front().get()); !s.ok()) return s;
    impl.position = impl.carried.front()->offset + 1;
    impl.carried.pop_front();
  }
  // The chunk's committed batches in one apply; before the next phase's markers, which carry
  // the state they reach.
  if (Status s = impl.lineage.flush(apply); !s.ok()) return s;
  if (!impl.carried.empty()) impl.position = impl.target;  // the rest belongs to the next phase
  return false;
}

Result<ChangelogWriter> ChangelogRestorer::into_writer() && {
  Impl& impl = *impl_;
  if (impl.phase != Phase::kDone || !impl.appender) {
    return Status::Error(ChangelogErrc::kState, "the restore is not complete");
  }
  auto writer = ChangelogWriter::adopt(impl.config, impl.partition, impl.result.checkpoint,
                                       std::move(*impl.appender));
  impl.appender.reset();
  return writer;
}

Result<RestoreResult> ChangelogRestorer::run(const ApplyBatch& apply, std::size_t chunk_messages) {
  while (true) {
    auto done = step(apply, chunk_messages);
    if (!done.ok()) return done.status();
    if (*done) return impl_->result;
  }
}

}  // namespace painpoint::changelog

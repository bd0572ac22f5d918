#include "lineage.h"

namespace painpoint::changelog::detail {

LineageReader::LineageReader(const Checkpoint& from)
    : committed_(from), lineage_epoch_(from.epoch) {}

void LineageReader::note_uncommitted(Record record) {
  record.value.reset();
  stats_.uncommitted_keys.push_back(std::move(record));
}

void LineageReader::settle(std::int64_t epoch, std::int64_t sequence) {
  bool any = false;
  for (Waiting& waiting : pending_) {
    if (waiting.epoch == epoch && waiting.sequence <= sequence) {
      settled_.push_back(std::move(waiting.record));
      any = true;
    } else {
      ++stats_.records_discarded;
      note_uncommitted(std::move(waiting.record));
    }
  }
  pending_.clear();
  if (any) ++stats_.batches_applied;
}

Status LineageReader::flush(const ApplyBatch& apply) {
  if (settled_.empty()) return Status::Ok();
  if (Status applied = apply(settled_); !applied.ok()) {
    return Status::Error(ChangelogErrc::kApplyFailed, applied.to_string());
  }
  stats_.records_applied += static_cast<std::int64_t>(settled_.size());
  settled_.clear();
  return Status::Ok();
}

Status LineageReader::on_message(Decoded message, std::int64_t offset) {
  ++stats_.messages_read;
  if (message.epoch < lineage_epoch_) {
    ++stats_.records_ignored;
    if (message.kind == Decoded::Kind::kData) note_uncommitted(std::move(message.record));
    return Status::Ok();
  }
  switch (message.kind) {
    case Decoded::Kind::kData:
      pending_.push_back({std::move(message.record), message.epoch, message.sequence});
      return Status::Ok();
    case Decoded::Kind::kFence:
      if (message.epoch == lineage_epoch_) ++stats_.records_ignored;  // a racing restore's
      lineage_epoch_ = message.epoch;
      return Status::Ok();
    case Decoded::Kind::kBatchMarker: {
      lineage_epoch_ = message.epoch;
      settle(message.epoch, message.sequence);
      committed_ = {offset + 1, message.epoch, message.sequence, state_of(*message.marker)};
      return Status::Ok();
    }
    case Decoded::Kind::kRestoreMarker: {
      lineage_epoch_ = message.epoch;
      settle(message.marker->committed_epoch(), message.marker->committed_sequence());
      committed_ = {offset + 1, message.epoch, 0, state_of(*message.marker)};
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace painpoint::changelog::detail

// The outbox of summaries to publish, and fired alerts with their outbox and webhook positions
// (alert_records.h holds the alerts family's layout).
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "alert_records.h"
#include "painpoint/store/keys.h"
#include "painpoint/store/store.h"
#include "store_internal.h"

namespace painpoint::store {

Status Store::delete_outbox(std::span<const OutboxPosition> positions) {
  rocksdb::WriteBatch wb;
  for (const OutboxPosition& position : positions) {
    if (Status s = from_rocks(
            wb.Delete(impl_->cf(kOutbox),
                      impl_->key_in(kOutbox, position.partition, be64_value(position.sequence))),
            "outbox");
        !s.ok()) {
      return s;
    }
  }
  return impl_->write(&wb, "delete outbox entries");
}

namespace {

// The id and version of a serialized summary, read off its wire format without parsing the rest
// (the last occurrence of a field wins, as in a full parse). False if it is not well formed.
bool read_summary_key(std::string_view bytes, std::string* id, std::int64_t* version) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  constexpr std::uint32_t kIdTag = WireFormatLite::MakeTag(
      v1::PainPointSummary::kIdFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  constexpr std::uint32_t kVersionTag = WireFormatLite::MakeTag(
      v1::PainPointSummary::kVersionFieldNumber, WireFormatLite::WIRETYPE_VARINT);
  id->clear();
  *version = 0;
  while (const std::uint32_t tag = in.ReadTag()) {
    if (tag == kIdTag) {
      if (!WireFormatLite::ReadString(&in, id)) return false;
    } else if (tag == kVersionTag) {
      std::uint64_t value = 0;
      if (!in.ReadVarint64(&value)) return false;
      *version = static_cast<std::int64_t>(value);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

// The entry of an outbox record: the key is [be16 partition] | be64 sequence.
Status decode_outbox(bool partitioned, std::string_view key, std::string_view value,
                     OutboxEntry* entry) {
  entry->partition = kNoPartition;
  if (partitioned) {
    const auto parsed = keys::parse_partitioned_key(key);
    if (!parsed) return {StoreErrc::kCorruption, "undecodable outbox key"};
    entry->partition = parsed->partition;
    key = parsed->key;
  }
  const auto sequence = keys::read_be64(key);
  if (!sequence || !read_summary_key(value, &entry->id, &entry->version)) {
    return {StoreErrc::kCorruption, "undecodable outbox entry"};
  }
  entry->sequence = *sequence;
  entry->summary.assign(value.data(), value.size());
  return Status::Ok();
}

}  // namespace

Status Store::read_outbox(std::size_t max_entries, std::vector<OutboxEntry>* out) const {
  if (max_entries == 0) return Status::Ok();
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kOutbox)));
  for (it->SeekToFirst(); it->Valid() && out->size() < max_entries; it->Next()) {
    OutboxEntry entry;
    if (Status s = decode_outbox(impl_->partitioned, view(it->key()), view(it->value()), &entry);
        !s.ok()) {
      return s;
    }
    out->push_back(std::move(entry));
  }
  return from_rocks(it->status(), "read outbox");
}

Status Store::read_outbox_after(OutboxPosition after, std::size_t max_entries,
                                std::vector<OutboxEntry>* out) const {
  const OutboxPosition one[] = {after};
  return read_outbox_after(one, max_entries, out);
}

Status Store::read_outbox_after(std::span<const OutboxPosition> after, std::size_t max_entries,
                                std::vector<OutboxEntry>* out) const {
  const std::size_t limit = out->size() + max_entries;
  // Each partition's read stops at its last entry written so far instead of stepping past it:
  // the next key is the following partition's first, and the deletion tombstones of its
  // published entries lie in between, every one of them visited by that step (up to ~90 ms per
  // read round at 10,000 events/s). Taken before the iterator, so it sees every entry below.
  const std::map<std::int32_t, std::uint64_t> ends = outbox_next_sequences();
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->cf(kOutbox)));
  for (const OutboxPosition& position : after) {
    if (out->size() >= limit) break;
    if (position.sequence == std::numeric_limits<std::uint64_t>::max()) continue;
    if (impl_->partitioned && !keys::valid_partition(position.partition)) continue;
    const auto end = ends.find(position.partition);
    if (end == ends.end() || end->second <= position.sequence + 1) continue;  // none past it
    const std::string prefix = impl_->key_in(kOutbox, position.partition, "");
    const std::string start = prefix + be64_value(position.sequence + 1);
    for (it->Seek(slice(start));
         it->Valid() && out->size() < limit && view(it->key()).starts_with(prefix); it->Next()) {
      OutboxEntry entry;
      if (Status s =
              decode_outbox(impl_->partitioned, view(it->key()), view(it->value()), &entry);
          !s.ok()) {
        return s;
      }
      const bool last = entry.sequence + 1 >= end->second;
      out->push_back(std::move(entry));
      if (last) break;
    }
    if (Status s = from_rocks(it->status(), "read outbox"); !s.ok()) return s;
  }
  return Status::Ok();
}

std::map<std::int32_t, std::uint64_t> Store::outbox_next_sequences() const {
  std::shared_lock lock(impl_->counters_mutex);
  return impl_->next_outbox_sequence;
}

Status Store::delete_alert_outbox(std::span<const std::uint64_t> sequences) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(alert_records::delete_outbox(wb, impl_->cf(kAlerts), sequences),
                            "alert outbox");
      !s.ok()) {
    return s;
  }
  return impl_->write(&wb, "delete alert outbox entries");
}

// A read-only open of a store written before alerts existed has no alerts family: nothing fired.
Status Store::alert_fired(std::string_view alert_id, bool* out) const {
  *out = false;
  if (impl_->families[kAlerts] == nullptr) return Status::Ok();
  return from_rocks(alert_records::fired(*impl_->db, impl_->families[kAlerts], alert_id, out),
                    "look up alert");
}

Status Store::scan_alerts(std::string_view product_id, std::uint64_t before_sequence,
                          const std::function<bool(const StoredAlert&)>& fn) const {
  if (impl_->families[kAlerts] == nullptr) return Status::Ok();
  return from_rocks(
      alert_records::scan(*impl_->db, impl_->families[kAlerts], product_id, before_sequence, fn),
      "scan alerts");
}

Status Store::read_alert_outbox_after(std::uint64_t after_sequence, std::size_t max_entries,
                                      std::vector<StoredAlert>* out) const {
  if (impl_->families[kAlerts] == nullptr) return Status::Ok();
  return from_rocks(alert_records::read_outbox_after(*impl_->db, impl_->families[kAlerts],
                                                     after_sequence, max_entries, out),
                    "read alert outbox");
}

Status Store::read_alerts_after(std::uint64_t after_sequence, std::size_t max_entries,
                                std::vector<StoredAlert>* out) const {
  if (impl_->families[kAlerts] == nullptr) return Status::Ok();
  return from_rocks(alert_records::read_after(*impl_->db, impl_->families[kAlerts], after_sequence,
                                              max_entries, out),
                    "read alerts");
}

Status Store::webhook_position(std::string_view name, std::optional<std::uint64_t>* out) const {
  out->reset();
  if (impl_->families[kAlerts] == nullptr) return Status::Ok();
  return from_rocks(
      alert_records::webhook_position(*impl_->db, impl_->families[kAlerts], name, out),
      "read webhook position");
}

Status Store::record_webhook_position(std::string_view name, std::uint64_t sequence) {
  rocksdb::WriteBatch wb;
  if (Status s = from_rocks(
          alert_records::put_webhook_position(wb, impl_->cf(kAlerts), name, sequence), "webhook");
      !s.ok()) {
    return s;
  }
  return impl_->write(&wb, "record webhook position");
}

std::uint64_t Store::alert_next_sequence() const {
  std::shared_lock lock(impl_->counters_mutex);
  return impl_->next_alert_sequence;
}

}  // namespace painpoint::store

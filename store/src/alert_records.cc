#include "alert_records.h"

#include <limits>
#include <memory>
#include <string>

#include "painpoint/store/keys.h"
#include "rocks_slice.h"

namespace painpoint::store::alert_records {
namespace {

constexpr std::string_view kIdPrefix = "id/";
constexpr std::string_view kSequencePrefix = "seq/";
constexpr std::string_view kProductPrefix = "product/";
constexpr std::string_view kOutboxPrefix = "outbox/";
constexpr std::string_view kNextSequenceKey = "next_sequence";
constexpr std::string_view kWebhookPrefix = "webhook/";

std::string with_sequence(std::string_view prefix, std::uint64_t sequence) {
  std::string key(prefix);
  keys::append_be64(key, sequence);
  return key;
}

std::string product_key(std::string_view product_id, std::uint64_t sequence) {
  std::string key(kProductPrefix);
  key += product_id;
  key += '\0';
  keys::append_be64(key, sequence);
  return key;
}

rocksdb::Status read_alert(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::uint64_t sequence,
                           StoredAlert* out) {
  std::string value;
  rocksdb::Status s =
      db.Get(rocksdb::ReadOptions(), cf, with_sequence(kSequencePrefix, sequence), &value);
  if (!s.ok()) return s;
  if (!out->alert.ParseFromString(value)) return rocksdb::Status::Corruption("undecodable alert");
  out->sequence = sequence;
  return rocksdb::Status::OK();
}

}  // namespace

void append(std::span<const v1::AlertEvent> alerts, std::uint64_t* next_sequence,
            const std::function<void(std::string_view key, std::string_view value)>& put) {
  if (alerts.empty()) return;
  std::string buffer;
  for (const v1::AlertEvent& alert : alerts) {
    const std::uint64_t sequence = (*next_sequence)++;
    std::string id_key(kIdPrefix);
    id_key += alert.alert_id();
    std::string sequence_value;
    keys::append_be64(sequence_value, sequence);
    buffer.clear();
    alert.SerializeToString(&buffer);
    put(id_key, sequence_value);
    put(with_sequence(kSequencePrefix, sequence), buffer);
    put(product_key(alert.product_id(), sequence), "");
    put(with_sequence(kOutboxPrefix, sequence), "");
  }
  std::string next;
  keys::append_be64(next, *next_sequence);
  put(kNextSequenceKey, next);
}

rocksdb::Status load_next_sequence(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                   std::uint64_t* out) {
  std::string value;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), cf, slice(kNextSequenceKey), &value);
  if (s.IsNotFound()) {
    *out = 1;
    return rocksdb::Status::OK();
  }
  if (!s.ok()) return s;
  const auto next = keys::read_be64(value);
  if (!next) return rocksdb::Status::Corruption("undecodable alert sequence");
  *out = *next;
  return rocksdb::Status::OK();
}

rocksdb::Status fired(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::string_view alert_id,
                      bool* out) {
  std::string key(kIdPrefix);
  key += alert_id;
  std::string value;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), cf, key, &value);
  *out = s.ok();
  return s.IsNotFound() ? rocksdb::Status::OK() : s;
}

rocksdb::Status scan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::string_view product_id,
                     std::uint64_t before_sequence,
                     const std::function<bool(const StoredAlert&)>& fn) {
  std::string prefix(kSequencePrefix);
  if (!product_id.empty()) {
    prefix = kProductPrefix;
    prefix += product_id;
    prefix += '\0';
  }
  const std::uint64_t before =
      before_sequence == 0 ? std::numeric_limits<std::uint64_t>::max() : before_sequence;
  std::string start = prefix;
  keys::append_be64(start, before);
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
  // Newest first: from just below `before`, backwards through the prefix.
  for (it->SeekForPrev(start); it->Valid(); it->Prev()) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(prefix)) break;
    const auto sequence = keys::read_be64(key.substr(prefix.size()));
    if (!sequence) return rocksdb::Status::Corruption("undecodable alert key");
    if (*sequence >= before) continue;
    StoredAlert stored;
    if (product_id.empty()) {
      if (!stored.alert.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return rocksdb::Status::Corruption("undecodable alert");
      }
      stored.sequence = *sequence;
    } else if (rocksdb::Status s = read_alert(db, cf, *sequence, &stored); !s.ok()) {
      return s;
    }
    if (!fn(stored)) break;
  }
  return it->status();
}

rocksdb::Status read_outbox_after(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                  std::uint64_t after_sequence, std::size_t max_entries,
                                  std::vector<StoredAlert>* out) {
  if (max_entries == 0 || after_sequence == std::numeric_limits<std::uint64_t>::max()) {
    return rocksdb::Status::OK();
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(with_sequence(kOutboxPrefix, after_sequence + 1));
       it->Valid() && out->size() < max_entries; it->Next()) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(kOutboxPrefix)) break;
    const auto sequence = keys::read_be64(key.substr(kOutboxPrefix.size()));
    if (!sequence) return rocksdb::Status::Corruption("undecodable alert outbox key");
    StoredAlert stored;
    if (rocksdb::Status s = read_alert(db, cf, *sequence, &stored); !s.ok()) return s;
    out->push_back(std::move(stored));
  }
  return it->status();
}

rocksdb::Status read_after(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                           std::uint64_t after_sequence, std::size_t max_entries,
                           std::vector<StoredAlert>* out) {
  if (max_entries == 0 || after_sequence == std::numeric_limits<std::uint64_t>::max()) {
    return rocksdb::Status::OK();
  }
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(with_sequence(kSequencePrefix, after_sequence + 1));
       it->Valid() && out->size() < max_entries; it->Next()) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(kSequencePrefix)) break;
    const auto sequence = keys::read_be64(key.substr(kSequencePrefix.size()));
    StoredAlert stored;
    if (!sequence ||
        !stored.alert.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return rocksdb::Status::Corruption("undecodable alert");
    }
    stored.sequence = *sequence;
    out->push_back(std::move(stored));
  }
  return it->status();
}

rocksdb::Status webhook_position(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                 std::string_view webhook, std::optional<std::uint64_t>* out) {
  std::string key(kWebhookPrefix);
  key += webhook;
  std::string value;
  rocksdb::Status s = db.Get(rocksdb::ReadOptions(), cf, key, &value);
  out->reset();
  if (s.IsNotFound()) return rocksdb::Status::OK();
  if (!s.ok()) return s;
  *out = keys::read_be64(value);
  if (!*out) return rocksdb::Status::Corruption("undecodable webhook position");
  return rocksdb::Status::OK();
}

rocksdb::Status put_webhook_position(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf,
                                     std::string_view webhook, std::uint64_t sequence) {
  std::string key(kWebhookPrefix);
  key += webhook;
  std::string value;
  keys::append_be64(value, sequence);
  return wb.Put(cf, key, value);
}

rocksdb::Status delete_outbox(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf,
                              std::span<const std::uint64_t> sequences) {
  for (std::uint64_t sequence : sequences) {
    if (rocksdb::Status s = wb.Delete(cf, with_sequence(kOutboxPrefix, sequence)); !s.ok()) {
      return s;
    }
  }
  return rocksdb::Status::OK();
}

}  // namespace painpoint::store::alert_records

#pragma once

// The `alerts` column family (private to the store; Store's alert methods forward here):
//   id/<alert id>                      -> be64(sequence)   "fired": an id is written once
//   seq/<be64 sequence>                -> AlertEvent        the list, in firing order
//   product/<product>\0<be64 sequence> -> ""                the list of one product
//   outbox/<be64 sequence>             -> ""                fired, not yet acknowledged by Kafka
//   next_sequence                      -> be64
//   webhook/<name>                     -> be64(sequence)   the last alert a webhook delivered
// Sequences start at 1 and grow with every alert, in commit order.

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "painpoint/store/store.h"

namespace painpoint::store::alert_records {

// Hands the records of `alerts`, with the sequences from *next_sequence on, and then the new
// next sequence to put(key, value), in that order.
void append(std::span<const v1::AlertEvent> alerts, std::uint64_t* next_sequence,
            const std::function<void(std::string_view key, std::string_view value)>& put);
rocksdb::Status load_next_sequence(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                   std::uint64_t* out);
rocksdb::Status fired(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::string_view alert_id,
                      bool* out);
// Newest first, starting below `before_sequence` (0: the newest); product "" lists all.
rocksdb::Status scan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf, std::string_view product_id,
                     std::uint64_t before_sequence,
                     const std::function<bool(const StoredAlert&)>& fn);
rocksdb::Status read_outbox_after(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                  std::uint64_t after_sequence, std::size_t max_entries,
                                  std::vector<StoredAlert>* out);
// Oldest first, after `after_sequence`, at most `max_entries`.
rocksdb::Status read_after(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                           std::uint64_t after_sequence, std::size_t max_entries,
                           std::vector<StoredAlert>* out);
rocksdb::Status webhook_position(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* cf,
                                 std::string_view webhook, std::optional<std::uint64_t>* out);
rocksdb::Status put_webhook_position(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf,
                                     std::string_view webhook, std::uint64_t sequence);
rocksdb::Status delete_outbox(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* cf,
                              std::span<const std::uint64_t> sequences);

}  // namespace painpoint::store::alert_records

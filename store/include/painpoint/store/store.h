#pragma once

// The durable record of Painpoint: events, pain points, aggregator state, input offsets and the
// outbox of summaries to publish, in one RocksDB instance.
//
// Atomicity: commit() writes everything one processed batch produced in ONE WriteBatch, so after
// a crash the store holds either all of a batch (events + state + offsets) or none of it. That
// is what makes resuming from the stored offsets exactly-once.
//
// Thread safety: one writer (the aggregator stage) calls commit(), one call at a time, and
// filter_new_events(), which may run concurrently with a commit() (it then does not see that
// commit's events: the caller must check those itself); one
// outbox drainer (the publisher) calls read_outbox*() and delete_outbox() from its own thread,
// concurrently with commit() (RocksDB serializes the two WriteBatches; commit() only appends
// outbox sequences past every existing one, delete_outbox() only removes entries already read, so
// they never touch the same key). Readers (HTTP API, metrics) may call the const read methods
// concurrently from any thread. Every method blocks on disk I/O.
//
// Ownership: Store owns the RocksDB handles; open() hands out a unique_ptr. Only one process can
// hold a data directory open (RocksDB's LOCK file): a second open fails with kLocked.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/store/status.h"
#include "painpoint/v1/alert.pb.h"
#include "painpoint/v1/internal.pb.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::store {

// Bumped when the on-disk layout changes incompatibly; open() refuses other versions, except
// that a read-write open upgrades versions 1 to 3 (version 2 added the listing values of
// pain_points_by_product and the per-product pain point counters, see docs/read-api.md;
// version 3 keys every record of a partitioned family by its input partition, see README,
// "Per-partition layout"; version 4 leaves arrival log entries that a product's saved state
// covers until a range deletion, which a version 3 build would replay again) and a read-only
// open reads version 3 as it is.
inline constexpr std::uint32_t kSchemaVersion = 4;
// The first schema whose keys carry their input partition.
inline constexpr std::uint32_t kPartitionedSchemaVersion = 3;
// The last schema without partitions (what StoreOptions::legacy_schema2 writes).
inline constexpr std::uint32_t kUnpartitionedSchemaVersion = 2;
// The partition of every record of a schema 2 store, whose keys carry none (OutboxPosition).
inline constexpr std::int32_t kNoPartition = -1;

// Whose an aggregator state key is (aggregator::state_key_owner()): a product's, or a pain
// point's (then its product's).
struct StateKeyOwner {
  std::string product_id;     // set for a product's key
  std::string pain_point_id;  // set for a pain point's key
};

// What the one-time upgrade of a schema 2 directory to schema 3 needs from its caller: the store
// knows neither ingest's partitioner nor the aggregator's key layout.
struct PartitionRule {
  // The input partition of a product, given the input topic's partition count.
  std::function<std::int32_t(std::string_view product_id, std::int32_t partition_count)>
      of_product;
  // nullopt: a key the aggregator does not write (the upgrade refuses the store).
  std::function<std::optional<StateKeyOwner>(std::string_view state_key)> state_key_owner;
  // The count to use when the store recorded none (Store::input_partitions); without either the
  // upgrade refuses.
  std::optional<std::int32_t> partition_count;
};

struct StoreOptions {
  bool create_if_missing = true;
  // fsync the WAL on every commit. Off by default: the WAL still protects against a process
  // crash; sync also survives power loss at the cost of commit latency.
  bool sync_writes = false;
  std::size_t block_cache_bytes = std::size_t{64} << 20;
  // Memtable size per column family, and for all of them together: past the total, RocksDB
  // flushes the largest memtable early, which bounds memory across the nine families.
  std::size_t write_buffer_bytes = std::size_t{32} << 20;
  std::size_t total_write_buffer_bytes = std::size_t{128} << 20;
  // Open without taking the lock (tools that only read a stopped or live directory). A
  // directory below schema 3 is refused: open it read-write once to upgrade it.
  bool read_only = false;
  // For a read-write open of a schema 1 or 2 directory, which is upgraded to schema 3 before
  // anything else; without it such an open fails with kInvalidArgument.
  std::optional<PartitionRule> upgrade_rule;
  // Tests only: create a new directory at schema 2 and open a schema 2 directory without
  // upgrading it, to write what an older build left behind.
  bool legacy_schema2 = false;
  // Writes are refused (kNoSpace) while the data directory's file system has less free space
  // than this plus the write: RocksDB needs room for its flushes, and the build Debian ships
  // aborts on some writes that meet a full disk instead of returning the error.
  std::uint64_t min_free_bytes = std::uint64_t{64} << 20;
};

struct InputOffset {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t next_offset = 0;  // the next offset to consume
  friend bool operator==(const InputOffset&, const InputOffset&) = default;
};

struct KeyWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
  // The product the key belongs to (aggregator::StateWrite::product_id); the key is opaque to
  // the store, so this is what places it in a partition (CommitBatch::product_partitions).
  std::string product_id = {};
};

// Also indexed by pain point (members_by_pain_point) with the event's occurred_at, taken from the
// same batch's events or, for an event stored earlier (re-assignment), from its stored record.
struct MembershipWrite {
  std::string event_id;
  std::string product_id;
  std::string pain_point_id;
};

// For an event stored earlier, commit() reads its occurred_at and current membership to move its
// index entry. A caller that already holds both (a rebuild read them moments ago, under the
// directory lock) passes them and saves the two reads; they must be exact.
struct KnownMembership {
  std::int64_t occurred_at_micros = 0;
  std::optional<std::string> current_pain_point_id;  // nullopt: no membership stored
};

// Everything one processed batch produced.
struct CommitBatch {
  // New events only: their ids must have passed filter_new_events() since the last commit.
  // Stored with their arrival number (StoredEvent.arrival_seq, replacing any value set here): the
  // next numbers, in this order, so the caller lists them in the order it processed them.
  std::vector<v1::StoredEvent> events;
  std::vector<InputOffset> offsets;
  // Set when the offsets belong to a (possibly new) Kafka cluster.
  std::optional<std::string> kafka_cluster_id;
  std::vector<KeyWrite> aggregator_state;
  // Set when `aggregator_state` brings the stored aggregator state up to date with every event
  // stored so far, this batch's included (a checkpoint). Events committed without it are also
  // logged in arrival order (scan_unsaved_events) until the next checkpoint, so that the
  // aggregator can rebuild the state it deferred by replaying them after a crash.
  bool aggregator_checkpoint = false;
  // Products whose whole aggregator state is in `aggregator_state` (a checkpoint spread over
  // several batches, a share of the products in each): their events in this batch stay out of the
  // arrival log, and its earlier entries of theirs are no longer replayed (their statistics
  // record the arrival number the state covers; the entries go with the next range deletion of
  // their partition's log). Implied for every product by aggregator_checkpoint.
  std::vector<std::string> state_saved_for;
  std::vector<MembershipWrite> memberships;
  // Empty, or one entry per membership (same order): what the caller knows of it already.
  std::vector<std::optional<KnownMembership>> memberships_known;
  // Stored events that no longer belong to any pain point (a rebuild over a time range leaves
  // them out): their membership and index entry go. Applied before `memberships`.
  std::vector<std::string> removed_memberships;
  // Upserts of pain point summaries (the current state the API serves).
  std::vector<v1::PainPointSummary> summaries;
  // Also publish every entry of `summaries` (outbox), serialized once.
  bool publish_summaries = false;
  // Further summaries to publish (outbox) that are not upserts.
  std::vector<v1::PainPointSummary> outbox;
  // Alerts fired by this batch: recorded as fired (alert_fired), listed (scan_alerts) and put in
  // the alert outbox. Their ids must not have fired before.
  std::vector<v1::AlertEvent> alerts;
  // The input partition (of painpoint.feedback-by-product) of every product the batch's events,
  // aggregator state, memberships, summaries and outbox entries name; an event's entry equals its
  // StoredEvent.input_partition. The per-partition layout (docs/adr-005-scale-out.md) keys each
  // record by it; a product stays in the partition it was first stored in (a batch naming
  // another is refused with kInvalidArgument). Otherwise commit() refuses a batch it does not
  // cover with kInvalidArgument, except an empty map: the batch names no partition, and each
  // product goes where the store holds it, else to its events' input partition, else to
  // partition 0 (the layout of a single-partition input: tests and tools writing one partition).
  std::map<std::string, std::int32_t, std::less<>> product_partitions;
};

struct StoredAlert {
  std::uint64_t sequence = 0;  // firing order, from 1
  v1::AlertEvent alert;
};

// The orders of list_active_pain_points(): each descending, ties broken by id ascending, so pages
// are stable between requests.
enum class ListingOrder { kSeverity, kEvents, kAccounts, kArr, kTrend, kRecent };

struct PainPointPage {
  std::vector<v1::PainPointSummary> summaries;
  std::size_t active_total = 0;  // active pain points of the product
};

// An outbox entry's place: sequences count per input partition (kNoPartition in schema 2).
struct OutboxPosition {
  std::int32_t partition = kNoPartition;
  std::uint64_t sequence = 0;
  friend auto operator<=>(const OutboxPosition&, const OutboxPosition&) = default;
};

// An outbox entry as read: the summary stays serialized, as committed, because the publisher
// sends those bytes unchanged; only the two fields it needs are read out of them.
struct OutboxEntry {
  std::int32_t partition = kNoPartition;
  std::uint64_t sequence = 0;
  std::string id;  // the summary's pain point id: the record's key
  std::int64_t version = 0;
  std::string summary;  // a serialized v1::PainPointSummary: the record's value
};

// The family of the arrival log (events stored since their product's last aggregator
// checkpoint, for the replay after a restart), as PreparedWrite::family names it.
inline constexpr std::string_view kArrivalLogFamily = "unsaved_arrivals";

// What one write of a prepared commit does.
enum class WriteKind { kPut, kDelete, kDeleteRange };

// One write of a prepared commit: `family` names the column family (by its schema 2 name). In
// a family keyed by input partition, and for a partition's own records in the default family
// (its counters, product statistics and input offset), `partition` is the key's partition and
// `key` the key without the partition prefix (the changelog's records carry it so); elsewhere
// `partition` is kNoPartition and `key` the key as written (process-wide records, alerts). For kDeleteRange, `value` is the end of the range
// (excluded), likewise without the prefix.
struct PreparedWrite {
  std::string_view family;
  WriteKind kind = WriteKind::kPut;
  std::string_view key;
  std::string_view value;
  std::int32_t partition = kNoPartition;
};

// The writes of one CommitBatch, built by Store::prepare_commit() and written atomically by
// Store::write_prepared(), so that a step between the two can hand them elsewhere first.
class PreparedCommit {
 public:
  PreparedCommit();
  ~PreparedCommit();
  PreparedCommit(PreparedCommit&&) noexcept;
  PreparedCommit& operator=(PreparedCommit&&) noexcept;

  // Every write in the order write_prepared() applies them: first the default family's records,
  // the arrival log, the outboxes and the alerts as the batch produced them, then each other
  // family's puts and deletes in key order. The views point into this object.
  [[nodiscard]] std::vector<PreparedWrite> writes() const;

 private:
  friend class Store;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Store {
 public:
  // Opens (or creates) the store in `dir`. Fails with kSchemaMismatch for another schema version
  // and kLocked when another process holds the directory.
  static Status open(const std::filesystem::path& dir, const StoreOptions& options,
                     std::unique_ptr<Store>* out);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writer side ---------------------------------------------------------------------------------

  // Appends to *new_indices the indices of `event_ids` that are neither stored nor repeated
  // earlier in the span (a redelivered or duplicate event is a no-op).
  // Looks each id up in every partition the store holds (one batched read per partition).
  Status filter_new_events(std::span<const std::string_view> event_ids,
                           std::vector<std::size_t>* new_indices) const;
  // The same with the input partition of each event (partitions[i] for event_ids[i]): one
  // batched read per partition named. What the aggregator stage calls.
  Status filter_new_events(std::span<const std::string_view> event_ids,
                           std::span<const std::int32_t> partitions,
                           std::vector<std::size_t>* new_indices) const;

  // Writes the batch atomically. Also maintains the per-product and total event counters.
  // The same as prepare_commit() followed by write_prepared().
  Status commit(const CommitBatch& batch);
  // commit() in two steps. prepare_commit() reads what the batch's writes depend on (listings,
  // stored memberships, counters) and builds them; write_prepared() writes them in one
  // WriteBatch and advances the counters. A commit written in between makes write_prepared()
  // fail with kInvalidArgument (nothing written): prepare again.
  Status prepare_commit(const CommitBatch& batch, PreparedCommit* out) const;
  Status write_prepared(PreparedCommit prepared);

  // Deletes published outbox entries (after the broker acknowledged them). Safe concurrently with
  // commit() (see the class comment); one WriteBatch, so a crash deletes all of them or none.
  Status delete_outbox(std::span<const OutboxPosition> positions);
  // Deletes alert outbox entries (after the broker acknowledged them); like delete_outbox().
  Status delete_alert_outbox(std::span<const std::uint64_t> sequences);
  // Records how far the webhook `name` delivered (one writer per name; safe beside commit()).
  Status record_webhook_position(std::string_view name, std::uint64_t sequence);
  // Records the partition count of the aggregator's input topic the stored state is built on
  // (products map to partitions by it); serve records it once and compares later starts.
  Status record_input_partitions(std::int32_t partitions);
  // Records the clustering the stored aggregator state is built with (an opaque text the
  // service composes); serve compares it at every start, `replay rebuild` replaces it.
  Status record_clustering(std::string_view description);
  // Deletes every record of input partition `partition` in one write (a range deletion per
  // partitioned family and one over its records in the default family): the state of a partition
  // another instance took over. kInvalidArgument outside keys::valid_partition(); kSchemaMismatch
  // on a store below kPartitionedSchemaVersion, whose keys carry no partition.
  Status drop_partition(std::int32_t partition);

  // The changelog's side (changelog/README.md; docs/adr-005-scale-out.md, item 2) -------------

  // Writes partition `partition`'s `writes`, as PreparedCommit::writes() listed them (family by
  // name, key without the partition prefix; records of kNoPartition are refused), in one
  // WriteBatch: one restored batch of the changelog. The in-memory counters do not follow until
  // reload_counters(). kSchemaMismatch below schema 3; kInvalidArgument for an unknown family.
  Status apply_partition_writes(std::int32_t partition, std::span<const PreparedWrite> writes);
  // Reads the counters (event counts, arrival numbers, outbox sequences, the partitions present)
  // and the arrival log's index again from disk, after apply_partition_writes(). Not
  // concurrently with a commit.
  Status reload_counters();
  // The same, but the arrival log's index is read again for `reindexed` only (the partitions
  // whose restore just ended); the other partitions' entries stay as they were.
  Status reload_counters(std::span<const std::int32_t> reindexed);
  // A record of partition `partition` that stays local: written with `prepared` (after its
  // writes, in the same WriteBatch) but never listed by writes(), or alone; dropped with the
  // partition. For where the partition's changelog was written up to.
  Status add_local_record(PreparedCommit* prepared, std::int32_t partition,
                          std::string_view name, std::string value) const;
  Status put_local_record(std::int32_t partition, std::string_view name, std::string_view value);
  // Partition `partition`'s record `key` of the family named `family` (as PreparedWrite names
  // families, key without the prefix): what a new owner writes again for a key a restore found
  // uncommitted. kInvalidArgument for a family without partitions.
  Status partition_record(std::int32_t partition, std::string_view family, std::string_view key,
                          std::optional<std::string>* out) const;
  // The first key (without the prefix) at or after `from` in that family's partition; nullopt
  // when there is none.
  Status first_partition_key(std::int32_t partition, std::string_view family,
                             std::string_view from, std::optional<std::string>* out) const;
  Status local_record(std::int32_t partition, std::string_view name,
                      std::optional<std::string>* out) const;

  // Reader side (thread-safe) -------------------------------------------------------------------

  Status load_offsets(std::vector<InputOffset>* out) const;
  Status kafka_cluster_id(std::optional<std::string>* out) const;
  // What record_input_partitions() recorded; nullopt when nothing was.
  Status input_partitions(std::optional<std::int32_t>* out) const;
  // What record_clustering() recorded last; nullopt when nothing was.
  Status clustering(std::optional<std::string>* out) const;
  // The input partitions with at least one record here, ascending (one seek per partition found
  // and family). kSchemaMismatch like drop_partition().
  Status partitions_present(std::vector<std::int32_t>* out) const;
  // Whether `partition` has at least one record here: partitions_present() for one partition,
  // with seeks bounded by its range (one per family). kSchemaMismatch like drop_partition().
  Status partition_present(std::int32_t partition, bool* out) const;
  Status get_event(std::string_view event_id, std::optional<v1::StoredEvent>* out) const;
  Status get_membership(std::string_view event_id, std::optional<std::string>* out) const;
  // The memberships of many events in one batched read (out[i] for event_ids[i]).
  Status get_memberships(std::span<const std::string_view> event_ids,
                         std::vector<std::optional<std::string>>* out) const;
  Status get_summary(std::string_view pain_point_id,
                     std::optional<v1::PainPointSummary>* out) const;
  // The same read in one input partition only (one Get; get_summary() above probes every
  // partition present): for a caller that knows it, e.g. from an outbox entry. Below schema 3 the
  // partition is ignored.
  Status get_summary(std::int32_t partition, std::string_view pain_point_id,
                     std::optional<v1::PainPointSummary>* out) const;
  Status get_state(std::string_view key, std::optional<std::string>* out) const;
  // fn returns false to stop early.
  Status scan_state(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  Status scan_summaries(std::string_view product_id,
                        const std::function<bool(const v1::PainPointSummary&)>& fn) const;
  // Up to `limit` of the product's active pain points in `order`, skipping the first `offset`,
  // read on one snapshot. Orders the small listing records of the product's index (one per pain
  // point) and parses only the page's summaries; commits never wait for it.
  Status list_active_pain_points(std::string_view product_id, ListingOrder order,
                                 std::size_t offset, std::size_t limit, PainPointPage* out) const;
  // Events with since <= occurred_at < until, in (occurred_at, event id) order.
  Status scan_events_by_time(std::chrono::system_clock::time_point since,
                             std::chrono::system_clock::time_point until,
                             const std::function<bool(const v1::StoredEvent&)>& fn) const;
  // Events committed since their product's state was last saved (CommitBatch::
  // aggregator_checkpoint, state_saved_for), in the order they were committed. fn returns false
  // to stop.
  Status scan_unsaved_events(const std::function<bool(const v1::StoredEvent&)>& fn) const;
  // The same, for the arrival logs of `partitions` only, each partition's in its order; the
  // other partitions' entries cost nothing. A store without partitions (schema 2) has one log,
  // read once for any non-empty `partitions`: fn sees every unsaved event and filters itself.
  Status scan_unsaved_events(std::span<const std::int32_t> partitions,
                             const std::function<bool(const v1::StoredEvent&)>& fn) const;
  // The same, for the events whose product `want_product` accepts: the time index holds each
  // event's product, so the events skipped cost no read (a replay of a few products).
  Status scan_events_by_time(std::chrono::system_clock::time_point since,
                             std::chrono::system_clock::time_point until,
                             const std::function<bool(std::string_view product_id)>& want_product,
                             const std::function<bool(const v1::StoredEvent&)>& fn) const;
  // The same selection in arrival order: the order commit() received the events in (see
  // v1::StoredEvent::arrival_seq), which for serve is the order its aggregator added them in, so
  // a replay in this order reproduces serve's online clustering whatever order the events' times
  // came in. Events stored before arrival numbers existed come first, in (occurred_at, event id)
  // order. One snapshot for the whole scan. Cost: the selected events' ids are held in memory
  // (tens of bytes each) and each selected event is read twice (for its arrival number, then in
  // batches for fn).
  Status scan_events_by_arrival(
      std::chrono::system_clock::time_point since, std::chrono::system_clock::time_point until,
      const std::function<bool(std::string_view product_id)>& want_product,
      const std::function<bool(const v1::StoredEvent&)>& fn) const;
  // Member events of the pain points `pain_point_ids` (one id, or a survivor plus the ids merged
  // into it), as one list: newest first (occurred_at descending, then event id ascending).
  // `after` is the opaque position fn last received (empty: start at the newest); positions do
  // not depend on which of the ids an event belongs to, so a page boundary stays stable while
  // events arrive. fn returns false to stop. Index entries of events that were re-assigned since
  // (membership now names another id) are skipped. Cost: one iterator per id plus one point read
  // per listed event; keep the id list small (the caller bounds it).
  Status scan_members(
      std::span<const std::string> pain_point_ids, std::string_view after,
      const std::function<bool(const v1::StoredEvent&, std::string_view position)>& fn) const;
  // Outbox entries in (partition, sequence) order, at most `max_entries`; within a partition
  // sequence order is commit order.
  Status read_outbox(std::size_t max_entries, std::vector<OutboxEntry>* out) const;
  // Entries of partition `after.partition` with a sequence above `after.sequence`: lets a
  // drainer page through each partition's outbox without re-reading (or wading through the
  // deletion tombstones of) what it already holds.
  Status read_outbox_after(OutboxPosition after, std::size_t max_entries,
                           std::vector<OutboxEntry>* out) const;
  // The same for several partitions in the order given, with one iterator (cheaper than one
  // call per partition), at most `max_entries` in all.
  Status read_outbox_after(std::span<const OutboxPosition> after, std::size_t max_entries,
                           std::vector<OutboxEntry>* out) const;
  // Per partition with an outbox, the sequence its next entry will get: every entry ever written
  // there has a smaller one.
  [[nodiscard]] std::map<std::int32_t, std::uint64_t> outbox_next_sequences() const;

  // Whether an alert with this id was committed.
  Status alert_fired(std::string_view alert_id, bool* out) const;
  // Alerts newest first, starting below `before_sequence` (0: the newest); an empty product
  // lists every product's. fn returns false to stop.
  Status scan_alerts(std::string_view product_id, std::uint64_t before_sequence,
                     const std::function<bool(const StoredAlert&)>& fn) const;
  // Alerts not yet deleted from the alert outbox, in firing order, after `after_sequence`.
  Status read_alert_outbox_after(std::uint64_t after_sequence, std::size_t max_entries,
                                 std::vector<StoredAlert>* out) const;
  // The sequence the next alert will get.
  [[nodiscard]] std::uint64_t alert_next_sequence() const;
  // Alerts oldest first, after `after_sequence` (webhook delivery).
  Status read_alerts_after(std::uint64_t after_sequence, std::size_t max_entries,
                           std::vector<StoredAlert>* out) const;
  // The sequence of the last alert the webhook `name` delivered; nullopt before the first record.
  Status webhook_position(std::string_view name, std::optional<std::uint64_t>* out) const;

  // Distinct events held, in total and per product, with each product's active pain points and
  // the sum of its summaries' versions (maintained by commit, O(1) / O(products)).
  [[nodiscard]] std::int64_t event_count() const;
  [[nodiscard]] std::vector<v1::ProductStats> product_stats() const;
  // One product's counters (O(log products)); nullopt for a product with no stored event.
  [[nodiscard]] std::optional<v1::ProductStats> product_stats(std::string_view product) const;

  // The implementation (store/src/store_internal.h); named here so that the store's own helpers
  // can take it, incomplete for everyone else.
  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  // open() of one layout: schema 3 (partitioned) or schema 1/2.
  static Status open_layout(const std::filesystem::path& dir, const StoreOptions& options,
                            bool partitioned, std::unique_ptr<Store>* out);
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::store

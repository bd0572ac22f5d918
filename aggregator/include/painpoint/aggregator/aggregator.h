#pragma once

// The aggregator: online clustering of validated feedback into pain points per product.
//
// Pure and deterministic: no I/O, no clocks, no randomness. The same events in the same order
// with the same config (and the same state to start from) give the same pain points, ids,
// summaries and state writes. Persistence is the caller's job: the aggregator reads earlier
// state through a StateReader and hands back every change as Changes, which the service writes
// in the same RocksDB WriteBatch as the events and input offsets.
//
// Thread safety: an Aggregator is not thread-safe; one thread owns it. Products are independent,
// so callers may shard products over several Aggregators.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "painpoint/aggregator/config.h"
#include "painpoint/aggregator/text_analysis.h"
#include "painpoint/v1/feedback.pb.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::aggregator {

// Read access to state written earlier (via Changes::state). Keys are opaque to the caller.
class StateReader {
 public:
  virtual ~StateReader() = default;
  [[nodiscard]] virtual std::optional<std::string> get(std::string_view key) const = 0;
  // Calls fn for every key starting with prefix, in key order.
  virtual void scan(
      std::string_view prefix,
      const std::function<void(std::string_view key, std::string_view value)>& fn) const = 0;
};

struct StateWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete the key
  // The product the key belongs to (a merge record or alert episode: its pain point's product):
  // the per-partition store keeps the key in that product's partition.
  std::string product_id = {};
};

// event -> pain point (or emerging candidate) id at the time of assignment.
struct Membership {
  std::string event_id;
  std::string product_id;
  std::string pain_point_id;
};

struct Changes {
  std::vector<StateWrite> state;
  std::vector<Membership> memberships;
  // Latest summary of every pain point that changed (new, updated, merged); emerging candidates
  // are not included. Version grows with each change.
  std::vector<v1::PainPointSummary> summaries;
};

// What a curation operation did. Not kOk: nothing changed; `message` says why.
struct CurationOutcome {
  enum class Code {
    kOk,
    kNotFound,  // no active pain point with that id in that product
    kConflict,  // valid request that the current state does not allow (e.g. merge into itself)
    kInvalid,   // malformed arguments (e.g. split events that are not members)
  };
  Code code = Code::kOk;
  std::string message;
  std::string id;  // kOk: the pain point holding the result (survivor, renamed one, split-off one)
  [[nodiscard]] bool ok() const { return code == Code::kOk; }
};

// The human curation of one product as a state holds it (see aggregator/README.md, "Curation").
struct CurationRecord {
  std::vector<std::pair<std::string, std::string>> labels;  // (pain point id, human label)
  std::vector<std::pair<std::string, std::string>> apart;   // (a, b), a < b: never auto-merged
  std::vector<std::pair<std::string, std::string>> merges;  // human merges (from, into), in order
};

// Reads a product's curation from a state written by an Aggregator (empty when it has none).
// Lets a rebuild learn what humans decided without knowing the state's keys.
[[nodiscard]] CurationRecord read_curation(const StateReader& state, std::string_view product_id);

// Every state key of one product starts with this prefix (the merge records that resolve() reads
// are global and excepted). A rebuild replaces a product's state by deleting the keys under it
// that the rebuilt state does not write.
[[nodiscard]] std::string product_state_prefix(std::string_view product_id);

// How a product rebuilt from its history (`painpoint replay rebuild`) takes over the identity of
// the state it replaces. See Aggregator::succeed().
struct Succession {
  struct Rename {
    std::string from;  // id of a live cluster (pain point or candidate) of the rebuilt product
    std::string to;    // the id it continues as
    // The renamed cluster's next summary gets a version above this (the replaced pain point's
    // last published version), so subscribers that keep the highest version accept it.
    std::int64_t min_version = 0;
  };
  // Applied as one permutation: ids may swap, and afterwards the product's live ids must be
  // distinct.
  std::vector<Rename> renames;
  // Ids of the replaced state that are gone, each merged into a live id: resolve() follows them.
  std::vector<std::pair<std::string, std::string>> merged_into;
  // Ids of the replaced state that are gone without a survivor: resolve() returns them as they
  // are (any merge record this Aggregator made for the same id is forgotten).
  std::vector<std::string> retired;
  // Pairs (by id, after the renames) that maintenance must never merge (re-applied splits).
  std::vector<std::pair<std::string, std::string>> keep_apart;
  // Human merges of the replaced state (read_curation().merges) to keep on record, so that a
  // later rebuild re-applies them too.
  std::vector<std::pair<std::string, std::string>> human_merges;
};

class Aggregator {
 public:
  // `state` may be null (start empty, as `painpoint cluster` does); it must outlive the Aggregator.
  Aggregator(ClusterConfig config, const StateReader* state);
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Assigns one validated event whose id has not been seen before (the caller dedupes).
  // Returns the id of the pain point or candidate it joined. In semantic mode
  // (ClusterConfig::encoder) `embedding` is the event's sentence vector (embedding_dims floats,
  // unit length); the same vector must come back when the event is replayed, so callers store it
  // with the event. Other modes ignore it. A semantic event without a vector of the right size
  // can only open a candidate of its own. `analysis`, if given, is TextAnalyzer::analyze() of the
  // event's text under this Aggregator's config, made ahead (maybe on another thread); it must
  // stay valid during the call. The result is the same with or without it.
  std::string add(const v1::FeedbackEvent& event, std::span<const float> embedding = {},
                  const AnalyzedText* analysis = nullptr);

  // Whether take_changes() also hands back the state writes. Summaries and memberships always go
  // out; the state may be deferred (kDefer) and written later in one go (kInclude), so that a
  // pain point changed by many batches is written once. The caller must then be able to rebuild
  // the deferred part: replaying the events added since the last kInclude, in the same order,
  // through an Aggregator started on the state persisted at that point gives the same state
  // (adding is deterministic and does not depend on batch boundaries), the same memberships
  // and summaries with the same versions.
  enum class StateOutput { kInclude, kDefer };

  // Returns all changes since the last call: memberships and summaries, and the state writes
  // since the last kInclude call when `state` is kInclude.
  Changes take_changes(StateOutput state = StateOutput::kInclude);
  // As kDefer, plus the whole state of the products `save_state` accepts (what kInclude would
  // hand out for them), so that a caller can write the state out a share of the products at a
  // time. The rebuild rule above then holds per product: replay the events of each product added
  // since its state was last handed out.
  using ProductFilter = std::function<bool(std::string_view product_id)>;
  Changes take_changes(const ProductFilter& save_state);

  // Human curation (see aggregator/README.md, "Curation"). Each applies to the active pain
  // points of one product, changes nothing unless it returns ok(), and reaches the caller through
  // the next take_changes() like any other change (summaries, state, memberships). The curated
  // facts are part of the persisted state, and maintenance respects them afterwards.
  //
  // merge: `from` goes into `into`, which keeps its id whatever their ages; final (the merged id
  // never comes back).
  CurationOutcome merge(std::string_view product_id, std::string_view from, std::string_view into);
  // rename: `label` replaces the automatic label from now on (keywords stay automatic); an empty
  // label returns to the automatic one. At most kMaxLabelBytes of UTF-8 without control chars.
  CurationOutcome rename(std::string_view product_id, std::string_view id, std::string_view label);
  static constexpr std::size_t kMaxLabelBytes = 200;
  // split: `events` (members of `id`, as stored; not all of them) move to a new pain point whose
  // id the outcome carries. Their contributions to `id` are subtracted as they weigh under the
  // product's current statistics (an approximation: IDF has moved since they were added); `id`
  // keeps its account set. Maintenance never merges the two back; a human merge still can.
  // Semantic mode: `embeddings` holds the events' vectors as add() got them, one row of
  // embedding_dims per event in the order of `events`; they move with the events.
  CurationOutcome split(std::string_view product_id, std::string_view id,
                        std::span<const v1::FeedbackEvent> events,
                        std::span<const float> embeddings = {});

  // Replay support: makes `product_id`, rebuilt by this Aggregator from the product's stored
  // history, continue the identity of `previous` (the state being replaced; may be null). Renames
  // live clusters (their pending memberships, merge records and curated facts follow), records
  // how replaced ids resolve, and continues the product's sequence numbers after the previous
  // state's, so ids minted later (splits) never repeat one the previous state published. Every
  // renamed cluster is republished by the next take_changes(). Changes nothing unless ok():
  // kNotFound for a `from` that is not a live cluster of the product, kConflict when the renames
  // would leave two live clusters with one id, kInvalid for an empty id.
  CurationOutcome succeed(std::string_view product_id, const StateReader* previous,
                          const Succession& succession);

  // Follows merges: the id of the live pain point that `id` ended up in (itself if never merged).
  [[nodiscard]] std::string resolve(std::string_view id) const;
  // The longest merge chain resolve() and the HTTP API follow; a longer one can only be a cycle in
  // corrupt data. The aggregator's bound: a lower one could stop resolve() short of the survivor
  // on long-lived state, which would change which pain point an event resolves to.
  static constexpr int kMaxMergeHops = 1000;

  // Drops in-memory state of products not touched for a while (reloaded lazily via StateReader).
  // Products with state not yet handed out (see StateOutput::kDefer) are kept. Only valid right
  // after the result of take_changes() was persisted.
  void evict_idle();

  [[nodiscard]] std::size_t active_pain_points() const;

  // Where and what, for the first state record the reader returned that could not be decoded
  // (nullopt while there is none). The product it belongs to was loaded without it, so nothing
  // the aggregator produced since may be persisted: the caller stops instead.
  [[nodiscard]] const std::optional<std::string>& state_error() const;

  struct MemoryStats {
    std::size_t products = 0;
    std::size_t clusters = 0;  // pain points and candidates held in memory
    std::size_t bytes = 0;     // estimate of the heap held by the in-memory state
  };
  // Walks the in-memory state (O(state)): for metrics and sizing, not for the hot path.
  [[nodiscard]] MemoryStats memory_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace painpoint::aggregator

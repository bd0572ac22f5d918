#pragma once

// Products spread over several Aggregators that add a batch's events and hand out their changes
// side by side, one thread per shard (the caller's thread is one of them).
//
// A product stays on one shard (by a hash of its id), so its events reach one Aggregator in the
// order given and its pain points, ids, summaries and state are exactly those of a single
// Aggregator: they depend only on the product's own events. What differs from one Aggregator is
// the order of different products' records within a Changes (each product's keep their order);
// the memberships of added events come in the order of the events, as from one Aggregator.
//
// With `analyze_ahead`, add_all() also has one more thread analyse the texts of the next chunk
// of events (TextAnalyzer) while the shards add the current one: that work leaves the shards'
// threads, and nothing else changes (the analysis is a pure function of the text).
//
// Thread safety: like Aggregator, owned by one thread; the other threads run only inside
// add_all() and take_changes(). The StateReader is read from every shard's thread at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/aggregator/aggregator.h"

namespace painpoint::aggregator {

class AggregatorShards {
 public:
  struct Event {
    const v1::FeedbackEvent* event = nullptr;
    std::span<const float> embedding;  // as Aggregator::add() takes it
  };

  // `shards` Aggregators (at least 1) on `shards - 1` threads of their own plus the caller's,
  // and with `analyze_ahead` one thread more for the analysis.
  AggregatorShards(const ClusterConfig& config, const StateReader* state, unsigned shards,
                   bool analyze_ahead = false);
  ~AggregatorShards();
  AggregatorShards(const AggregatorShards&) = delete;
  AggregatorShards& operator=(const AggregatorShards&) = delete;

  // One event, on the caller's thread (recovery replays events one at a time).
  std::string add(const v1::FeedbackEvent& event, std::span<const float> embedding = {});
  // Every event of `events`, each shard adding its products' events in the order given.
  void add_all(std::span<const Event> events);
  // Events per chunk of add_all()'s analysis ahead; the first chunk is analysed by the shards.
  static constexpr std::size_t kAnalysisChunk = 256;

  // Aggregator::take_changes() of every shard, side by side: the state writes and summaries in
  // shard order, the memberships in the order of the events added.
  Changes take_changes(Aggregator::StateOutput state = Aggregator::StateOutput::kInclude);
  // `save_state` is called from every shard's thread.
  Changes take_changes(const Aggregator::ProductFilter& save_state);

  // Curation, on the product's shard (see Aggregator).
  CurationOutcome merge(std::string_view product_id, std::string_view from, std::string_view into);
  CurationOutcome rename(std::string_view product_id, std::string_view id, std::string_view label);
  CurationOutcome split(std::string_view product_id, std::string_view id,
                        std::span<const v1::FeedbackEvent> events,
                        std::span<const float> embeddings = {});
  // Aggregator::resolve() on the shard of `product_id`, which made every merge of its ids.
  [[nodiscard]] std::string resolve(std::string_view product_id, std::string_view id) const;

  void evict_idle();
  [[nodiscard]] std::size_t active_pain_points() const;
  // The first shard's state error (see Aggregator::state_error()).
  [[nodiscard]] const std::optional<std::string>& state_error() const;
  [[nodiscard]] Aggregator::MemoryStats memory_stats() const;
  [[nodiscard]] std::size_t shard_count() const { return shards_.size(); }
  [[nodiscard]] bool analyzes_ahead() const { return lookahead_ != nullptr; }
  // Which shard holds `product_id`: stable for a given shard count.
  [[nodiscard]] std::size_t shard_of(std::string_view product_id) const;

 private:
  class Workers;
  class Lookahead;
  // `analyses`: one per event, or empty (each shard analyses its events itself).
  void add_chunk(std::span<const Event> events, std::span<const AnalyzedText> analyses);
  Changes take_from_all(const Aggregator::ProductFilter& save_state);
  std::vector<Membership> interleave_memberships(std::vector<Changes>& taken);

  std::vector<std::unique_ptr<Aggregator>> shards_;
  std::unique_ptr<Workers> workers_;             // null with one shard
  std::unique_ptr<Lookahead> lookahead_;         // null without analyze_ahead
  std::vector<std::vector<std::size_t>> batch_;  // add_all's events by shard (reused)
  std::vector<std::uint32_t> added_on_;  // the shard of each event added since the last take
};

}  // namespace painpoint::aggregator

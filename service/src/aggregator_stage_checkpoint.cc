// Writing out the aggregator state (checkpoints), and rebuilding it after a crash.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aggregator_stage_impl.h"
#include "checkpoint_schedule.h"

namespace painpoint::service {

// The aggregator state is written out every checkpoint_events events or checkpoint_interval,
// a share of the products per batch, and whole when stopping; in between, the arrival log lets
// recover() rebuild it.
bool AggregatorStage::Impl::checkpoint_due() const {
  CheckpointProgress progress;
  progress.events = checkpoint_rounds.unsaved_events();
  progress.since_last = Clock::now() - last_checkpoint;
  progress.round_in_progress = checkpoint_rounds.round_in_progress();
  progress.stopping = stop_requested.load();
  return service::checkpoint_due(progress, config.checkpoint_events, config.checkpoint_interval);
}

// Which products' state the batch being built saves; call after its events were added.
AggregatorStage::Impl::StateToSave AggregatorStage::Impl::state_to_save() {
  const bool due = checkpoint_due();
  if (due && stop_requested.load()) {
    // With the changelog the whole checkpoint names its products (not every partition on disk
    // is this instance's: see whole_checkpoint()).
    std::vector<std::string> products;
    if (changelogs) products = checkpoint_rounds.unsaved_products();
    checkpoint_rounds.saved_all();
    return {.all = true, .share = {.products = std::move(products), .completes_round = true}};
  }
  return {.all = false, .share = checkpoint_rounds.next_share(due)};
}

aggregator::Changes AggregatorStage::Impl::take_changes(const StateToSave& save) {
  using Output = aggregator::Aggregator::StateOutput;
  if (save.all) return aggregator->take_changes(Output::kInclude);
  const std::vector<std::string>& products = save.share.products;
  if (products.empty()) return aggregator->take_changes(Output::kDefer);
  return aggregator->take_changes([&products](std::string_view id) {
    return std::binary_search(products.begin(), products.end(), id, std::less<>());
  });
}

void AggregatorStage::Impl::checkpoint_committed(bool completes_checkpoint,
                                                 bool building_saves_state) {
  unsaved_events.set(static_cast<double>(checkpoint_rounds.unsaved_events()));
  if (!completes_checkpoint) return;
  last_checkpoint = Clock::now();
  checkpoints_total.inc();
  // Only products whose state is persisted may be dropped, and the batch built meanwhile may
  // have handed out some state that is not yet.
  if (!building_saves_state) aggregator->evict_idle();
}

// Commits the aggregator's changes with its whole state, on this thread (no commit may be in
// flight). Returns what was committed, or nullopt after fail() on a store failure.
std::optional<store::CommitBatch> AggregatorStage::Impl::commit_checkpoint(std::string_view why) {
  if (!state_intact()) return std::nullopt;
  std::vector<std::string> products;
  if (changelogs) products = checkpoint_rounds.unsaved_products();
  checkpoint_rounds.saved_all();
  store::CommitBatch commit =
      to_commit_batch(aggregator->take_changes(aggregator::Aggregator::StateOutput::kInclude));
  mark_whole_checkpoint(&commit, std::move(products));
  if (store::Status s = alerts.add_to(&commit); !s.ok()) {
    (void)fail("alert lookup failed (" + std::string(why) + "): " + s.to_string());
    return std::nullopt;
  }
  product_partitions.assign(&commit);
  if (store::Status s = commit_to_store(commit); !s.ok()) {
    (void)fail(changelog_failure
                   ? *changelog_failure
                   : "store commit failed (" + std::string(why) + "): " + s.to_string());
    return std::nullopt;
  }
  if (config.on_committed) config.on_committed();
  checkpoint_committed(true, false);
  return commit;
}

// A whole checkpoint: every event stored so far is in the state. With the changelog it names the
// products whose events were added here instead (`products`): the store would otherwise clear the
// arrival log of every partition on disk, also those restored here later or another instance's,
// whose changelogs this instance must not write.
void AggregatorStage::Impl::mark_whole_checkpoint(store::CommitBatch* commit,
                                                  std::vector<std::string> products) const {
  if (!changelogs) {
    commit->aggregator_checkpoint = true;
    return;
  }
  commit->state_saved_for = std::move(products);
}

// A state read the store refused, or a stored state record that could not be decoded, left its
// product incomplete; committing what the aggregator derived from it would make the loss
// permanent, so the stage stops.
bool AggregatorStage::Impl::state_intact() {
  if (const auto& read_error = state_reader.read_error()) return fail(*read_error);
  const auto& error = aggregator->state_error();
  if (!error) return true;
  return fail(*error +
              "; `painpoint replay rebuild --product ID` recomputes a product's state from its "
              "stored events");
}

// Writes out the deferred aggregator state (on stop). False on a store failure.
bool AggregatorStage::Impl::checkpoint_now() {
  if (!finish_commit()) return false;
  if (checkpoint_rounds.unsaved_events() == 0 || failed.load()) return true;
  return commit_checkpoint("checkpoint").has_value();
}

// Rebuilds the state deferred before a crash: the events stored since the last checkpoint go
// through the aggregator again, in the order they were first added. Adding is deterministic,
// so this re-derives the memberships and summaries already stored; only the state is kept.
// With several shards, or the analysis ahead, the events go to the aggregator in chunks (copied:
// the scan's own are valid only during the callback).
store::Status AggregatorStage::Impl::recover(const std::set<std::int32_t>* only) {
  constexpr std::size_t kChunk = 10'000;
  const auto started = Clock::now();
  std::uint64_t replayed = 0;
  std::vector<v1::StoredEvent> chunk;
  std::vector<std::size_t> in_order;
  const auto add_chunk = [&] {
    in_order.resize(chunk.size());
    std::iota(in_order.begin(), in_order.end(), std::size_t{0});
    add_to_aggregator(chunk, in_order);
    (void)aggregator->take_changes(aggregator::Aggregator::StateOutput::kDefer);
    chunk.clear();
  };
  const auto replay = [&](const v1::StoredEvent& stored) {
    if (only != nullptr && !only->contains(stored.input_partition())) return true;
    product_partitions.learn(stored);
    checkpoint_rounds.added(stored.event().product_id());
    ++replayed;
    if (aggregator->shard_count() == 1 && !aggregator->analyzes_ahead()) {
      aggregator->add(stored.event(), vectors.vector_of(stored));
      if (replayed % kChunk == 0) {
        (void)aggregator->take_changes(aggregator::Aggregator::StateOutput::kDefer);
      }
      return true;
    }
    chunk.push_back(stored);
    if (chunk.size() == kChunk) add_chunk();
    return true;
  };
  // A restored partition's replay reads its own arrival log only: the others may be long (being
  // restored, or not checkpointed yet).
  const std::vector<std::int32_t> partitions =
      only != nullptr ? std::vector<std::int32_t>(only->begin(), only->end())
                      : std::vector<std::int32_t>{};
  store::Status scanned = only != nullptr ? store.scan_unsaved_events(partitions, replay)
                                          : store.scan_unsaved_events(replay);
  if (!scanned.ok()) return scanned;
  add_chunk();
  unsaved_events.set(static_cast<double>(replayed));
  if (replayed > 0) {
    spdlog::info(
        "aggregator state rebuilt from {} events stored after the last checkpoint in "
        "{:.2f} s",
        replayed, std::chrono::duration<double>(Clock::now() - started).count());
  }
  return store::Status::Ok();
}

}  // namespace painpoint::service

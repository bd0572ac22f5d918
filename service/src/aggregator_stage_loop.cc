// The stage's thread: poll a batch, decode, dedupe, aggregate, hand it to the commit thread.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "aggregator_stage_impl.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::service {

void AggregatorStage::Impl::run() {
  while (!stop_requested.load()) {
    if (reset_due && !reset_aggregator()) break;
    if (!advance_restores()) break;
    // While partitions restore, the poll only keeps the group membership alive.
    const auto timeout = restoring.empty() ? config.poll_timeout : std::chrono::milliseconds(1);
    const auto poll_began = std::chrono::steady_clock::now();
    ingest::MessageBatch batch =
        consumer->poll_batch(config.batch_size, timeout, config.batch_bytes);
    pause_assigned();
    if (config.published_partitions != nullptr) config.published_partitions->polled(poll_began);
    if (config.input_backlog) {
      for (const auto& next : batch.next_offsets()) {
        if (next.topic == config.topic) config.input_backlog->polled(next.partition, next.offset);
      }
    }
    if (failed.load()) break;  // e.g. an assignment whose stored offsets could not be read
    for (const auto& reset : batch.offset_resets()) {
      if (reset.lost() > 0) {
        spdlog::error(
            "{} messages of {}[{}] were lost to retention: offset {} is no longer on the broker "
            "(earliest is {}); continuing from {}",
            reset.lost(), reset.partition.topic, reset.partition.partition, reset.requested,
            reset.low_watermark, reset.resumed_at);
        lost_total.inc(static_cast<std::uint64_t>(reset.lost()));
      }
    }
    for (const auto& error : batch.errors()) {
      spdlog::warn("aggregator consumer: {}", error.status.to_string());
    }
    if (!batch.empty()) {
      if (!process(batch)) break;
    } else if (!finish_commit()) {
      break;  // nothing new: settle the last batch rather than wait for the next one
    } else if (changelogs && changelogs->deletions_pending()) {
      // Idle: the publisher's deletions go to the changelog now rather than with a next batch
      // that may not come before a stop.
      if (store::Status s = commit_to_store(store::CommitBatch{}); !s.ok()) {
        (void)fail(changelog_failure ? *changelog_failure
                                     : "store commit failed: " + s.to_string());
        break;
      }
    }
    if (!run_commands()) break;
    refresh_lag(batch.empty());
  }
  close_commands();
  (void)checkpoint_now();  // settles the commit in flight; failures are reported by fail()
  if (auto s = consumer->close(config.close_timeout); !s.ok()) {
    spdlog::warn("aggregator consumer close: {}", s.to_string());
  }
  running.store(false);
}

// Semantic mode unpacks the events' vectors a chunk at a time, so that a large batch does not hold
// them all (1.5 KiB per event) at once.
void AggregatorStage::Impl::add_to_aggregator(const std::vector<v1::StoredEvent>& events,
                                              std::span<const std::size_t> fresh) {
  constexpr std::size_t kVectorChunk = 4096;
  std::vector<aggregator::AggregatorShards::Event> chunk;
  std::vector<float> unpacked;
  std::vector<std::size_t> starts;  // of each event's vector in `unpacked`, and its end
  while (!fresh.empty()) {
    const std::size_t n = vectors.enabled() ? std::min(fresh.size(), kVectorChunk) : fresh.size();
    unpacked.clear();
    starts.clear();
    for (const std::size_t index : fresh.first(n)) {
      starts.push_back(unpacked.size());
      const std::span<const float> v = vectors.vector_of(events[index]);
      unpacked.insert(unpacked.end(), v.begin(), v.end());
    }
    starts.push_back(unpacked.size());
    const std::span<const float> all(unpacked);
    chunk.clear();
    for (std::size_t i = 0; i < n; ++i) {
      chunk.push_back(
          {&events[fresh[i]].event(), all.subspan(starts[i], starts[i + 1] - starts[i])});
    }
    aggregator->add_all(chunk);
    fresh = fresh.subspan(n);
  }
}

// Returns false when the stage must stop (store failure). The batch's WriteBatch is committed
// on the writer thread while the next batch is aggregated here; its offsets count as stored,
// and its bookkeeping runs, only once finish_commit() saw the commit succeed.
bool AggregatorStage::Impl::process(const ingest::MessageBatch& batch) {
  const auto started = Clock::now();
  std::vector<v1::StoredEvent> events;
  events.reserve(batch.size());
  std::size_t invalid = 0;
  std::size_t skipped = 0;
  for (const ingest::Message& message : batch) {
    // A partition restoring (or no longer here): its events are read again after its seek.
    if (!processes(message.partition())) {
      ++skipped;
      continue;
    }
    v1::StoredEvent stored;
    if (auto rejection = ingest::parse_wire_event(message.payload(), stored.mutable_event())) {
      // Only ingest writes this topic, and it validated the event; anything else is foreign.
      ++invalid;
      spdlog::warn("skipping undecodable message at {}/{}@{}: {}", message.topic(),
                   message.partition(), message.offset(), rejection->detail);
      continue;
    }
    stored.set_input_topic(std::string(message.topic()));
    stored.set_input_partition(message.partition());
    stored.set_input_offset(message.offset());
    events.push_back(std::move(stored));
  }

  std::vector<std::string_view> ids;
  std::vector<std::int32_t> partitions;
  ids.reserve(events.size());
  partitions.reserve(events.size());
  for (const auto& e : events) {
    ids.push_back(e.event().event_id());
    partitions.push_back(e.input_partition());
  }
  std::vector<std::size_t> fresh;
  if (store::Status s = store.filter_new_events(ids, partitions, &fresh); !s.ok()) {
    return fail("dedupe lookup failed: " + s.to_string());
  }
  // The store does not know the events of the commit still in flight yet.
  if (in_flight) {
    std::erase_if(fresh, [&](std::size_t i) { return in_flight->event_ids.contains(ids[i]); });
  }

  if (vectors.enabled()) {
    std::vector<v1::StoredEvent*> to_encode;
    to_encode.reserve(fresh.size());
    for (std::size_t index : fresh) to_encode.push_back(&events[index]);
    vectors.encode_missing(to_encode);
  }
  for (std::size_t index : fresh) checkpoint_rounds.added(events[index].event().product_id());
  add_to_aggregator(events, fresh);
  if (!state_intact()) return false;
  StateToSave save = state_to_save();
  Pending pending;
  pending.commit = to_commit_batch(take_changes(save));
  if (save.all) {
    mark_whole_checkpoint(&pending.commit, std::move(save.share.products));
  } else {
    pending.commit.state_saved_for = std::move(save.share.products);
  }
  pending.completes_checkpoint = save.all || save.share.completes_round;
  if (store::Status s = alerts.add_to(&pending.commit); !s.ok()) {
    return fail("alert lookup failed: " + s.to_string());
  }
  pending.commit.events.reserve(fresh.size());
  pending.event_ids.reserve(fresh.size());
  // In the order they were added: the store numbers them so (arrival numbers), which is what
  // recover() and `replay rebuild` replay them in. Commits run one at a time, in batch order.
  for (std::size_t index : fresh) {
    pending.commit.events.push_back(std::move(events[index]));
    pending.event_ids.insert(pending.commit.events.back().event().event_id());
  }
  pending.next = batch.next_offsets();
  std::erase_if(pending.next, [this](const auto& o) { return !processes(o.partition); });
  for (const auto& o : pending.next) {
    pending.commit.offsets.push_back({o.topic, o.partition, o.offset});
  }
  pending.commit.kafka_cluster_id = cluster_id_to_store;
  product_partitions.assign(&pending.commit);
  pending.messages = batch.size() - skipped;
  pending.duplicates = events.size() - fresh.size();
  pending.invalid = invalid;
  pending.started = started;

  if (!finish_commit(pending.commit.aggregator_checkpoint ||
                     !pending.commit.state_saved_for.empty())) {
    return false;
  }
  cluster_id_to_store.reset();
  start_commit(std::move(pending));
  return true;
}

}  // namespace painpoint::service

// Construction and metrics, start/stop, readiness and failure of the aggregator stage.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "aggregator_stage_impl.h"
#include "painpoint/ingest/partitioner.h"
#include "routing/partition_owners.h"

namespace painpoint::service {

AggregatorStage::Impl::Impl(AggregatorStageConfig cfg, store::Store& s, MetricsRegistry& metrics)
    : config(std::move(cfg)),
      store(s),
      state_reader(s),
      vectors(
          config.cluster.encoder == aggregator::EncoderMode::kSemantic ? config.encoder : nullptr,
          config.encoder_threads),
      stored_total(metrics.counter("painpoint_events_stored_total",
                                   "Distinct events committed to the store since start")),
      duplicate_total(metrics.counter(
          "painpoint_events_duplicate_total",
          "Events dropped because their event id was already stored (redelivery or duplicate)")),
      invalid_total(metrics.counter("painpoint_events_invalid_total",
                                    "Events rejected by validation", {{"stage", "aggregator"}})),
      lost_total(metrics.counter(
          "painpoint_events_lost_to_retention_total",
          "Messages skipped because the offset to resume from was no longer on the broker",
          {{"stage", "aggregator"}})),
      batches_total(
          metrics.counter("painpoint_batches_committed_total", "Batches committed to the store")),
      commit_seconds(metrics.histogram(
          "painpoint_batch_commit_seconds",
          "Time to dedupe, aggregate and commit one batch to the store (WriteBatch)",
          default_latency_buckets())),
      batch_events(metrics.histogram("painpoint_batch_events", "Messages per committed batch",
                                     exponential_buckets(1, 4, 8))),
      lag(metrics.gauge("painpoint_consumer_lag",
                        "Messages on the broker not yet consumed, summed over partitions",
                        {{"stage", "aggregator"}})),
      active_pain_points(
          metrics.gauge("painpoint_pain_points_active", "Active pain points held in memory")),
      unsaved_events(metrics.gauge(
          "painpoint_aggregator_unsaved_events",
          "Events stored since the aggregator state was last written out (replayed on restart)")),
      checkpoints_total(metrics.counter("painpoint_aggregator_checkpoints_total",
                                        "Times the aggregator state was written out")) {}

std::unique_ptr<aggregator::AggregatorShards> AggregatorStage::Impl::make_aggregator() {
  unsigned shards = config.aggregator_threads;
  if (shards == 0) {
    shards = std::clamp(std::thread::hardware_concurrency() / 2, 1u,
                        AggregatorStageConfig::kMaxDefaultShards);
  }
  // With a second core the texts of the next events are analysed there while these are added.
  const bool analyze_ahead = std::thread::hardware_concurrency() > 1;
  return std::make_unique<aggregator::AggregatorShards>(config.cluster, &state_reader, shards,
                                                        analyze_ahead);
}

void AggregatorStage::Impl::set_failure(std::string detail) {
  std::lock_guard lock(detail_mutex);
  failure_detail = std::move(detail);
}

bool AggregatorStage::Impl::fail(std::string detail) {
  spdlog::error("aggregator stage stops: {}; nothing after the last commit was acknowledged",
                detail);
  set_failure(std::move(detail));
  failed.store(true);
  return false;
}

AggregatorStage::AggregatorStage(AggregatorStageConfig config, store::Store& store,
                                 MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(config), store, metrics)) {}

AggregatorStage::~AggregatorStage() { stop(); }

void AggregatorStage::advertise_api(std::string_view address) {
  impl_->config.client_id = client_id_with_address(address);
}

void AggregatorStage::use_changelog(changelog::ChangelogConfig config, std::int32_t partitions,
                                    OutboxDeletions* deletions) {
  impl_->config.changelog = std::move(config);
  impl_->config.changelog_partitions = partitions;
  impl_->config.outbox_deletions = deletions;
}

ingest::Status AggregatorStage::start() {
  Impl& impl = *impl_;
  ingest::ConsumerConfig consumer_config;
  consumer_config.brokers = impl.config.brokers;
  consumer_config.group_id = impl.config.group_id;
  consumer_config.client_id = impl.config.client_id;
  consumer_config.extra = impl.config.consumer_properties;
  auto consumer = ingest::Consumer::create(consumer_config);
  if (!consumer.ok()) return consumer.status();
  impl.consumer.emplace(std::move(consumer).value());
  if (auto s = impl.resolve_cluster(); !s.ok()) return s;
  if (impl.config.changelog) {
    impl.input_partitions.store(impl.config.changelog_partitions);
    // Partitions are restored as they are assigned (aggregator_stage_takeover.cc).
    if (auto s = impl.check_changelog_partitions(); !s.ok()) return s;
    impl.changelogs = std::make_unique<PartitionChangelogs>(*impl.config.changelog, impl.store,
                                                            impl.config.outbox_deletions);
    impl.changelogs->connect();
  }
  if (store::Status s = ProductPartitions::from_store(impl.store, &impl.product_partitions);
      !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther, "store: " + s.to_string());
  }

  impl.aggregator = impl.make_aggregator();
  // With the changelog no partition is this instance's yet: each replays its own at its restore.
  if (store::Status s = impl.changelogs ? store::Status::Ok() : impl.recover(); !s.ok()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther,
                                 "rebuilding the aggregator state: " + s.to_string());
  }
  if (const auto& read_error = impl.state_reader.read_error()) {
    return ingest::Status::Error(ingest::KafkaErrc::kOther,
                                 "rebuilding the aggregator state: " + *read_error);
  }
  impl.stored_count.store(0);
  const std::vector<std::string> topics = {impl.config.topic};
  auto s =
      impl.changelogs
          ? impl.consumer->subscribe(topics, static_cast<ingest::RebalanceListener&>(impl))
          : impl.consumer->subscribe(
                topics,
                [&impl](std::span<const ingest::TopicPartition> p) { return impl.on_assign(p); },
                [&impl](std::span<const ingest::TopicPartition> p) { impl.on_revoke(p); });
  if (!s.ok()) return s;
  {
    std::lock_guard lock(impl.detail_mutex);
    impl.start_detail.clear();
  }
  impl.running.store(true);
  {
    std::lock_guard lock(impl.commands_mutex);
    impl.accepting = true;
  }
  impl.thread = std::thread([&impl] {
    pthread_setname_np(pthread_self(), "pp-aggregate");
    impl.run();
  });
  return ingest::Status::Ok();
}

void AggregatorStage::stop() {
  if (!impl_) return;
  impl_->stop_requested.store(true);
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool AggregatorStage::failed() const { return impl_->failed.load(); }
bool AggregatorStage::idle() const { return impl_->idle.load(); }
std::uint64_t AggregatorStage::events_stored() const { return impl_->stored_count.load(); }
std::uint64_t AggregatorStage::events_lost_to_retention() const {
  return impl_->lost_total.value();
}

bool AggregatorStage::broker_reachable() const {
  return impl_->consumer && impl_->consumer->broker_reachable();
}

bool AggregatorStage::ready() const {
  return impl_->running.load() && !impl_->failed.load() && impl_->assigned.load() &&
         broker_reachable() && restoring_partitions().empty();
}

std::vector<std::int32_t> AggregatorStage::restoring_partitions() const {
  std::lock_guard lock(impl_->restoring_mutex);
  return impl_->restoring_view;
}

std::vector<std::int32_t> AggregatorStage::active_partitions() const {
  std::lock_guard lock(impl_->restoring_mutex);
  return impl_->active_view;
}

AggregatorStage::ProductHolding AggregatorStage::holding_of(std::string_view product) const {
  const std::int32_t count = impl_->input_partitions.load();
  if (count <= 0) return ProductHolding::kUnknown;
  const std::int32_t p = ingest::partition_for_key(product, count);
  std::lock_guard lock(impl_->restoring_mutex);
  if (std::binary_search(impl_->restoring_view.begin(), impl_->restoring_view.end(), p)) {
    return ProductHolding::kRestoring;
  }
  return std::binary_search(impl_->active_view.begin(), impl_->active_view.end(), p)
             ? ProductHolding::kHeld
             : ProductHolding::kNotHeld;
}

std::string AggregatorStage::status_detail() const {
  if (impl_->failed.load()) {
    std::lock_guard lock(impl_->detail_mutex);
    return impl_->failure_detail;
  }
  if (!impl_->running.load()) {
    std::lock_guard lock(impl_->detail_mutex);
    return impl_->start_detail.empty() ? "not running" : impl_->start_detail;
  }
  if (!broker_reachable()) return ingest::unreachable_detail(impl_->consumer->connection_problem());
  if (!impl_->assigned.load()) return "waiting for partition assignment";
  if (const std::vector<std::int32_t> restoring = restoring_partitions(); !restoring.empty()) {
    std::string detail = "restoring partitions from the changelog:";
    for (std::int32_t p : restoring) detail += " " + std::to_string(p);
    return detail;
  }
  return "ok";
}

}  // namespace painpoint::service

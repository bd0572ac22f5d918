#include "routing/serve_routing.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <utility>

#include "painpoint/ingest/topics.h"

namespace painpoint::service {

namespace {

// The cluster was reached moments before (the aggregator stage joined its group).
constexpr std::chrono::seconds kSetupTimeout{10};
// Owners change only at rebalances; a second keeps a moved partition's requests failing (503,
// then the next refresh) for about that long, at one DescribeGroups per second per instance.
constexpr std::chrono::seconds kRefreshInterval{1};
// Also the longest a stop waits for the refresh thread.
constexpr std::chrono::milliseconds kDescribeTimeout{2'000};

}  // namespace

InstanceRouting ServeRouting::wrappers(const store::Store& store) const {
  InstanceRouting routing;
  routing.by_product = [this](HttpHandler h) { return forwarding_.by_product(std::move(h)); };
  routing.by_pain_point = [this](HttpHandler h) { return forwarding_.by_pain_point(std::move(h)); };
  routing.product_list = [this](HttpHandler h) { return forwarding_.product_list(std::move(h)); };
  routing.curation = [this, &store](HttpHandler h) {
    auto product_of = [&store](std::string_view id) -> std::optional<std::string> {
      std::optional<v1::PainPointSummary> summary;
      if (!store.get_summary(id, &summary).ok() || !summary) return std::nullopt;
      return summary->product_id();
    };
    return forwarding_.curation(std::move(product_of), std::move(h));
  };
  return routing;
}

void ServeRouting::start(const std::string& brokers,
                         const ingest::ClientProperties& admin_properties,
                         const std::string& group_id, const std::string& self_address) {
  auto admin = ingest::Admin::create({brokers, "painpoint-routing", admin_properties});
  if (!admin.ok()) {
    spdlog::warn("requests are answered locally only: {}", admin.status().to_string());
    return;
  }
  auto has_controller = admin->has_controller(kSetupTimeout);
  if (!has_controller.ok() || !*has_controller) {
    spdlog::debug(
        "requests are answered locally: the cluster names no controller (the "
        "embedded broker cannot describe groups)");
    return;
  }
  const std::string topic(ingest::kTopicByProduct);
  auto metadata = admin->metadata(kSetupTimeout, topic);
  if (!metadata.ok() || metadata->topics.empty() || !metadata->topics[0].error.ok() ||
      metadata->topics[0].partitions <= 0) {
    spdlog::warn("requests are answered locally only: cannot read the partitions of {}", topic);
    return;
  }
  admin_ = std::make_unique<ingest::Admin>(std::move(admin).value());
  OwnerDirectoryConfig directory_config;
  directory_config.group_id = group_id;
  directory_config.topic = topic;
  directory_config.partition_count = metadata->topics[0].partitions;
  directory_config.request_timeout = kDescribeTimeout;
  directory_ = std::make_unique<OwnerDirectory>(*admin_, std::move(directory_config));
  // Right after the start the coordinator may still be loading the group ("not coordinator"):
  // only a cluster that cannot describe groups at all turns forwarding off; any other error is
  // the refresh thread's to retry (requests that need the owners get 503 until it answers).
  if (const ingest::Status first = directory_->refresh(); !first.ok()) {
    if (first.code == ingest::KafkaErrc::kUnsupported) {
      spdlog::warn("requests are answered locally only: the cluster cannot describe group {} ({})",
                   group_id, first.to_string());
      directory_.reset();
      admin_.reset();
      return;
    }
    spdlog::info("group {} not described yet ({}); retried every second", group_id,
                 first.to_string());
  }
  refresher_ = std::thread([this] { refresh_loop(); });
  OwnerDirectory* directory = directory_.get();
  auto latest = [directory]() -> ingest::Result<std::shared_ptr<const PartitionOwners>> {
    if (auto owners = directory->latest()) return owners;
    return ingest::Status::Error(ingest::KafkaErrc::kOther, "not read from the cluster yet");
  };
  forwarding_.enable({std::move(latest), [this] { wake_refresh(); }},
                     ForwardingConfig{self_address, {}, std::chrono::seconds(1)});
  spdlog::info(
      "requests about products other members own go to them (group {}, {} partitions "
      "of {}, this instance at {})",
      group_id, metadata->topics[0].partitions, topic, self_address);
}

ServeRouting::~ServeRouting() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

void ServeRouting::wake_refresh() {
  {
    std::lock_guard lock(mutex_);
    refresh_now_ = true;
  }
  wake_.notify_all();
}

void ServeRouting::refresh_loop() {
  pthread_setname_np(pthread_self(), "pp-owners");
  bool failing = false;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kRefreshInterval, [this] { return stopping_ || refresh_now_; });
    if (stopping_) break;
    refresh_now_ = false;
    lock.unlock();
    const ingest::Status s = directory_->refresh();
    // Logged when it starts and stops failing, not every second.
    if (!s.ok() && !failing) {
      spdlog::warn("partition owners: {} (the last answer stays in use)", s.to_string());
    } else if (s.ok() && failing) {
      spdlog::info("partition owners: read again");
    }
    failing = !s.ok();
    lock.lock();
  }
}

}  // namespace painpoint::service

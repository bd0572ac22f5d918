#include "routing/serve_routing.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <utility>

#include "painpoint/ingest/topics.h"

namespace painpoint::service {

namespace {

// The cluster was reached moments before (the aggregator stage joined its group).
constexpr std::chrono::seconds kSetupTimeout{10};
// A DescribeGroups that a request waits for holds an API io thread (OwnerDirectory refreshes
// at most every 2 s); a slow cluster answers 503 within this rather than stall the API.
constexpr std::chrono::milliseconds kDescribeTimeout{2'000};

}  // namespace

InstanceRouting ServeRouting::wrappers(const store::Store& store) const {
  InstanceRouting routing;
  routing.by_product = [this](HttpHandler h) { return forwarding_.by_product(std::move(h)); };
  routing.by_pain_point = [this](HttpHandler h) {
    return forwarding_.by_pain_point(std::move(h));
  };
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
    spdlog::debug("requests are answered locally: the cluster names no controller (the "
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
  // Right after the start the coordinator may still be loading the group ("not coordinator"):
  // only a cluster that cannot describe groups at all turns forwarding off; any other error is
  // the OwnerDirectory's to retry (requests that need the owners get 503 until it answers).
  if (auto group = admin->describe_group(group_id, kSetupTimeout); !group.ok()) {
    if (group.status().code == ingest::KafkaErrc::kUnsupported) {
      spdlog::warn("requests are answered locally only: the cluster cannot describe group {} ({})",
                   group_id, group.status().to_string());
      return;
    }
    spdlog::info("group {} not described yet ({}); forwarding starts anyway", group_id,
                 group.status().to_string());
  }
  admin_ = std::make_unique<ingest::Admin>(std::move(admin).value());
  OwnerDirectoryConfig directory_config;
  directory_config.group_id = group_id;
  directory_config.topic = topic;
  directory_config.partition_count = metadata->topics[0].partitions;
  directory_config.request_timeout = kDescribeTimeout;
  directory_ = std::make_unique<OwnerDirectory>(*admin_, std::move(directory_config));
  OwnerDirectory* directory = directory_.get();
  forwarding_.enable({[directory] { return directory->current(); },
                      [directory] { directory->invalidate(); }},
                     ForwardingConfig{self_address, {}, std::chrono::seconds(1)});
  spdlog::info("requests about products other members own go to them (group {}, {} partitions "
               "of {}, this instance at {})",
               group_id, metadata->topics[0].partitions, topic, self_address);
}

}  // namespace painpoint::service

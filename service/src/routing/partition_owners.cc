#include "routing/partition_owners.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

#include "painpoint/ingest/partitioner.h"

namespace painpoint::service {

namespace {

constexpr std::string_view kClientIdPrefix = "painpoint@";

using ingest::KafkaErrc;
using ingest::Status;

}  // namespace

std::string client_id_with_address(std::string_view http_address) {
  return std::string(kClientIdPrefix) + std::string(http_address);
}

std::optional<std::string> address_from_client_id(std::string_view client_id) {
  if (!client_id.starts_with(kClientIdPrefix)) return std::nullopt;
  std::string_view address = client_id.substr(kClientIdPrefix.size());
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) {
    return std::nullopt;
  }
  return std::string(address);
}

std::string advertised_address(std::string_view bind_address, std::uint16_t port,
                               std::string_view configured) {
  if (!configured.empty()) return std::string(configured);
  std::string host(bind_address);
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    std::array<char, 256> name{};
    host = ::gethostname(name.data(), name.size() - 1) == 0 ? name.data() : "localhost";
  } else if (host.find(':') != std::string::npos && !host.starts_with("[")) {
    host = "[" + host + "]";  // an IPv6 literal
  }
  return host + ":" + std::to_string(port);
}

ingest::Result<PartitionOwners> PartitionOwners::from_group(const ingest::GroupDescription& group,
                                                            std::string_view topic,
                                                            std::int32_t partition_count) {
  if (partition_count <= 0) {
    return Status::Error(KafkaErrc::kInvalidArgument,
                         "partition owners of " + std::string(topic) + ": no partitions");
  }
  PartitionOwners out;
  out.group_state_ = group.state;
  out.by_partition_.assign(static_cast<std::size_t>(partition_count), std::nullopt);
  for (const ingest::GroupMember& member : group.members) {
    const std::size_t index = out.members_.size();
    out.members_.push_back({member.member_id, member.group_instance_id,
                            address_from_client_id(member.client_id).value_or("")});
    for (const ingest::TopicPartition& tp : member.assignment) {
      if (tp.topic != topic || tp.partition < 0 || tp.partition >= partition_count) continue;
      std::optional<std::size_t>& slot = out.by_partition_[static_cast<std::size_t>(tp.partition)];
      if (slot) {
        return Status::Error(KafkaErrc::kInvalidArgument,
                             "group " + group.group_id + ": partition " +
                                 std::to_string(tp.partition) + " of " + std::string(topic) +
                                 " is assigned to two members");
      }
      slot = index;
    }
  }
  return out;
}

const PartitionOwner* PartitionOwners::owner_of_partition(std::int32_t partition) const {
  if (partition < 0 || partition >= partition_count()) return nullptr;
  const std::optional<std::size_t>& slot = by_partition_[static_cast<std::size_t>(partition)];
  return slot ? &members_[*slot] : nullptr;
}

std::int32_t PartitionOwners::partition_of_product(std::string_view product_id) const {
  return ingest::partition_for_key(product_id, partition_count());
}

const PartitionOwner* PartitionOwners::owner_of_product(std::string_view product_id) const {
  return owner_of_partition(partition_of_product(product_id));
}

std::vector<std::string> PartitionOwners::addresses() const {
  std::vector<std::string> out;
  for (const std::optional<std::size_t>& slot : by_partition_) {
    if (slot && !members_[*slot].http_address.empty()) out.push_back(members_[*slot].http_address);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

OwnerDirectory::OwnerDirectory(ingest::Admin& admin, OwnerDirectoryConfig config)
    : admin_(admin), config_(std::move(config)) {}

ingest::Result<std::shared_ptr<const PartitionOwners>> OwnerDirectory::current() {
  std::lock_guard ask(refresh_mutex_);
  {
    std::lock_guard lock(owners_mutex_);
    if (!expired_ && std::chrono::steady_clock::now() - fetched_at_ < config_.max_age) {
      return owners_;
    }
  }
  if (Status s = describe(); !s.ok()) return s;
  return latest();
}

ingest::Status OwnerDirectory::refresh() {
  std::lock_guard ask(refresh_mutex_);
  return describe();
}

ingest::Status OwnerDirectory::describe() {
  auto group = admin_.describe_group(config_.group_id, config_.request_timeout);
  if (!group.ok()) return group.status();
  auto owners = PartitionOwners::from_group(*group, config_.topic, config_.partition_count);
  if (!owners.ok()) return owners.status();
  auto shared = std::make_shared<const PartitionOwners>(std::move(owners).value());
  std::lock_guard lock(owners_mutex_);
  owners_ = std::move(shared);
  fetched_at_ = std::chrono::steady_clock::now();
  expired_ = false;
  return Status::Ok();
}

std::shared_ptr<const PartitionOwners> OwnerDirectory::latest() const {
  std::lock_guard lock(owners_mutex_);
  return owners_;
}

void OwnerDirectory::invalidate() {
  std::lock_guard lock(owners_mutex_);
  expired_ = true;
}

}  // namespace painpoint::service

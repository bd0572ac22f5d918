#pragma once

// Which instance owns which partition of the aggregator's input, read from Kafka's consumer
// group (docs/adr-005-scale-out.md, "Routing"): each instance puts the address of its HTTP API
// into its consumer's client id, and DescribeGroups shows every member's client id with the
// partitions assigned to it. No registry of our own: the group is the membership.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/ingest/admin.h"

namespace painpoint::service {

// "painpoint@<address>": the client id of a consumer whose instance serves its API at `address`
// (host:port as other instances can reach it).
std::string client_id_with_address(std::string_view http_address);
// The address in such a client id; nullopt for any other client id.
std::optional<std::string> address_from_client_id(std::string_view client_id);

// The address to advertise: `configured` when given, else the bind address with the bound port,
// where an address that binds every interface (0.0.0.0, ::) becomes this host's name.
std::string advertised_address(std::string_view bind_address, std::uint16_t port,
                               std::string_view configured);

struct PartitionOwner {
  std::string member_id;
  std::string instance_id;   // the member's group.instance.id; empty without static membership
  std::string http_address;  // empty: the member advertises no API (not a Painpoint instance)
};

// The owners of one topic's partitions in one consumer group, as one DescribeGroups answer gave
// them. Immutable: readers share it; a refresh builds a new one.
class PartitionOwners {
 public:
  // kInvalidArgument when `partition_count` is not positive or two members claim one partition.
  static ingest::Result<PartitionOwners> from_group(const ingest::GroupDescription& group,
                                                    std::string_view topic,
                                                    std::int32_t partition_count);

  // nullptr while the partition has no owner (the group is rebalancing or has no member).
  const PartitionOwner* owner_of_partition(std::int32_t partition) const;
  // The owner of the partition `product_id` is keyed to (ingest::partition_for_key).
  const PartitionOwner* owner_of_product(std::string_view product_id) const;
  std::int32_t partition_of_product(std::string_view product_id) const;
  // The distinct advertised addresses, sorted: where a request about all products must go.
  std::vector<std::string> addresses() const;
  std::int32_t partition_count() const { return static_cast<std::int32_t>(by_partition_.size()); }
  const std::string& group_state() const { return group_state_; }

 private:
  std::vector<PartitionOwner> members_;
  std::vector<std::optional<std::size_t>> by_partition_;  // index into members_
  std::string group_state_;
};

struct OwnerDirectoryConfig {
  std::string group_id;
  std::string topic;
  std::int32_t partition_count = 0;
  // An answer younger than this is reused; owners change only at rebalances.
  std::chrono::milliseconds max_age{2'000};
  std::chrono::milliseconds request_timeout{5'000};
};

// The latest PartitionOwners for the API's threads. current() asks the cluster when its answer
// is older than max_age (one DescribeGroups at a time; concurrent callers share its answer);
// serve instead refresh()es from a thread of its own and reads latest(), which never waits for
// the cluster.
class OwnerDirectory {
 public:
  OwnerDirectory(ingest::Admin& admin, OwnerDirectoryConfig config);

  ingest::Result<std::shared_ptr<const PartitionOwners>> current();
  // The next current() asks the cluster again: a forwarded request found that the owner moved.
  void invalidate();

  // Asks the cluster now (up to request_timeout). On failure the previous answer stays: while
  // the cluster cannot be reached, no rebalance can move a partition either.
  ingest::Status refresh();
  // The latest answer without asking the cluster; nullptr until a refresh succeeded.
  std::shared_ptr<const PartitionOwners> latest() const;

 private:
  // One DescribeGroups into owners_; the caller holds refresh_mutex_.
  ingest::Status describe();

  ingest::Admin& admin_;
  const OwnerDirectoryConfig config_;
  std::mutex refresh_mutex_;  // one DescribeGroups at a time
  mutable std::mutex owners_mutex_;
  std::shared_ptr<const PartitionOwners> owners_;
  std::chrono::steady_clock::time_point fetched_at_{};
  bool expired_ = true;
};

}  // namespace painpoint::service

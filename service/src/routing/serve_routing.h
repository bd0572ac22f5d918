#pragma once

// Forwarding as `painpoint serve` runs it: RequestForwarding over an OwnerDirectory of the
// aggregator's consumer group, enabled only on a cluster that describes the group (Apache Kafka;
// not the embedded broker). Without it every request is answered locally, as by one instance.
// The owners are re-read every second by a thread of its own (`pp-owners`), at once after a
// forwarded request failed, so no API thread ever waits for the cluster; while the cluster
// cannot be reached the last answer stays in use.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "api.h"
#include "painpoint/ingest/admin.h"
#include "painpoint/ingest/client_settings.h"
#include "painpoint/store/store.h"
#include "routing/forwarding.h"
#include "routing/partition_owners.h"

namespace painpoint::service {

class ServeRouting {
 public:
  ServeRouting() = default;
  ServeRouting(const ServeRouting&) = delete;
  ServeRouting& operator=(const ServeRouting&) = delete;
  // Stops the refresh thread (waits for a DescribeGroups in flight, at most 2 s).
  ~ServeRouting();

  // For ApiConfig::routing: wrappers that answer locally until start() enabled forwarding.
  // `store` gives the product of the pain points a curation names; both must outlive the server.
  InstanceRouting wrappers(const store::Store& store) const;

  // Enables forwarding when the cluster describes `group_id` (after this instance's consumer
  // joined it, so that its own address is among the owners); logs why not otherwise.
  void start(const std::string& brokers, const ingest::ClientProperties& admin_properties,
             const std::string& group_id, const std::string& self_address);

 private:
  void refresh_loop();
  void wake_refresh();

  RequestForwarding forwarding_;
  // Kept for the directory, which holds a reference to it.
  std::unique_ptr<ingest::Admin> admin_;
  std::unique_ptr<OwnerDirectory> directory_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool refresh_now_ = false;
  std::thread refresher_;
};

}  // namespace painpoint::service

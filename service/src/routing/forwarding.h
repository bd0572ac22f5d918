#pragma once

// Any instance answers any API request (docs/adr-005-scale-out.md, plan item 4): a request about
// a product goes to the member that owns the product's partition of the aggregator's input, one
// hop, with a loop guard; a pain point a member does not hold is looked up on the others;
// /v1/products is the merge of every member's own list. Users: docs/api.md, "Several instances".
//
// RequestForwarding wraps the API's handlers. Until enable() (the embedded broker, a cluster
// that cannot describe groups) every wrapper calls the local handler after one atomic load.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http_server.h"
#include "painpoint/ingest/status.h"
#include "painpoint/v1/api.pb.h"
#include "routing/forward_client.h"
#include "routing/partition_owners.h"

namespace painpoint::service {

// Set on a forwarded request, with the sender's advertised address as its value. A request that
// carries it is answered from the local store, never forwarded again.
inline constexpr std::string_view kForwardedHeader = "X-Painpoint-Forwarded";

bool is_forwarded(const HttpRequest& request);

struct OwnerChoice {
  enum class Kind { kLocal, kForward, kUnavailable };
  Kind kind = Kind::kUnavailable;
  std::int32_t partition = -1;
  std::string address;  // kForward: the owner's API
  std::string reason;   // kUnavailable: why there is no owner to ask
};

// Where a request about `product_id` is answered: here when this instance (`self_address`) owns
// its partition; the owner's address when another Painpoint instance does; unavailable while the
// partition has no owner (a rebalance) or its owner advertises no API.
OwnerChoice choose_owner(const PartitionOwners& owners, std::string_view product_id,
                         std::string_view self_address);

// The advertised addresses of the members that own partitions, without this instance's.
std::vector<std::string> other_addresses(const PartitionOwners& owners,
                                         std::string_view self_address);

struct ProductListFrom {
  std::string address;
  v1::ProductList list;
};

// One list of every product, ordered by product id as one instance's /v1/products is. A product
// that two members list (a partition's previous owner still holds its state) is taken from the
// member `owner_of(product)` names, else from the first list that has it.
v1::ProductList merge_product_lists(
    std::span<const ProductListFrom> lists,
    const std::function<std::string(std::string_view product_id)>& owner_of);

// The partition owners as the API threads see them: OwnerDirectory in serve, a fixed answer in
// tests.
struct OwnerSource {
  std::function<ingest::Result<std::shared_ptr<const PartitionOwners>>()> current;
  std::function<void()> invalidate;  // after a forwarded request failed: the owner may have moved
};

struct ForwardingConfig {
  std::string self_address;  // as in this instance's consumer client id
  ForwardLimits limits;
  std::chrono::seconds retry_after{1};  // the Retry-After of a 503
};

class RequestForwarding {
 public:
  RequestForwarding();
  RequestForwarding(const RequestForwarding&) = delete;
  RequestForwarding& operator=(const RequestForwarding&) = delete;
  ~RequestForwarding();

  // Call once, while the server may already be serving; the wrappers forward from then on.
  void enable(OwnerSource owners, ForwardingConfig config);

  // The wrappers keep a reference to this object, which must outlive the router's server.
  // /v1/products/{product}/...: answered by the owner of the product's partition.
  HttpHandler by_product(HttpHandler local) const;
  // /v1/pain-points/{id}...: here, or the first other member that has it (404 when none has).
  HttpHandler by_pain_point(HttpHandler local) const;
  // /v1/products: this instance's list merged with every other member's.
  HttpHandler product_list(HttpHandler local) const;
  // POST /v1/pain-points/{id}/{operation}: answered by the owner of the pain point's product,
  // which `local_product_of` gives for pain points this instance holds and the others' GET
  // /v1/pain-points/{id} gives for the rest.
  HttpHandler curation(
      std::function<std::optional<std::string>(std::string_view id)> local_product_of,
      HttpHandler local) const;

  struct Active;

 private:
  std::atomic<const Active*> active_{nullptr};
  std::unique_ptr<const Active> owned_;
};

}  // namespace painpoint::service

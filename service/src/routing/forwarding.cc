#include "routing/forwarding.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <utility>
#include <variant>

#include "api.h"
#include "painpoint/v1/pain_point.pb.h"

namespace painpoint::service {

struct RequestForwarding::Active {
  OwnerSource owners;
  ForwardingConfig config;
};

namespace {

using Active = RequestForwarding::Active;
using OwnersPtr = std::shared_ptr<const PartitionOwners>;

HttpResponse unavailable(const Active& active, std::string_view code, const std::string& message) {
  HttpResponse response = HttpResponse::error(503, code, message);
  response.headers.emplace_back("Retry-After", std::to_string(active.config.retry_after.count()));
  return response;
}

std::variant<OwnersPtr, HttpResponse> current_owners(const Active& active) {
  auto owners = active.owners.current();
  if (owners.ok()) return *owners;
  return unavailable(active, "owners_unknown",
                     "the partition owners cannot be read from the consumer group: " +
                         owners.status().to_string());
}

// The request as the owner gets it: same method, target and body, the credentials and the
// body's type, and the loop guard.
OutgoingRequest forwarded_copy(const HttpRequest& request, const Active& active, std::string method,
                               std::string target) {
  OutgoingRequest out{std::move(method), std::move(target), {}, {}};
  for (const std::string_view name : {"Authorization", "Content-Type"}) {
    if (auto value = request.header(name)) out.headers.emplace_back(name, *value);
  }
  out.headers.emplace_back(kForwardedHeader, active.config.self_address);
  if (out.method == request.method) out.body = request.body;
  return out;
}

// One hop to the owner; its answer as it is, or 503 when it gave none.
HttpResponse forward_to(const Active& active, const OwnerChoice& owner,
                        const HttpRequest& request) {
  ForwardResult result =
      send_request(owner.address, forwarded_copy(request, active, request.method, request.target),
                   active.config.limits);
  if (result.ok()) return std::move(result.response);
  active.owners.invalidate();
  spdlog::warn("forwarding {} {} to {}: {}", request.method, request.path, owner.address,
               result.error);
  return unavailable(active, "owner_unreachable",
                     "partition " + std::to_string(owner.partition) +
                         " is owned by the instance at " + owner.address +
                         ", which did not answer: " + result.error);
}

// Answers a request about `product` where choose_owner() says.
HttpResponse route_product(const Active& active, const PartitionOwners& owners,
                           std::string_view product, const HttpRequest& request,
                           const HttpHandler& local) {
  const OwnerChoice owner = choose_owner(owners, product, active.config.self_address);
  switch (owner.kind) {
    case OwnerChoice::Kind::kLocal:
      return local(request);
    case OwnerChoice::Kind::kForward:
      return forward_to(active, owner, request);
    case OwnerChoice::Kind::kUnavailable:
      break;
  }
  return unavailable(active, "owner_unknown",
                     "partition " + std::to_string(owner.partition) + " of product " +
                         std::string(product) + ": " + owner.reason);
}

struct OthersAnswer {
  std::optional<HttpResponse> found;  // the first 200
  std::string failed;                 // members that gave no answer, and why
};

// GET `target` on every other member at once (loop guard set, so each answers from its own
// store); the first 200 in the members' order wins.
OthersAnswer ask_others(const Active& active, const PartitionOwners& owners,
                        const HttpRequest& request, const std::string& target) {
  OthersAnswer answer;
  const std::vector<std::string> addresses = other_addresses(owners, active.config.self_address);
  std::vector<ForwardResult> results = send_requests(
      addresses, forwarded_copy(request, active, "GET", target), active.config.limits);
  for (std::size_t i = 0; i < results.size(); ++i) {
    ForwardResult& result = results[i];
    if (!result.ok()) {
      active.owners.invalidate();
      answer.failed += (answer.failed.empty() ? "" : "; ") + addresses[i] + ": " + result.error;
      continue;
    }
    if (result.response.status == 200 && !answer.found) answer.found = std::move(result.response);
  }
  return answer;
}

bool parse_json(const std::string& body, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer member may print more fields
  return google::protobuf::util::JsonStringToMessage(body, message, options).ok();
}

// The other members' own /v1/products (loop guard set, asked at once) after this instance's; a
// 503 naming the first member, in the members' order, that did not answer with a list.
std::variant<std::vector<ProductListFrom>, HttpResponse> gather_product_lists(
    const Active& active, const PartitionOwners& owners, const HttpRequest& request,
    const HttpResponse& local) {
  std::vector<ProductListFrom> lists(1);
  lists[0].address = active.config.self_address;
  if (!parse_json(local.body, &lists[0].list)) {
    return HttpResponse::error(500, "internal", "cannot read this instance's product list");
  }
  const std::vector<std::string> addresses = other_addresses(owners, active.config.self_address);
  std::vector<ForwardResult> results = send_requests(
      addresses, forwarded_copy(request, active, "GET", request.target), active.config.limits);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ForwardResult& result = results[i];
    std::string problem = result.error;
    if (result.ok() && result.response.status != 200) {
      problem = "HTTP " + std::to_string(result.response.status);
    }
    ProductListFrom& from = lists.emplace_back();
    from.address = addresses[i];
    if (problem.empty() && !parse_json(result.response.body, &from.list)) {
      problem = "an answer that is not a product list";
    }
    if (!problem.empty()) {
      if (!result.ok()) active.owners.invalidate();
      return unavailable(active, "member_unavailable",
                         "the product list needs every instance's products; the instance at " +
                             addresses[i] + " gave " + problem);
    }
  }
  return lists;
}

// "/v1/pain-points/{id}" of a curation path "/v1/pain-points/{id}/{operation}", still encoded.
std::string pain_point_target(const HttpRequest& request) {
  return request.path.substr(0, request.path.rfind('/'));
}

}  // namespace

bool is_forwarded(const HttpRequest& request) {
  return request.header(kForwardedHeader).has_value();
}

OwnerChoice choose_owner(const PartitionOwners& owners, std::string_view product_id,
                         std::string_view self_address) {
  OwnerChoice choice;
  choice.partition = owners.partition_of_product(product_id);
  const PartitionOwner* owner = owners.owner_of_partition(choice.partition);
  if (owner == nullptr) {
    choice.reason =
        "no member owns it (the group is " +
        (owners.group_state().empty() ? std::string("without state") : owners.group_state()) + ")";
  } else if (owner->http_address.empty()) {
    choice.reason = "its owner (member " + owner->member_id + ") advertises no API address";
  } else if (owner->http_address == self_address) {
    choice.kind = OwnerChoice::Kind::kLocal;
  } else {
    choice.kind = OwnerChoice::Kind::kForward;
    choice.address = owner->http_address;
  }
  return choice;
}

std::vector<std::string> other_addresses(const PartitionOwners& owners,
                                         std::string_view self_address) {
  std::vector<std::string> out = owners.addresses();
  std::erase(out, self_address);
  return out;
}

v1::ProductList merge_product_lists(
    std::span<const ProductListFrom> lists,
    const std::function<std::string(std::string_view product_id)>& owner_of) {
  std::map<std::string, const v1::ProductInfo*, std::less<>> chosen;
  for (const ProductListFrom& from : lists) {
    for (const v1::ProductInfo& info : from.list.products()) {
      auto [it, inserted] = chosen.emplace(info.product_id(), &info);
      if (!inserted && owner_of(info.product_id()) == from.address) it->second = &info;
    }
  }
  v1::ProductList merged;
  for (const auto& [product, info] : chosen) *merged.add_products() = *info;
  return merged;
}

RequestForwarding::RequestForwarding() = default;
RequestForwarding::~RequestForwarding() = default;

void RequestForwarding::enable(OwnerSource owners, ForwardingConfig config) {
  owned_ = std::make_unique<const Active>(Active{std::move(owners), std::move(config)});
  active_.store(owned_.get(), std::memory_order_release);
}

HttpHandler RequestForwarding::by_product(HttpHandler local) const {
  return [this, local = std::move(local)](const HttpRequest& request) {
    const Active* active = active_.load(std::memory_order_acquire);
    if (active == nullptr || is_forwarded(request)) return local(request);
    auto owners = current_owners(*active);
    if (auto* error = std::get_if<HttpResponse>(&owners)) return std::move(*error);
    return route_product(*active, *std::get<OwnersPtr>(owners), request.path_param("product"),
                         request, local);
  };
}

HttpHandler RequestForwarding::by_pain_point(HttpHandler local) const {
  return [this, local = std::move(local)](const HttpRequest& request) {
    const Active* active = active_.load(std::memory_order_acquire);
    if (active == nullptr || is_forwarded(request)) return local(request);
    HttpResponse here = local(request);
    if (here.status != 404) return here;
    auto owners = current_owners(*active);
    if (auto* error = std::get_if<HttpResponse>(&owners)) return std::move(*error);
    OthersAnswer others =
        ask_others(*active, *std::get<OwnersPtr>(owners), request, request.target);
    if (others.found) return std::move(*others.found);
    if (!others.failed.empty()) {
      return unavailable(*active, "member_unavailable",
                         "not here, and not every other instance answered: " + others.failed);
    }
    return here;
  };
}

HttpHandler RequestForwarding::product_list(HttpHandler local) const {
  return [this, local = std::move(local)](const HttpRequest& request) {
    const Active* active = active_.load(std::memory_order_acquire);
    if (active == nullptr || is_forwarded(request)) return local(request);
    auto owners = current_owners(*active);
    if (auto* error = std::get_if<HttpResponse>(&owners)) return std::move(*error);
    const PartitionOwners& by_partition = *std::get<OwnersPtr>(owners);
    HttpResponse here = local(request);
    if (here.status != 200 || other_addresses(by_partition, active->config.self_address).empty()) {
      return here;
    }
    auto lists = gather_product_lists(*active, by_partition, request, here);
    if (auto* error = std::get_if<HttpResponse>(&lists)) return std::move(*error);
    const v1::ProductList merged = merge_product_lists(
        std::get<std::vector<ProductListFrom>>(lists), [&by_partition](std::string_view product) {
          const PartitionOwner* owner = by_partition.owner_of_product(product);
          return owner != nullptr ? owner->http_address : std::string();
        });
    return json_message(200, merged);
  };
}

HttpHandler RequestForwarding::curation(
    std::function<std::optional<std::string>(std::string_view id)> local_product_of,
    HttpHandler local) const {
  return [this, local_product_of = std::move(local_product_of),
          local = std::move(local)](const HttpRequest& request) {
    const Active* active = active_.load(std::memory_order_acquire);
    if (active == nullptr || is_forwarded(request)) return local(request);
    auto owners = current_owners(*active);
    if (auto* error = std::get_if<HttpResponse>(&owners)) return std::move(*error);
    const PartitionOwners& by_partition = *std::get<OwnersPtr>(owners);
    std::optional<std::string> product = local_product_of(request.path_param("id"));
    if (!product) {
      OthersAnswer others = ask_others(*active, by_partition, request, pain_point_target(request));
      v1::PainPointSummary summary;
      if (others.found && parse_json(others.found->body, &summary)) {
        product = summary.product_id();
      } else if (!others.failed.empty()) {
        return unavailable(
            *active, "member_unavailable",
            "the pain point is not here, and not every other instance answered: " + others.failed);
      } else {
        return local(request);  // nobody has it: the local 404
      }
    }
    return route_product(*active, by_partition, *product, request, local);
  };
}

}  // namespace painpoint::service

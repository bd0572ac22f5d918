// Forwarding between instances (service/src/routing/forwarding.h): the owner choice, the merge of
// product lists, and RequestForwarding's wrappers against a second HttpServer on 127.0.0.1 that
// plays the other instance (the partition owners are a fixed group description here; on Apache
// Kafka tests/kafka/forwarding_real_test.py runs two serve processes).
#include "routing/forwarding.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_server.h"
#include "painpoint/ingest/partitioner.h"
#include "routing/forward_client.h"
#include "routing/partition_owners.h"

namespace painpoint::service {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kTopic = "painpoint.feedback-by-product";
constexpr std::int32_t kPartitions = 4;

ingest::GroupMember member(const std::string& id, const std::string& client_id,
                           std::vector<std::int32_t> partitions) {
  ingest::GroupMember m;
  m.member_id = id;
  m.client_id = client_id;
  for (std::int32_t p : partitions) m.assignment.push_back({std::string(kTopic), p});
  return m;
}

// Owners: `self` partition 0, `other` partitions 1 and 2, a member without an API address
// partition 3 (no partition is left unassigned unless `leave_three` says so).
std::shared_ptr<const PartitionOwners> owners_of(const std::string& self, const std::string& other,
                                                 bool leave_three = false) {
  ingest::GroupDescription group;
  group.group_id = "painpoint-aggregator";
  group.state = leave_three ? "PreparingRebalance" : "Stable";
  group.members.push_back(member("m-self", client_id_with_address(self), {0}));
  group.members.push_back(member("m-other", client_id_with_address(other), {1, 2}));
  if (!leave_three) group.members.push_back(member("m-tool", "some-tool", {3}));
  auto owners = PartitionOwners::from_group(group, kTopic, kPartitions);
  EXPECT_TRUE(owners.ok()) << owners.status().to_string();
  return std::make_shared<const PartitionOwners>(std::move(owners).value());
}

// A product id of each partition (the first "product-<n>" that hashes there).
std::string product_in(std::int32_t partition) {
  for (int n = 0;; ++n) {
    std::string id = "product-" + std::to_string(n);
    if (ingest::partition_for_key(id, kPartitions) == partition) return id;
  }
}

TEST(ChooseOwner, LocalForwardOrUnavailable) {
  const auto owners = owners_of("10.0.0.1:8080", "10.0.0.2:8080");
  OwnerChoice here = choose_owner(*owners, product_in(0), "10.0.0.1:8080");
  EXPECT_EQ(here.kind, OwnerChoice::Kind::kLocal);
  EXPECT_EQ(here.partition, 0);
  OwnerChoice there = choose_owner(*owners, product_in(2), "10.0.0.1:8080");
  EXPECT_EQ(there.kind, OwnerChoice::Kind::kForward);
  EXPECT_EQ(there.address, "10.0.0.2:8080");
  EXPECT_EQ(there.partition, 2);
  OwnerChoice no_api = choose_owner(*owners, product_in(3), "10.0.0.1:8080");
  EXPECT_EQ(no_api.kind, OwnerChoice::Kind::kUnavailable);
  EXPECT_NE(no_api.reason.find("m-tool"), std::string::npos) << no_api.reason;
  // Seen from the other instance, the roles swap.
  EXPECT_EQ(choose_owner(*owners, product_in(2), "10.0.0.2:8080").kind, OwnerChoice::Kind::kLocal);
  EXPECT_EQ(choose_owner(*owners, product_in(0), "10.0.0.2:8080").address, "10.0.0.1:8080");

  const auto rebalancing = owners_of("10.0.0.1:8080", "10.0.0.2:8080", true);
  OwnerChoice none = choose_owner(*rebalancing, product_in(3), "10.0.0.1:8080");
  EXPECT_EQ(none.kind, OwnerChoice::Kind::kUnavailable);
  EXPECT_NE(none.reason.find("PreparingRebalance"), std::string::npos) << none.reason;
}

TEST(ChooseOwner, OtherAddressesLeaveThisInstanceOut) {
  const auto owners = owners_of("10.0.0.1:8080", "10.0.0.2:8080");
  EXPECT_EQ(other_addresses(*owners, "10.0.0.1:8080"), std::vector<std::string>{"10.0.0.2:8080"});
  EXPECT_EQ(other_addresses(*owners, "10.0.0.2:8080"), std::vector<std::string>{"10.0.0.1:8080"});
}

v1::ProductInfo info(const std::string& id, std::int64_t events) {
  v1::ProductInfo p;
  p.set_product_id(id);
  p.set_event_count(events);
  return p;
}

TEST(MergeProductLists, OrderedByIdEachOnceFromItsOwner) {
  std::vector<ProductListFrom> lists(2);
  lists[0].address = "a:1";
  *lists[0].list.add_products() = info("mobile", 5);
  *lists[0].list.add_products() = info("web", 1);  // a stale copy: "b:1" owns web
  lists[1].address = "b:1";
  *lists[1].list.add_products() = info("billing", 3);
  *lists[1].list.add_products() = info("web", 9);
  *lists[1].list.add_products() = info("zeta", 2);
  const v1::ProductList merged = merge_product_lists(
      lists, [](std::string_view product) { return product == "web" ? "b:1" : "a:1"; });
  ASSERT_EQ(merged.products_size(), 4);
  EXPECT_EQ(merged.products(0).product_id(), "billing");
  EXPECT_EQ(merged.products(1).product_id(), "mobile");
  EXPECT_EQ(merged.products(2).product_id(), "web");
  EXPECT_EQ(merged.products(2).event_count(), 9);
  EXPECT_EQ(merged.products(3).product_id(), "zeta");
  // Without an owner's copy the first list's stays.
  const v1::ProductList unowned =
      merge_product_lists(lists, [](std::string_view) { return std::string(); });
  EXPECT_EQ(unowned.products(2).event_count(), 1);
}

TEST(SplitHostPort, AcceptsHostPortAndBracketedV6) {
  std::string host, port;
  ASSERT_TRUE(split_host_port("127.0.0.1:8080", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, "8080");
  ASSERT_TRUE(split_host_port("[::1]:9", &host, &port));
  EXPECT_EQ(host, "::1");
  for (const char* bad : {"host", "host:", ":80", "host:0", "host:70000", "::1:80", "[::1:80"}) {
    EXPECT_FALSE(split_host_port(bad, &host, &port)) << bad;
  }
}

// Another instance on 127.0.0.1: it answers every route from "its own store" and records what it
// was sent.
class OtherInstance {
 public:
  OtherInstance() {
    Router router;
    auto record = [this](const HttpRequest& r, std::string body) {
      std::lock_guard lock(mutex_);
      forwarded_by_ = std::string(r.header(kForwardedHeader).value_or("(none)"));
      authorization_ = std::string(r.header("Authorization").value_or("(none)"));
      requests_.fetch_add(1);
      return HttpResponse::json(200, std::move(body));
    };
    router.get("/v1/products/{product}/pain-points", [record](const HttpRequest& r) {
      return record(r, "{\"there\":\"" + std::string(r.path_param("product")) + "\",\"sort\":\"" +
                           std::string(r.query_param("sort").value_or("")) + "\"}");
    });
    router.get("/v1/pain-points/{id}", [record](const HttpRequest& r) {
      if (r.path_param("id") != "pp-there") return HttpResponse::error(404, "not_found", "no");
      return record(r, "{\"id\":\"pp-there\",\"productId\":\"" + product_in(1) + "\"}");
    });
    router.post("/v1/pain-points/{id}/rename", [record](const HttpRequest& r) {
      return record(
          r, "{\"renamed\":\"" + std::string(r.path_param("id")) + "\",\"body\":" + r.body + "}");
    });
    router.get("/v1/products", [record](const HttpRequest& r) {
      return record(r, R"({"products":[{"productId":"billing","eventCount":"3"}]})");
    });
    router.get("/slow", [](const HttpRequest&) {
      std::this_thread::sleep_for(1000ms);
      return HttpResponse::text(200, "late");
    });
    router.get("/big", [](const HttpRequest&) {
      return HttpResponse::text(200, std::string(64 * 1024, 'x'));
    });
    server_ = std::make_unique<HttpServer>(HttpServerConfig{}, std::move(router));
    server_->start();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  int requests() const { return requests_.load(); }
  // What the last recorded request carried (written on the server's io threads).
  std::string forwarded_by() const {
    std::lock_guard lock(mutex_);
    return forwarded_by_;
  }
  std::string authorization() const {
    std::lock_guard lock(mutex_);
    return authorization_;
  }

 private:
  mutable std::mutex mutex_;
  std::string forwarded_by_;
  std::string authorization_;
  std::atomic<int> requests_{0};
  std::unique_ptr<HttpServer> server_;
};

HttpRequest request(std::string method, std::string path, std::string query = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = path;
  r.target = query.empty() ? path : path + "?" + query;
  if (!query.empty()) r.query = *parse_query(query);
  r.headers.emplace("Authorization", "Bearer t0k");
  return r;
}

// This instance ("127.0.0.1:1", nothing listens there) with the other one owning partitions 1-2.
class ForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    owners_ = owners_of(std::string(kSelf), other_.address());
    ForwardingConfig config{std::string(kSelf), {}, std::chrono::seconds(2)};
    config.limits.response_timeout = 500ms;
    config.limits.max_response_bytes = 16 * 1024;
    forwarding_.enable(
        {[this]() -> ingest::Result<std::shared_ptr<const PartitionOwners>> { return owners_; },
         [this] { invalidations_.fetch_add(1); }},
        config);
  }
  static constexpr std::string_view kSelf = "127.0.0.1:1";
  OtherInstance other_;
  std::shared_ptr<const PartitionOwners> owners_;
  RequestForwarding forwarding_;
  std::atomic<int> invalidations_{0};
  std::atomic<int> local_calls_{0};
  HttpHandler local(int status, std::string body) {
    return [this, status, body](const HttpRequest&) {
      local_calls_.fetch_add(1);
      return status == 404 ? HttpResponse::error(404, "not_found", "not here")
                           : HttpResponse::json(status, body);
    };
  }
};

TEST_F(ForwardingTest, ProductRequestGoesToItsOwnerOnce) {
  const HttpHandler handler = forwarding_.by_product(local(200, "{\"here\":1}"));
  HttpRequest there = request("GET", "/v1/products/" + product_in(2) + "/pain-points", "sort=arr");
  there.path_params["product"] = product_in(2);
  const HttpResponse answer = handler(there);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "{\"there\":\"" + product_in(2) + "\",\"sort\":\"arr\"}");
  EXPECT_EQ(other_.forwarded_by(), kSelf);
  EXPECT_EQ(other_.authorization(), "Bearer t0k");
  EXPECT_EQ(local_calls_.load(), 0);

  HttpRequest here = request("GET", "/v1/products/" + product_in(0) + "/pain-points");
  here.path_params["product"] = product_in(0);
  EXPECT_EQ(handler(here).body, "{\"here\":1}");
  EXPECT_EQ(other_.requests(), 1);
}

TEST_F(ForwardingTest, ForwardedRequestIsAnsweredLocally) {
  const HttpHandler handler = forwarding_.by_product(local(404, ""));
  HttpRequest there = request("GET", "/v1/products/" + product_in(2) + "/pain-points");
  there.path_params["product"] = product_in(2);
  there.headers.emplace(std::string(kForwardedHeader), "127.0.0.1:7");
  EXPECT_EQ(handler(there).status, 404);
  EXPECT_EQ(local_calls_.load(), 1);
  EXPECT_EQ(other_.requests(), 0);
  // The other wrappers keep the guard too.
  EXPECT_EQ(forwarding_.by_pain_point(local(404, ""))(there).status, 404);
  EXPECT_EQ(forwarding_.product_list(local(200, "{}"))(there).body, "{}");
  EXPECT_EQ(other_.requests(), 0);
}

TEST_F(ForwardingTest, OwnerWithoutApiOrUnreachableIs503WithRetryAfter) {
  const HttpHandler handler = forwarding_.by_product(local(200, "{}"));
  HttpRequest no_api = request("GET", "/v1/products/x/pain-points");
  no_api.path_params["product"] = product_in(3);
  HttpResponse answer = handler(no_api);
  EXPECT_EQ(answer.status, 503);
  EXPECT_NE(answer.body.find("partition 3"), std::string::npos) << answer.body;
  ASSERT_EQ(answer.headers.size(), 1U);
  EXPECT_EQ(answer.headers[0], (std::pair<std::string, std::string>{"Retry-After", "2"}));

  // The owner's address refuses connections: 503 naming it, and the owners are read again.
  owners_ = owners_of(std::string(kSelf), "127.0.0.1:2");
  HttpRequest there = request("GET", "/v1/products/x/pain-points");
  there.path_params["product"] = product_in(1);
  answer = handler(there);
  EXPECT_EQ(answer.status, 503);
  EXPECT_NE(answer.body.find("127.0.0.1:2"), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("owner_unreachable"), std::string::npos) << answer.body;
  EXPECT_EQ(invalidations_.load(), 1);
}

TEST_F(ForwardingTest, PainPointNotHereIsAskedOfTheOthers) {
  HttpRequest r = request("GET", "/v1/pain-points/pp-there");
  r.path_params["id"] = "pp-there";
  const HttpResponse found = forwarding_.by_pain_point(local(404, ""))(r);
  EXPECT_EQ(found.status, 200);
  EXPECT_NE(found.body.find("pp-there"), std::string::npos);
  EXPECT_EQ(other_.forwarded_by(), kSelf);

  // Found here: nobody else is asked. Found nowhere: the local 404.
  EXPECT_EQ(forwarding_.by_pain_point(local(200, "{\"here\":1}"))(r).body, "{\"here\":1}");
  EXPECT_EQ(other_.requests(), 1);
  HttpRequest missing = request("GET", "/v1/pain-points/pp-nowhere");
  missing.path_params["id"] = "pp-nowhere";
  EXPECT_EQ(forwarding_.by_pain_point(local(404, ""))(missing).status, 404);
}

TEST_F(ForwardingTest, CurationGoesToTheOwnerOfThePainPointsProduct) {
  HttpRequest rename = request("POST", "/v1/pain-points/pp-there/rename");
  rename.path_params["id"] = "pp-there";
  rename.body = R"({"label":"new"})";
  const HttpHandler handler = forwarding_.curation(
      [](std::string_view id) -> std::optional<std::string> {
        if (id == "pp-here") return product_in(0);
        return std::nullopt;
      },
      local(200, "{\"renamed here\":1}"));
  const HttpResponse answer = handler(rename);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, R"({"renamed":"pp-there","body":{"label":"new"}})");
  EXPECT_EQ(local_calls_.load(), 0);

  HttpRequest here = request("POST", "/v1/pain-points/pp-here/rename");
  here.path_params["id"] = "pp-here";
  EXPECT_EQ(handler(here).body, "{\"renamed here\":1}");
}

TEST_F(ForwardingTest, ProductListMergesEveryMembersOwnList) {
  const HttpHandler handler = forwarding_.product_list(
      local(200, R"({"products":[{"productId":"mobile","eventCount":"5"}]})"));
  const HttpResponse answer = handler(request("GET", "/v1/products"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_NE(answer.body.find("\"billing\""), std::string::npos) << answer.body;
  EXPECT_LT(answer.body.find("\"billing\""), answer.body.find("\"mobile\"")) << answer.body;
  EXPECT_EQ(other_.forwarded_by(), kSelf);

  // A member that does not answer makes the whole list unavailable, not partial.
  owners_ = owners_of(std::string(kSelf), "127.0.0.1:2");
  const HttpResponse partial = handler(request("GET", "/v1/products"));
  EXPECT_EQ(partial.status, 503);
  EXPECT_NE(partial.body.find("member_unavailable"), std::string::npos) << partial.body;
}

TEST(ForwardClient, BoundsTheWaitAndTheBody) {
  OtherInstance other;
  ForwardLimits limits;
  limits.response_timeout = 300ms;
  limits.max_response_bytes = 16 * 1024;
  const auto started = std::chrono::steady_clock::now();
  const ForwardResult slow = send_request(other.address(), {"GET", "/slow", {}, {}}, limits);
  EXPECT_FALSE(slow.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 800ms) << "the deadline did not hold";
  const ForwardResult big = send_request(other.address(), {"GET", "/big", {}, {}}, limits);
  EXPECT_FALSE(big.ok());
  EXPECT_NE(big.error.find("response from"), std::string::npos) << big.error;
  // Refused for the limit, by its Content-Length (the text of Beast's http::error::body_limit).
  EXPECT_NE(big.error.find("body limit exceeded"), std::string::npos) << big.error;
  limits.max_response_bytes = 128 * 1024;
  EXPECT_EQ(send_request(other.address(), {"GET", "/big", {}, {}}, limits).response.body.size(),
            64U * 1024);
}

// Two instances whose /meet answers 200 only once both have a request in hand (a rendezvous):
// asked one after the other, the first would wait for the second until the client's deadline.
class Rendezvous {
 public:
  HttpResponse meet() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    changed_.notify_all();
    const bool met = changed_.wait_for(lock, 3s, [this] { return arrived_ >= 2; });
    return met ? HttpResponse::text(200, "met") : HttpResponse::text(504, "alone");
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
};

std::unique_ptr<HttpServer> meeting_server(Rendezvous& rendezvous) {
  Router router;
  router.get("/meet", [&rendezvous](const HttpRequest&) { return rendezvous.meet(); });
  auto server = std::make_unique<HttpServer>(HttpServerConfig{}, std::move(router));
  server->start();
  return server;
}

TEST(ForwardClient, AsksEveryInstanceAtOnceAndAnswersInTheirOrder) {
  Rendezvous rendezvous;
  const auto first = meeting_server(rendezvous);
  const auto second = meeting_server(rendezvous);
  ForwardLimits limits;
  limits.response_timeout = 2s;
  const std::vector<std::string> addresses = {
      "127.0.0.1:" + std::to_string(first->port()), "127.0.0.1:2", "no-port",
      "127.0.0.1:" + std::to_string(second->port())};
  const std::vector<ForwardResult> results =
      send_requests(addresses, {"GET", "/meet", {}, {}}, limits);
  ASSERT_EQ(results.size(), 4U);
  EXPECT_TRUE(results[0].ok()) << results[0].error;
  EXPECT_EQ(results[0].response.status, 200);
  EXPECT_EQ(results[0].response.body, "met");
  EXPECT_NE(results[1].error.find("connect 127.0.0.1:2"), std::string::npos) << results[1].error;
  EXPECT_NE(results[2].error.find("not an address"), std::string::npos) << results[2].error;
  EXPECT_TRUE(results[3].ok()) << results[3].error;
  EXPECT_EQ(results[3].response.body, "met");
}

}  // namespace
}  // namespace painpoint::service

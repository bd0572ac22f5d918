// The /v1 handlers against a real Store in a temporary directory and a fake FeedbackSink, so no
// Kafka is needed: dispatch goes through the Router exactly as the server's sessions do.
#include "api.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "painpoint/store/store.h"
#include "painpoint/v1/api.pb.h"
#include "painpoint/v1/feedback.pb.h"
#include "response_cache.h"

namespace painpoint::service {
namespace {

namespace fs = std::filesystem;

class FakeSink : public FeedbackSink {
 public:
  ingest::Status send(std::span<const FeedbackRecord> records, std::chrono::milliseconds) override {
    std::lock_guard lock(mutex);
    ++calls;
    if (fail) return ingest::Status::Error(ingest::KafkaErrc::kTimedOut, "no broker");
    sent.insert(sent.end(), records.begin(), records.end());
    return ingest::Status::Ok();
  }
  std::mutex mutex;
  int calls = 0;
  bool fail = false;
  std::vector<FeedbackRecord> sent;
};

v1::StoredEvent stored_event(const std::string& id, const std::string& product,
                             std::int64_t seconds) {
  v1::StoredEvent stored;
  v1::FeedbackEvent* e = stored.mutable_event();
  e->set_event_id(id);
  e->set_product_id(product);
  e->set_source(v1::SOURCE_SUPPORT);
  e->set_text("text of " + id);
  e->mutable_occurred_at()->set_seconds(seconds);
  return stored;
}

v1::PainPointSummary summary(const std::string& id, const std::string& product,
                             const std::string& merged_into = "") {
  v1::PainPointSummary s;
  s.set_id(id);
  s.set_product_id(product);
  s.set_status(merged_into.empty() ? v1::STATUS_ACTIVE : v1::STATUS_MERGED);
  s.set_merged_into(merged_into);
  s.set_version(1);
  return s;
}

template <typename Message>
Message parse(const HttpResponse& response) {
  Message message;
  auto s = google::protobuf::util::JsonStringToMessage(response.body, &message);
  EXPECT_TRUE(s.ok()) << response.body;
  return message;
}

std::string error_code(const HttpResponse& response) {
  const auto at = response.body.find("\"code\":\"");
  if (at == std::string::npos) return "<none>";
  const auto start = at + 8;
  return response.body.substr(start, response.body.find('"', start) - start);
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("painpoint-api-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(store::Store::open(dir_, {}, &store_).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void build_router(ApiAuth auth = {}) {
    router_ = Router();
    ApiConfig config;
    config.auth = std::move(auth);
    config.max_events_per_request = 5;
    add_api_routes(router_, *store_, &sink_, config);
  }

  HttpResponse call(std::string method, std::string target, std::string body = "",
                    std::string token = "") {
    HttpRequest request;
    request.method = std::move(method);
    request.target = target;
    const auto q = target.find('?');
    request.path = target.substr(0, q);
    if (q != std::string::npos) request.query = *parse_query(target.substr(q + 1));
    if (!token.empty()) request.headers.emplace("Authorization", "Bearer " + token);
    request.body = std::move(body);
    return router_.dispatch(request);
  }

  // Pain point A (events a1..a4) absorbed B (b1, b2); C (c1) is unrelated; all in product "p".
  void seed_merged() {
    store::CommitBatch batch;
    const std::vector<std::tuple<std::string, std::string, std::int64_t>> members = {
        {"a1", "pp-a", 1000}, {"a2", "pp-a", 3000}, {"a3", "pp-a", 3000}, {"a4", "pp-a", 5000},
        {"b1", "pp-b", 2000}, {"b2", "pp-b", 4000}, {"c1", "pp-c", 6000}};
    for (const auto& [event, pain_point, seconds] : members) {
      batch.events.push_back(stored_event(event, "p", seconds));
      batch.memberships.push_back({event, "p", pain_point});
    }
    batch.summaries = {summary("pp-a", "p"), summary("pp-b", "p", "pp-a"), summary("pp-c", "p")};
    ASSERT_TRUE(store_->commit(batch).ok());
  }

  std::vector<std::string> all_event_ids(const std::string& id, int limit) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0; page < 20; ++page) {
      auto response =
          call("GET", "/v1/pain-points/" + id + "/events?limit=" + std::to_string(limit) +
                          "&cursor=" + cursor);
      EXPECT_EQ(response.status, 200) << response.body;
      auto list = parse<v1::EventList>(response);
      EXPECT_LE(list.events_size(), limit);
      for (const auto& e : list.events()) ids.push_back(e.event_id());
      cursor = list.next_cursor();
      if (cursor.empty()) break;
    }
    return ids;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  FakeSink sink_;
  Router router_;
};

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_TRUE(constant_time_equals("secret", "secret"));
  EXPECT_FALSE(constant_time_equals("secret", "secreT"));
  EXPECT_FALSE(constant_time_equals("secret", "secret2"));
  EXPECT_FALSE(constant_time_equals("secret", ""));
  EXPECT_FALSE(constant_time_equals(std::string_view("a\0", 2), "a"));
}

TEST_F(ApiTest, EventsNewestFirstAcrossMergedIdsWithStablePages) {
  seed_merged();
  build_router();
  const std::vector<std::string> expected = {"a4", "b2", "a2", "a3", "b1", "a1"};
  EXPECT_EQ(all_event_ids("pp-a", 50), expected);
  for (int limit : {1, 2, 4}) EXPECT_EQ(all_event_ids("pp-a", limit), expected) << limit;
  // A merged id answers with its survivor's events.
  EXPECT_EQ(all_event_ids("pp-b", 3), expected);
  EXPECT_EQ(all_event_ids("pp-c", 10), std::vector<std::string>{"c1"});

  // A page boundary does not move when newer events arrive in between.
  auto first = parse<v1::EventList>(call("GET", "/v1/pain-points/pp-a/events?limit=2"));
  ASSERT_EQ(first.events_size(), 2);
  store::CommitBatch batch;
  batch.events.push_back(stored_event("a0", "p", 9000));
  batch.memberships.push_back({"a0", "p", "pp-a"});
  ASSERT_TRUE(store_->commit(batch).ok());
  auto second = parse<v1::EventList>(
      call("GET", "/v1/pain-points/pp-a/events?limit=10&cursor=" + first.next_cursor()));
  std::vector<std::string> rest;
  for (const auto& e : second.events()) rest.push_back(e.event_id());
  EXPECT_EQ(rest, (std::vector<std::string>{"a2", "a3", "b1", "a1"}));
  EXPECT_TRUE(second.next_cursor().empty());
}

TEST_F(ApiTest, MergedListsTheIdsWhoseChainEndsAtTheSurvivor) {
  seed_merged();
  store::CommitBatch batch;
  batch.summaries = {summary("pp-d", "p", "pp-b")};  // d -> b -> a
  ASSERT_TRUE(store_->commit(batch).ok());
  build_router();
  auto a = call("GET", "/v1/pain-points/pp-a/merged");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, R"({"id":"pp-a","ids":["pp-b","pp-d"]})");
  // A merged id answers for its survivor.
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-d/merged").body, a.body);
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-c/merged").body, R"({"id":"pp-c","ids":[]})");
  EXPECT_EQ(call("GET", "/v1/pain-points/nope/merged").status, 404);
}

// Descending by the sort's value, ties by id, for the two orders the board added.
TEST_F(ApiTest, SortsByAccountsAndArrAtRisk) {
  store::CommitBatch batch;
  const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> rows = {
      {"pp-1", 5, 100}, {"pp-2", 9, 100}, {"pp-3", 5, 700}, {"pp-4", 1, 0}};
  for (const auto& [id, accounts, arr] : rows) {
    v1::PainPointSummary s = summary(id, "p");
    s.set_account_count(accounts);
    s.set_arr_at_risk_cents(arr);
    batch.summaries.push_back(s);
  }
  ASSERT_TRUE(store_->commit(batch).ok());
  build_router();
  auto ids = [&](const std::string& sort) {
    std::vector<std::string> out;
    auto list = parse<v1::PainPointList>(call("GET", "/v1/products/p/pain-points?sort=" + sort));
    for (const auto& p : list.pain_points()) out.push_back(p.id());
    return out;
  };
  EXPECT_EQ(ids("accounts"), (std::vector<std::string>{"pp-2", "pp-1", "pp-3", "pp-4"}));
  EXPECT_EQ(ids("arr"), (std::vector<std::string>{"pp-3", "pp-1", "pp-2", "pp-4"}));
}

// The list is assembled from each summary's JSON, rendered once per distinct summary: the body
// must be what the JSON printer makes of the whole message, also after a summary changed.
TEST_F(ApiTest, PainPointListBodyIsThePrintersAndFollowsChanges) {
  auto rich = [](const std::string& id, std::int64_t version, const std::string& label) {
    v1::PainPointSummary s = summary(id, "p");
    s.set_version(version);
    s.set_label(label);
    s.add_keywords("card \"quoted\" \u00e9");
    v1::Exemplar* exemplar = s.add_exemplars();
    exemplar->set_event_id("e-" + id);
    exemplar->set_text("line\nbreak <b>");
    s.add_daily_counts(3);
    s.add_daily_counts(0);
    s.set_severity(0.125 * static_cast<double>(version));
    s.set_trend(-1.5);
    s.mutable_last_seen()->set_seconds(1'800'000'000);
    return s;
  };
  auto expect_printed = [&](const std::string& target, const std::vector<std::string>& ids,
                            const std::string& cursor) {
    v1::PainPointList list;
    for (const std::string& id : ids) {
      std::optional<v1::PainPointSummary> stored;
      ASSERT_TRUE(store_->get_summary(id, &stored).ok());
      ASSERT_TRUE(stored.has_value());
      *list.add_pain_points() = *stored;
    }
    list.set_next_cursor(cursor);
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    std::string printed;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(list, &printed, options).ok());
    auto response = call("GET", target);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, printed);
  };
  store::CommitBatch batch;
  batch.summaries = {rich("pp-1", 1, "first"), rich("pp-2", 2, "second"), rich("pp-3", 3, "third")};
  ASSERT_TRUE(store_->commit(batch).ok());
  build_router();
  expect_printed("/v1/products/p/pain-points", {"pp-3", "pp-2", "pp-1"}, "");
  expect_printed("/v1/products/p/pain-points?limit=2", {"pp-3", "pp-2"}, "2");
  expect_printed("/v1/products/nope/pain-points", {}, "");

  // Pages are kept until the product's summaries change; every change raises a summary's
  // version (here also its severity, which ties pp-3 and wins on the id).
  store::CommitBatch renamed;
  renamed.summaries = {rich("pp-2", 3, "renamed")};
  ASSERT_TRUE(store_->commit(renamed).ok());
  expect_printed("/v1/products/p/pain-points", {"pp-2", "pp-3", "pp-1"}, "");
  expect_printed("/v1/products/p/pain-points?limit=2", {"pp-2", "pp-3"}, "2");
  expect_printed("/v1/products/p/pain-points?limit=2&cursor=2", {"pp-1"}, "");
  // Another product's change leaves this product's pages as they are.
  store::CommitBatch other;
  other.summaries = {rich("pp-9", 1, "elsewhere")};
  other.summaries[0].set_product_id("q");
  ASSERT_TRUE(store_->commit(other).ok());
  expect_printed("/v1/products/p/pain-points", {"pp-2", "pp-3", "pp-1"}, "");
  expect_printed("/v1/products/q/pain-points", {"pp-9"}, "");
}

TEST(ResponseCache, ServesABodyOnlyAtTheVersionItWasRenderedAt) {
  ResponseCache cache(1'000);
  const DataVersion older{1, 10, 100};
  const DataVersion newer{1, 11, 100};
  EXPECT_EQ(cache.find("k", older), nullptr);
  auto put = cache.put("k", older, "body one");
  EXPECT_EQ(put->body, "body one");
  EXPECT_EQ(put->etag, etag_of("body one"));
  ASSERT_NE(cache.find("k", older), nullptr);
  EXPECT_EQ(cache.find("k", older)->body, "body one");
  EXPECT_EQ(cache.find("k", newer), nullptr);
  EXPECT_EQ(cache.find("other", older), nullptr);
  cache.put("k", newer, "body two");
  EXPECT_EQ(cache.find("k", older), nullptr);
  EXPECT_EQ(cache.find("k", newer)->body, "body two");
  EXPECT_NE(etag_of("body one"), etag_of("body two"));
  // Past its byte budget the cache starts over; a body larger than the budget is not kept.
  cache.put("big", older, std::string(990, 'x'));
  EXPECT_EQ(cache.find("k", newer), nullptr);
  EXPECT_NE(cache.find("big", older), nullptr);
  EXPECT_EQ(cache.put("huge", older, std::string(2'000, 'y'))->body.size(), 2'000u);
  EXPECT_EQ(cache.find("huge", older), nullptr);
}

std::string header_of(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

TEST_F(ApiTest, ReadsAnswer304ToTheirOwnEtagUntilTheBodyChanges) {
  seed_merged();
  build_router();
  auto first = call("GET", "/v1/products");
  ASSERT_EQ(first.status, 200);
  const std::string etag = header_of(first, "ETag");
  ASSERT_EQ(etag.size(), 18u) << etag;  // a quoted 16-digit hex digest
  EXPECT_EQ(header_of(first, "Cache-Control"), "private, no-cache");

  auto again_request = [&](const std::string& if_none_match) {
    HttpRequest request;
    request.method = "GET";
    request.target = request.path = "/v1/products";
    request.headers.emplace("If-None-Match", if_none_match);
    return router_.dispatch(request);
  };
  auto same = again_request(etag);
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(header_of(same, "ETag"), etag);
  EXPECT_EQ(again_request("W/" + etag + ", \"other\"").status, 304);
  EXPECT_EQ(again_request("\"0000000000000000\"").status, 200);

  // New events change the product's counts, the body and so the validator.
  store::CommitBatch batch;
  batch.events.push_back(stored_event("a9", "p", 9000));
  batch.memberships.push_back({"a9", "p", "pp-a"});
  ASSERT_TRUE(store_->commit(batch).ok());
  auto changed = again_request(etag);
  EXPECT_EQ(changed.status, 200);
  EXPECT_NE(header_of(changed, "ETag"), etag);

  // A rename changes no count, only a summary's version: the list still changes (the board's
  // live poll watches it).
  const std::string before_rename = header_of(changed, "ETag");
  EXPECT_EQ(parse<v1::ProductList>(changed).products(0).changes(), 3);
  store::CommitBatch rename;
  v1::PainPointSummary renamed = summary("pp-c", "p");
  renamed.set_version(2);
  renamed.set_label("renamed by a person");
  rename.summaries = {renamed};
  ASSERT_TRUE(store_->commit(rename).ok());
  auto after_rename = again_request(before_rename);
  EXPECT_EQ(after_rename.status, 200);
  EXPECT_EQ(parse<v1::ProductList>(after_rename).products(0).changes(), 4);
  // Errors carry no validator.
  EXPECT_EQ(header_of(call("GET", "/v1/pain-points/nope"), "ETag"), "");
}

TEST_F(ApiTest, ReassignedEventMovesToItsNewPainPoint) {
  seed_merged();
  build_router();
  store::CommitBatch batch;
  batch.memberships.push_back({"a2", "p", "pp-c"});
  ASSERT_TRUE(store_->commit(batch).ok());
  EXPECT_EQ(all_event_ids("pp-c", 10), (std::vector<std::string>{"c1", "a2"}));
  EXPECT_EQ(all_event_ids("pp-a", 10), (std::vector<std::string>{"a4", "b2", "a3", "b1", "a1"}));
}

TEST_F(ApiTest, EventsErrors) {
  seed_merged();
  build_router();
  EXPECT_EQ(call("GET", "/v1/pain-points/nope/events").status, 404);
  auto bad_cursor = call("GET", "/v1/pain-points/pp-a/events?cursor=xyz");
  EXPECT_EQ(bad_cursor.status, 400);
  EXPECT_EQ(error_code(bad_cursor), "bad_cursor");
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-a/events?limit=0").status, 400);
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-a/events?limit=501").status, 400);
  EXPECT_EQ(call("POST", "/v1/pain-points/pp-a/events").status, 405);
  // A cursor past everything is an empty last page, not an error.
  auto empty = call("GET", "/v1/pain-points/pp-a/events?cursor=ffffffffffffffff");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(parse<v1::EventList>(empty).events_size(), 0);
}

TEST_F(ApiTest, ReadTokenGuardsGetsAndWriteTokenGuardsPosts) {
  seed_merged();
  build_router({"W", "R"});
  auto missing = call("GET", "/v1/products");
  EXPECT_EQ(missing.status, 401);
  ASSERT_EQ(missing.headers.size(), 1U);
  EXPECT_EQ(missing.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(missing.headers[0].second.rfind("Bearer", 0), 0U);
  EXPECT_EQ(call("GET", "/v1/products", "", "wrong").status, 401);
  EXPECT_EQ(call("GET", "/v1/products", "", "R").status, 200);
  EXPECT_EQ(call("GET", "/v1/products", "", "W").status, 200);
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-a", "", "R").status, 200);
  EXPECT_EQ(call("GET", "/v1/pain-points/pp-a/events").status, 401);

  const std::string event =
      R"({"eventId":"x1","productId":"p","text":"hi","source":"SOURCE_SALES"})";
  EXPECT_EQ(call("POST", "/v1/feedback", event).status, 401);
  EXPECT_EQ(call("POST", "/v1/feedback", event, "R").status, 401);
  EXPECT_EQ(call("POST", "/v1/feedback", event, "W").status, 202);
  EXPECT_EQ(sink_.sent.size(), 1U);

  // Only a read token: it guards writes too.
  build_router({"", "R"});
  EXPECT_EQ(call("POST", "/v1/feedback", event).status, 401);
  EXPECT_EQ(call("POST", "/v1/feedback", event, "R").status, 202);
  // Only a write token: reads are open.
  build_router({"W", ""});
  EXPECT_EQ(call("GET", "/v1/products").status, 200);
  EXPECT_EQ(call("POST", "/v1/feedback", event).status, 401);
}

TEST_F(ApiTest, FeedbackIsValidatedAndProducedToTheTopicOfItsSource) {
  build_router();
  auto one = call("POST", "/v1/feedback",
                  R"({"eventId":"e1","productId":"mobile","text":"  call me at jane@example.com ",)"
                  R"("source":"SOURCE_CUSTOMER"})");
  ASSERT_EQ(one.status, 202) << one.body;
  EXPECT_EQ(one.body, R"({"accepted":["e1"]})");
  ASSERT_EQ(sink_.sent.size(), 1U);
  EXPECT_EQ(sink_.sent[0].topic, "feedback.customer");
  EXPECT_EQ(sink_.sent[0].key, "mobile");
  v1::FeedbackEvent produced;
  ASSERT_TRUE(produced.ParseFromString(sink_.sent[0].payload));
  EXPECT_EQ(produced.text(), "call me at <email>");  // normalized before it reaches Kafka
  EXPECT_TRUE(produced.has_occurred_at());

  // An array; ?source= fills the events that do not say; strings may hold brackets and commas.
  auto many = call("POST", "/v1/feedback?source=support",
                   R"( [ {"eventId":"e2","productId":"mobile","text":"a [b], {c}\" ]"},)"
                   R"(  {"eventId":"e3","productId":"web","text":"x","source":"SOURCE_SALES"} ] )");
  ASSERT_EQ(many.status, 202) << many.body;
  EXPECT_EQ(many.body, R"({"accepted":["e2","e3"]})");
  ASSERT_EQ(sink_.sent.size(), 3U);
  EXPECT_EQ(sink_.sent[1].topic, "feedback.support");
  EXPECT_EQ(sink_.sent[2].topic, "feedback.sales");
  EXPECT_EQ(sink_.sent[2].key, "web");
}

TEST_F(ApiTest, FeedbackErrorsRejectTheWholeRequest) {
  build_router();
  struct Case {
    std::string target, body;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"/v1/feedback", "", 400, "bad_json"},
      {"/v1/feedback", "nope", 400, "bad_json"},
      {"/v1/feedback", "[", 400, "bad_json"},
      {"/v1/feedback", "[{}", 400, "bad_json"},
      {"/v1/feedback", "[{},]", 400, "bad_json"},
      {"/v1/feedback", "[{\"a\":\"]\"}]]", 400, "bad_json"},
      {"/v1/feedback", "[]", 400, "no_events"},
      {"/v1/feedback", R"({"eventId":"e1","bogus":1})", 400, "bad_json"},
      {"/v1/feedback", "[1]", 400, "bad_json"},
      {"/v1/feedback?source=email", "{}", 400, "bad_source"},
      {"/v1/feedback", R"({"eventId":"e1","productId":"p","text":"t"})", 422, "missing_source"},
      {"/v1/feedback?source=sales", R"({"productId":"p","text":"t"})", 422, "missing_event_id"},
      {"/v1/feedback?source=sales",
       R"([{"eventId":"ok","productId":"p","text":"t"},{"eventId":"e2","productId":"p","text":" "}])",
       422, "missing_text"},
      {"/v1/feedback?source=sales", R"({"eventId":"e","productId":"p q","text":"t"})", 422,
       "bad_product_id"},
      {"/v1/feedback?source=sales", "[{},{},{},{},{},{}]", 413, "too_many_events"},
  };
  for (const Case& c : cases) {
    auto response = call("POST", c.target, c.body);
    EXPECT_EQ(response.status, c.status) << c.body << " -> " << response.body;
    EXPECT_EQ(error_code(response), c.code) << c.body;
    EXPECT_EQ(response.content_type.rfind("application/json", 0), 0U);
  }
  EXPECT_EQ(sink_.calls, 0);

  sink_.fail = true;
  auto unavailable =
      call("POST", "/v1/feedback?source=sales", R"({"eventId":"e","productId":"p","text":"t"})");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(error_code(unavailable), "kafka_unavailable");
}

TEST_F(ApiTest, OversizeBodyIs413BeforeAnyHandler) {
  build_router({"W", ""});
  HttpServerConfig config;
  config.body_limit_bytes = 1024;
  const std::string body(2048, 'x');
  const std::string request =
      "POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  auto response = handle_request_bytes(request, config, router_);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(sink_.calls, 0);
}

}  // namespace
}  // namespace painpoint::service

// The connectors (POST /v1/connectors/{system}): the HMAC primitives against published test
// vectors, each system's signature scheme, each payload mapping on the fixtures under
// tests/fixtures/connectors (written after the vendors' documented shapes), and the route end to
// end through the Router with a fake FeedbackSink.
#include "connectors/connectors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "api.h"
#include "config_file.h"
#include "connectors/signature.h"
#include "http_server.h"
#include "painpoint/base/hex.h"
#include "painpoint/v1/feedback.pb.h"

namespace painpoint::service {
namespace {

class FakeSink : public FeedbackSink {
 public:
  ingest::Status send(std::span<const FeedbackRecord> records, std::chrono::milliseconds) override {
    std::lock_guard lock(mutex);
    sent.insert(sent.end(), records.begin(), records.end());
    return ingest::Status::Ok();
  }
  std::mutex mutex;
  std::vector<FeedbackRecord> sent;
};

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(PAINPOINT_FIXTURES_DIR) + "/connectors/" + name);
  EXPECT_TRUE(in) << name;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string error_code(const HttpResponse& response) {
  const auto at = response.body.find("\"code\":\"");
  if (at == std::string::npos) return "<none>";
  const auto start = at + 8;
  return response.body.substr(start, response.body.find('"', start) - start);
}

std::string unix_seconds(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

constexpr std::string_view kSecret = "s3cr3t-for-tests";

// Signs `request` (its body already set) the way `system` does.
void sign(ConnectorSystem system, HttpRequest& request,
          std::chrono::system_clock::time_point when = std::chrono::system_clock::now()) {
  switch (system) {
    case ConnectorSystem::kZendesk: {
      // Zendesk sends an RFC 3339 timestamp.
      const std::time_t t = std::chrono::system_clock::to_time_t(when);
      char stamp[32];
      std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
      request.headers.emplace("X-Zendesk-Webhook-Signature-Timestamp", stamp);
      request.headers.emplace("X-Zendesk-Webhook-Signature",
                              base64_encode(hmac_sha256(kSecret, stamp + request.body)));
      break;
    }
    case ConnectorSystem::kIntercom:
      request.headers.emplace("X-Hub-Signature",
                              "sha1=" + base::hex_encode(hmac_sha1(kSecret, request.body)));
      break;
    case ConnectorSystem::kJira:
      request.headers.emplace("X-Hub-Signature",
                              "sha256=" + base::hex_encode(hmac_sha256(kSecret, request.body)));
      break;
    case ConnectorSystem::kGeneric: {
      const std::string stamp = unix_seconds(when);
      request.headers.emplace("X-Painpoint-Timestamp", stamp);
      request.headers.emplace(
          "X-Painpoint-Signature",
          "sha256=" + base::hex_encode(hmac_sha256(kSecret, stamp + "." + request.body)));
      break;
    }
  }
}

TEST(ConnectorSignature, HmacMatchesPublishedTestVectors) {
  // RFC 4231 test case 2 and RFC 2202 test case 2 (key "Jefe").
  EXPECT_EQ(base::hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(base::hex_encode(hmac_sha1("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  // RFC 4648 section 10.
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

class ConnectorSchemes : public ::testing::TestWithParam<ConnectorSystem> {};

TEST_P(ConnectorSchemes, AcceptsItsOwnSignatureOnly) {
  const ConnectorSystem system = GetParam();
  const auto now = std::chrono::system_clock::now();
  const std::chrono::seconds skew{300};
  HttpRequest good;
  good.body = "{\"a\":1}";
  sign(system, good, now);
  EXPECT_TRUE(verify_signature(system, good, kSecret, skew, now).ok());

  HttpRequest tampered = good;
  tampered.body = "{\"a\":2}";
  EXPECT_EQ(verify_signature(system, tampered, kSecret, skew, now).code,
            ConnectorErrc::kBadSignature);
  EXPECT_EQ(verify_signature(system, good, "another secret", skew, now).code,
            ConnectorErrc::kBadSignature);
  HttpRequest unsigned_request;
  unsigned_request.body = good.body;
  EXPECT_EQ(verify_signature(system, unsigned_request, kSecret, skew, now).code,
            ConnectorErrc::kBadSignature);
}

INSTANTIATE_TEST_SUITE_P(AllSystems, ConnectorSchemes,
                         ::testing::Values(ConnectorSystem::kZendesk, ConnectorSystem::kIntercom,
                                           ConnectorSystem::kJira, ConnectorSystem::kGeneric),
                         [](const auto& param_info) {
                           return std::string(system_name(param_info.param));
                         });

TEST(ConnectorSignature, TimestampedSchemesRefuseOldAndFutureTimestamps) {
  const auto now = std::chrono::system_clock::now();
  const std::chrono::seconds skew{300};
  for (ConnectorSystem system : {ConnectorSystem::kZendesk, ConnectorSystem::kGeneric}) {
    for (auto offset : {std::chrono::seconds(-301), std::chrono::seconds(301)}) {
      HttpRequest request;
      request.body = "{}";
      sign(system, request, now + offset);  // correctly signed, but at the wrong time
      EXPECT_EQ(verify_signature(system, request, kSecret, skew, now).code,
                ConnectorErrc::kStaleTimestamp)
          << system_name(system) << " " << offset.count();
    }
    HttpRequest recent;
    recent.body = "{}";
    sign(system, recent, now - std::chrono::seconds(299));
    EXPECT_TRUE(verify_signature(system, recent, kSecret, skew, now).ok()) << system_name(system);
  }
}

ConnectorConfig with_products(std::map<std::string, std::string, std::less<>> product_by,
                              std::string url_base = "") {
  ConnectorConfig c;
  c.product_by = std::move(product_by);
  c.default_product = "unsorted";
  c.url_base = std::move(url_base);
  return c;
}

MappedPayload map_fixture(ConnectorSystem system, const std::string& name,
                          const ConnectorConfig& config) {
  MappedPayload mapped;
  ConnectorStatus s = map_payload(system, fixture(name), config, &mapped);
  EXPECT_TRUE(s.ok()) << name << ": " << s.message;
  EXPECT_TRUE(mapped.ignored.empty()) << mapped.ignored;
  Connectors connectors;
  connectors.arr_by_account["8447346622462"] = 990'000;
  resolve_product_and_arr({config, "k"}, connectors, &mapped);
  return mapped;
}

TEST(ConnectorPayloads, ZendeskTicketCreatedAndCommentAdded) {
  const auto config =
      with_products({{"brand.8447346621310", "mobile-app"}, {"tag.billing", "billing"}},
                    "https://acme.zendesk.com");
  const auto ticket = map_fixture(ConnectorSystem::kZendesk, "zendesk_ticket_created.json", config);
  EXPECT_EQ(ticket.event.event_id(), "zendesk:ticket:5158");
  EXPECT_EQ(ticket.event.text(),
            "The mobile app logs me out every time I switch to another app and back.");
  EXPECT_EQ(ticket.event.product_id(), "mobile-app");  // by brand: no tag matched
  EXPECT_EQ(ticket.event.account_id(), "8447346622462");
  EXPECT_EQ(ticket.event.account_arr_cents(), 990'000);  // from the accounts file
  EXPECT_EQ(ticket.event.channel(), "web_form");
  EXPECT_EQ(ticket.event.external_url(), "https://acme.zendesk.com/agent/tickets/5158");
  EXPECT_EQ(ticket.event.occurred_at().seconds(), 1796119927);
  EXPECT_EQ(ticket.event.source(), v1::SOURCE_SUPPORT);

  const auto comment = map_fixture(ConnectorSystem::kZendesk, "zendesk_comment_added.json", config);
  EXPECT_EQ(comment.event.event_id(), "zendesk:comment:9012345678901");
  EXPECT_EQ(comment.event.text(),
            "Still happening after the update, and now it also forgets my language setting.");
  EXPECT_EQ(comment.event.external_url(), "https://acme.zendesk.com/agent/tickets/5158");

  // A tag mapping is more specific than the brand's.
  const auto by_tag = map_fixture(
      ConnectorSystem::kZendesk, "zendesk_ticket_created.json",
      with_products({{"brand.8447346621310", "mobile-app"}, {"tag.login", "identity"}}));
  EXPECT_EQ(by_tag.event.product_id(), "identity");
  EXPECT_EQ(by_tag.event.external_url(), "");  // no url_base: no link
}

TEST(ConnectorPayloads, ZendeskAgentCommentsAndOtherEventTypesAreIgnored) {
  std::string body = fixture("zendesk_comment_added.json");
  body.replace(body.find("\"is_staff\": false"), 17, "\"is_staff\": true");
  MappedPayload mapped;
  ASSERT_TRUE(map_payload(ConnectorSystem::kZendesk, body, {}, &mapped).ok());
  EXPECT_EQ(mapped.ignored, "a comment by an agent");
  MappedPayload status_change;
  ASSERT_TRUE(map_payload(ConnectorSystem::kZendesk,
                          R"({"type":"zen:event-type:ticket.status_changed","detail":{"id":"1"}})",
                          {}, &status_change)
                  .ok());
  EXPECT_FALSE(status_change.ignored.empty());
}

TEST(ConnectorPayloads, IntercomConversationCreatedAndUserReplied) {
  const auto config = with_products({{"team.5017691", "reporting"}});
  const auto created =
      map_fixture(ConnectorSystem::kIntercom, "intercom_conversation_created.json", config);
  EXPECT_EQ(created.event.event_id(), "intercom:conversation:147");
  EXPECT_EQ(created.event.text(), "Exporting a report to PDF hangs at 99% & never finishes.");
  EXPECT_EQ(created.event.product_id(), "reporting");
  EXPECT_EQ(created.event.account_id(), "acct-42");
  EXPECT_EQ(created.event.occurred_at().seconds(), 1796119927);
  EXPECT_EQ(created.event.external_url(),
            "https://app.intercom.com/a/apps/abc123de/conversations/147");

  const auto replied =
      map_fixture(ConnectorSystem::kIntercom, "intercom_user_replied.json", config);
  // The customer's part, not the agent's before it.
  EXPECT_EQ(replied.event.event_id(), "intercom:part:7002");
  EXPECT_EQ(replied.event.text(), "It is report 88. Excel export works, only  PDF  hangs.");
  EXPECT_EQ(replied.event.occurred_at().seconds(), 1796123527);
}

TEST(ConnectorPayloads, JiraIssueCreatedAndCommentCreated) {
  const auto config = with_products({{"project.SD", "billing"}});
  const auto issue = map_fixture(ConnectorSystem::kJira, "jira_issue_created.json", config);
  EXPECT_EQ(issue.event.event_id(), "jira:issue:10001");
  EXPECT_EQ(issue.event.text(),
            "Our invoices for the EU entity show USD instead of EUR since last week.");
  EXPECT_EQ(issue.event.product_id(), "billing");
  EXPECT_EQ(issue.event.external_url(), "https://acme.atlassian.net/browse/SD-17");
  EXPECT_EQ(issue.event.occurred_at().seconds(), 1796119927);
  EXPECT_EQ(issue.event.occurred_at().nanos(), 123'000'000);
  EXPECT_EQ(issue.event.account_id(), "5b10a2844c20165700ede21g");

  const auto comment = map_fixture(ConnectorSystem::kJira, "jira_comment_created.json", config);
  EXPECT_EQ(comment.event.event_id(), "jira:comment:10050");
  EXPECT_EQ(comment.event.text(),
            "Same on the credit notes: the currency symbol is wrong there too.");
  EXPECT_EQ(comment.event.external_url(), "https://acme.atlassian.net/browse/SD-17");
}

TEST(ConnectorPayloads, GenericFollowsTheConfiguredPointers) {
  ConnectorConfig config;
  config.default_product = "unsorted";
  config.pointers = {{"id", "/response/id"},
                     {"text", "/response/answer"},
                     {"product", "/app"},
                     {"account", "/customer/account"},
                     {"arr", "/customer/arr_cents"},
                     {"time", "/response/submitted_at"},
                     {"url", "/response/link"}};
  const auto mapped = map_fixture(ConnectorSystem::kGeneric, "generic_survey.json", config);
  EXPECT_EQ(mapped.event.event_id(), "generic:r-9931");
  EXPECT_EQ(mapped.event.text(), "Search results ignore the date filter I set.");
  EXPECT_EQ(mapped.event.product_id(), "web-app");
  EXPECT_EQ(mapped.event.account_id(), "acct-7");
  EXPECT_EQ(mapped.event.account_arr_cents(), 1'250'000);
  EXPECT_EQ(mapped.event.external_url(), "https://surveys.example.com/responses/r-9931");
  EXPECT_EQ(mapped.event.occurred_at().seconds(), 1796117400);

  config.pointers.erase("product");
  EXPECT_EQ(
      map_fixture(ConnectorSystem::kGeneric, "generic_survey.json", config).event.product_id(),
      "unsorted");
}

TEST(ConnectorPayloads, MalformedPayloadsSayWhy) {
  ConnectorConfig generic;
  generic.pointers = {{"id", "/id"}, {"text", "/text"}, {"arr", "/arr"}};
  struct Case {
    ConnectorSystem system;
    std::string body;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {ConnectorSystem::kZendesk, "{not json", "not JSON"},
      {ConnectorSystem::kZendesk, "[1,2]", "not a JSON object"},
      {ConnectorSystem::kZendesk, R"({"type":"zen:event-type:ticket.created","detail":{}})",
       "detail.id"},
      {ConnectorSystem::kZendesk,
       R"({"type":"zen:event-type:ticket.created","detail":{"id":"1","subject":"s"},"time":"yesterday"})",
       "RFC 3339"},
      {ConnectorSystem::kIntercom,
       R"({"topic":"conversation.user.replied","data":{"item":{"id":"1"}}})",
       "no conversation part by the customer"},
      {ConnectorSystem::kJira,
       R"({"webhookEvent":"comment_created","issue":{"id":"1","key":"K-1"}})", "comment.id"},
      {ConnectorSystem::kGeneric, R"({"text":"t"})", "no id at /id"},
      {ConnectorSystem::kGeneric, R"({"id":"1","text":"t","arr":"lots"})", "whole number of cents"},
  };
  for (const Case& c : cases) {
    MappedPayload mapped;
    ConnectorStatus s = map_payload(c.system, c.body, generic, &mapped);
    EXPECT_EQ(s.code, ConnectorErrc::kMalformed) << c.body;
    EXPECT_NE(s.message.find(c.reason), std::string::npos) << c.body << " -> " << s.message;
  }
}

TEST(ConnectorConfigKeys, ParsedFromTheServiceConfigFile) {
  std::istringstream in(
      "connectors.zendesk.secret_file = /run/secrets/zendesk\n"
      "connectors.zendesk.default_product = support-misc\n"
      "connectors.zendesk.url_base = https://acme.zendesk.com/\n"
      "connectors.zendesk.product.brand.360001 = mobile-app\n"
      "connectors.generic.field.id = /response/id\n"
      "connectors.max_timestamp_skew_s = 120\n");
  auto loaded = parse_service_config(in);
  ASSERT_TRUE(loaded.config) << loaded.error;
  const ConnectorsConfig& c = loaded.config->connectors;
  const ConnectorConfig& zendesk = c.systems.at(ConnectorSystem::kZendesk);
  EXPECT_EQ(zendesk.secret_file, "/run/secrets/zendesk");
  EXPECT_EQ(zendesk.default_product, "support-misc");
  EXPECT_EQ(zendesk.url_base, "https://acme.zendesk.com");
  EXPECT_EQ(zendesk.product_by.at("brand.360001"), "mobile-app");
  EXPECT_EQ(c.systems.at(ConnectorSystem::kGeneric).pointers.at("id"), "/response/id");
  EXPECT_EQ(c.max_timestamp_skew, std::chrono::seconds(120));

  for (const char* bad :
       {"connectors.salesforce.secret_file = x\n",
        "connectors.zendesk.secret = inline-secrets-are-refused\n",
        "connectors.generic.field.id = response/id\n", "connectors.intercom.field.id = /id\n"}) {
    std::istringstream bad_in(bad);
    EXPECT_FALSE(parse_service_config(bad_in).config) << bad;
  }
}

class ConnectorRouteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConnectorConfig zendesk =
        with_products({{"brand.8447346621310", "mobile-app"}}, "https://acme.zendesk.com");
    connectors_.enabled[ConnectorSystem::kZendesk] = {zendesk, std::string(kSecret)};
    connectors_.enabled[ConnectorSystem::kJira] = {with_products({}), std::string(kSecret)};
    add_connector_routes(router_, connectors_, &sink_, ApiConfig{});
  }

  HttpResponse post(const std::string& system, const std::string& body, bool signed_ = true,
                    std::chrono::system_clock::time_point when = std::chrono::system_clock::now()) {
    HttpRequest request;
    request.method = "POST";
    request.path = request.target = "/v1/connectors/" + system;
    request.body = body;
    if (auto parsed = parse_system(system); parsed && signed_) sign(*parsed, request, when);
    return router_.dispatch(request);
  }

  Connectors connectors_;
  FakeSink sink_;
  Router router_;
};

TEST_F(ConnectorRouteTest, ValidWebhookIsProducedWithTheMappedFields) {
  const HttpResponse response = post("zendesk", fixture("zendesk_ticket_created.json"));
  ASSERT_EQ(response.status, 202) << response.body;
  EXPECT_NE(response.body.find("zendesk:ticket:5158"), std::string::npos) << response.body;
  ASSERT_EQ(sink_.sent.size(), 1u);
  EXPECT_EQ(sink_.sent[0].topic, "feedback.support");
  EXPECT_EQ(sink_.sent[0].key, "mobile-app");
  v1::FeedbackEvent event;
  ASSERT_TRUE(event.ParseFromString(sink_.sent[0].payload));
  EXPECT_EQ(event.event_id(), "zendesk:ticket:5158");
  EXPECT_EQ(event.product_id(), "mobile-app");
  EXPECT_EQ(event.external_url(), "https://acme.zendesk.com/agent/tickets/5158");
  EXPECT_EQ(event.attributes().at("connector"), "zendesk");
}

TEST_F(ConnectorRouteTest, BadSignatureOldTimestampAndMalformedProduceNothing) {
  const std::string body = fixture("zendesk_ticket_created.json");
  HttpResponse unsigned_response = post("zendesk", body, /*signed_=*/false);
  EXPECT_EQ(unsigned_response.status, 401);
  EXPECT_EQ(error_code(unsigned_response), "bad_signature");
  HttpResponse old =
      post("zendesk", body, true, std::chrono::system_clock::now() - std::chrono::minutes(6));
  EXPECT_EQ(old.status, 401);
  EXPECT_EQ(error_code(old), "stale_timestamp");
  HttpResponse malformed = post("jira", R"({"webhookEvent":"jira:issue_created","issue":{}})");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(error_code(malformed), "bad_payload");
  EXPECT_NE(malformed.body.find("issue.id"), std::string::npos) << malformed.body;
  // Mapped, but the validator refuses it (an empty text after normalization): 422, not produced.
  HttpResponse invalid =
      post("jira", R"({"webhookEvent":"comment_created","issue":{"id":"1","key":"K-1"},)"
                   R"("comment":{"id":"5","body":"   "}})");
  EXPECT_EQ(invalid.status, 422) << invalid.body;
  EXPECT_TRUE(sink_.sent.empty());
}

TEST_F(ConnectorRouteTest, UnconfiguredAndUnknownSystemsAre404AndIgnoredEventsAre202) {
  EXPECT_EQ(post("intercom", fixture("intercom_conversation_created.json")).status, 404);
  EXPECT_EQ(post("salesforce", "{}", false).status, 404);
  HttpResponse ignored = post("jira", R"({"webhookEvent":"jira:issue_deleted"})");
  EXPECT_EQ(ignored.status, 202) << ignored.body;
  EXPECT_NE(ignored.body.find("ignored"), std::string::npos);
  EXPECT_TRUE(sink_.sent.empty());
}

}  // namespace
}  // namespace painpoint::service

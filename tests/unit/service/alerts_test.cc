// The service side of alerts: the `alerts.*` configuration keys, AlertFiring's once-per-id
// promise across batches and restarts, and GET /v1/alerts (paging, product filter, ETag, auth),
// against a real Store in a temporary directory.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "alerts/alert_firing.h"
#include "alerts/alerts_api.h"
#include "alerts/https_client.h"
#include "alerts/webhook_delivery.h"
#include "config_file.h"
#include "painpoint/store/store.h"

namespace painpoint::service {
namespace {

namespace fs = std::filesystem;

ConfigLoadResult parse(const std::string& text) {
  std::istringstream in(text);
  return parse_service_config(in);
}

TEST(AlertsConfigTest, RulesParseInFileOrderAndDescribeBackToThemselves) {
  const auto loaded = parse(
      "alerts.rules.fresh = new_pain_point accounts=5\n"
      "alerts.rules.spike = spike factor=3 min_arr_cents=5000000\n"
      "alerts.rules.severe = severity at_least=8\n");
  ASSERT_TRUE(loaded.config) << loaded.error;
  const auto& rules = loaded.config->alerts.rules;
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].name, "fresh");
  EXPECT_EQ(rules[2].name, "severe");
  const std::string described = describe_service_config(*loaded.config);
  EXPECT_NE(described.find("alerts.rules.spike = spike factor=3 min_events=10 min_baseline=5 "
                           "min_arr_cents=5000000\n"),
            std::string::npos)
      << described;
  const auto again = parse(described);
  ASSERT_TRUE(again.config) << again.error;
  EXPECT_EQ(describe_service_config(*again.config), described);
}

TEST(AlertsConfigTest, BadRulesNameTheLineAndTheProblem) {
  EXPECT_EQ(parse("alerts.rules.a = spike factor=3\nalerts.rules.a = severity at_least=1\n").error,
            "line 2: alert rule 'a' defined twice");
  EXPECT_EQ(parse("\nalerts.rules.b = spike factor=0.5\n").error,
            "line 2: alerts.rules.b: bad value '0.5' for factor (expected a number >= 1)");
  EXPECT_EQ(parse("alerts.rule.b = spike factor=2\n").error,
            "line 1: unknown key 'alerts.rule.b' (alerts.rules.<name>, alerts.webhooks.<name>.*, "
            "alerts.webhook_ca_file, alerts.webhook_backoff_max_ms)");
}

TEST(AlertsConfigTest, WebhooksNeedAnHttpsUrlAFormatAndForGenericASecret) {
  auto loaded = parse(
      "alerts.webhooks.team.url = https://hooks.example.com/services/T0/B0/x\n"
      "alerts.webhooks.team.format = slack\n"
      "alerts.webhooks.ops-1.url = https://127.0.0.1:8443/alerts?src=pp\n"
      "alerts.webhooks.ops-1.format = generic\n");
  ASSERT_TRUE(loaded.config) << loaded.error;
  auto missing = prepare_webhooks(loaded.config->alerts);
  ASSERT_TRUE(std::holds_alternative<std::string>(missing));
  EXPECT_EQ(std::get<std::string>(missing),
            "alerts.webhooks.ops-1: a generic webhook needs a secret "
            "(alerts.webhooks.ops-1.secret_file or PAINPOINT_WEBHOOK_OPS_1_SECRET)");
  ::setenv("PAINPOINT_WEBHOOK_OPS_1_SECRET", "k", 1);
  auto ready = prepare_webhooks(loaded.config->alerts);
  ::unsetenv("PAINPOINT_WEBHOOK_OPS_1_SECRET");
  ASSERT_TRUE(std::holds_alternative<std::vector<ReadyWebhook>>(ready));
  const auto& hooks = std::get<std::vector<ReadyWebhook>>(ready);
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0].url.host, "hooks.example.com");
  EXPECT_EQ(hooks[0].url.port, "443");
  EXPECT_EQ(hooks[0].url.target, "/services/T0/B0/x");
  EXPECT_EQ(hooks[1].url.port, "8443");
  EXPECT_EQ(hooks[1].url.target, "/alerts?src=pp");
  EXPECT_EQ(hooks[1].secret, "k");

  EXPECT_EQ(parse("alerts.webhooks.a.url = http://example.com/x\n").error,
            "line 1: alerts.webhooks.a.url: expected https://host[:port]/path");
  EXPECT_EQ(parse("alerts.webhooks.a.format = teams\n").error,
            "line 1: alerts.webhooks.a.format: expected slack or generic");
  auto no_format = parse("alerts.webhooks.a.url = https://h/x\n");
  ASSERT_TRUE(no_format.config);
  EXPECT_EQ(std::get<std::string>(prepare_webhooks(no_format.config->alerts)),
            "alerts.webhooks.a.format is missing (slack or generic)");
  EXPECT_FALSE(parse_https_url("https://user@h/x"));
  EXPECT_FALSE(parse_https_url("https://h:99999/x"));
  EXPECT_EQ(parse_https_url("https://h?q=1")->target, "/?q=1");
}

TEST(AlertsConfigTest, ASlackUrlComesFromTheFileTheFileNamesOrTheEnvironment) {
  const fs::path file =
      fs::temp_directory_path() / ("painpoint-alerts-url-" + std::to_string(::getpid()));
  {
    std::ofstream out(file);
    out << "https://hooks.example.com/services/T1/B1/secret\n";
  }
  auto from_file = parse("alerts.webhooks.team.url_file = " + file.string() +
                         "\nalerts.webhooks.team.format = slack\n");
  ASSERT_TRUE(from_file.config) << from_file.error;
  auto ready = prepare_webhooks(from_file.config->alerts);
  ASSERT_TRUE(std::holds_alternative<std::vector<ReadyWebhook>>(ready));
  EXPECT_EQ(std::get<std::vector<ReadyWebhook>>(ready)[0].url.target, "/services/T1/B1/secret");
  // `painpoint config` shows where the URL comes from, never the URL.
  const std::string described = describe_service_config(*from_file.config);
  EXPECT_EQ(described.find("T1/B1"), std::string::npos) << described;
  EXPECT_NE(described.find("alerts.webhooks.team.url_file = " + file.string()), std::string::npos)
      << described;
  fs::remove(file);
  EXPECT_EQ(std::get<std::string>(prepare_webhooks(from_file.config->alerts)),
            "cannot read alerts.webhooks.team.url_file " + file.string());

  auto from_env = parse("alerts.webhooks.team-2.format = slack\n");
  ASSERT_TRUE(from_env.config) << from_env.error;
  EXPECT_EQ(std::get<std::string>(prepare_webhooks(from_env.config->alerts)),
            "alerts.webhooks.team-2.url is missing (.url, .url_file or "
            "PAINPOINT_WEBHOOK_TEAM_2_URL)");
  ::setenv("PAINPOINT_WEBHOOK_TEAM_2_URL", "http://hooks.example.com/x", 1);
  EXPECT_EQ(std::get<std::string>(prepare_webhooks(from_env.config->alerts)),
            "PAINPOINT_WEBHOOK_TEAM_2_URL: expected https://host[:port]/path");
  ::setenv("PAINPOINT_WEBHOOK_TEAM_2_URL", "https://hooks.example.com/services/T2", 1);
  ready = prepare_webhooks(from_env.config->alerts);
  ::unsetenv("PAINPOINT_WEBHOOK_TEAM_2_URL");
  ASSERT_TRUE(std::holds_alternative<std::vector<ReadyWebhook>>(ready));
  EXPECT_EQ(std::get<std::vector<ReadyWebhook>>(ready)[0].url.target, "/services/T2");

  auto both = parse(
      "alerts.webhooks.a.url = https://h/x\nalerts.webhooks.a.url_file = /f\n"
      "alerts.webhooks.a.format = slack\n");
  ASSERT_TRUE(both.config);
  EXPECT_EQ(std::get<std::string>(prepare_webhooks(both.config->alerts)),
            "alerts.webhooks.a: .url and .url_file both given (one of them)");
}

TEST(WebhookBodiesTest, SlackTextAndSignedGenericJson) {
  v1::AlertEvent alert;
  alert.set_alert_id("al-1");
  alert.set_rule("spike");
  alert.set_kind(v1::ALERT_KIND_SPIKE);
  alert.set_product_id("mobile-app");
  alert.set_pain_point_id("pp-9");
  alert.set_label("camera \"crash\"");
  alert.set_account_count(12);
  alert.set_event_count(40);
  alert.set_arr_at_risk_cents(1'234'567);
  alert.set_last_7_days_count(33);
  alert.set_previous_7_days_count(7);
  EXPECT_EQ(slack_body(alert),
            "{\"text\":\"[spike] Spike: 33 events in the last 7 days, 7 before in mobile-app: "
            "\\\"camera \\\"crash\\\"\\\" (12 accounts, 40 events, ARR at risk 12345.67, "
            "pain point pp-9)\"}");
  const std::string body = generic_body(alert);
  EXPECT_NE(body.find("\"alertId\":\"al-1\""), std::string::npos) << body;
  EXPECT_NE(body.find("\"kind\":\"ALERT_KIND_SPIKE\""), std::string::npos) << body;
  // Python: hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
  EXPECT_EQ(generic_signature("Jefe", "1700000000", "{\"a\":1}"),
            "sha256=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a");
}

class AlertsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("painpoint-alerts-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ASSERT_TRUE(store::Store::open(dir_, {}, &store_).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  static std::vector<aggregator::AlertRule> rules() {
    return {std::get<aggregator::AlertRule>(
        aggregator::parse_alert_rule("fresh", "new_pain_point accounts=3"))};
  }

  static v1::PainPointSummary summary(const std::string& id, const std::string& product,
                                      std::int64_t accounts) {
    v1::PainPointSummary s;
    s.set_id(id);
    s.set_product_id(product);
    s.set_status(v1::STATUS_ACTIVE);
    s.mutable_first_seen()->set_seconds(1'790'000'000);
    s.mutable_last_seen()->set_seconds(1'790'000'600);
    s.set_account_count(accounts);
    return s;
  }

  HttpResponse get(const std::string& target, const std::string& token = "",
                   const std::string& if_none_match = "") {
    HttpRequest request;
    request.method = "GET";
    request.target = target;
    const auto q = target.find('?');
    request.path = target.substr(0, q);
    if (q != std::string::npos) request.query = *parse_query(target.substr(q + 1));
    if (!token.empty()) request.headers.emplace("Authorization", "Bearer " + token);
    if (!if_none_match.empty()) request.headers.emplace("If-None-Match", if_none_match);
    return router_.dispatch(request);
  }

  static v1::AlertList list_of(const HttpResponse& response) {
    v1::AlertList list;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(response.body, &list).ok())
        << response.body;
    return list;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  Router router_;
};

TEST_F(AlertsStoreTest, EachAlertFiresOnceAcrossBatchesInFlightAndRestarts) {
  AlertFiring firing(rules(), *store_);
  store::CommitBatch below;
  below.summaries = {summary("pp-1", "app", 2)};
  ASSERT_TRUE(firing.add_to(&below).ok());
  EXPECT_TRUE(below.alerts.empty());

  store::CommitBatch first;
  first.summaries = {summary("pp-1", "app", 3), summary("pp-2", "app", 1)};
  ASSERT_TRUE(firing.add_to(&first).ok());
  ASSERT_EQ(first.alerts.size(), 1u);
  EXPECT_EQ(first.alerts[0].pain_point_id(), "pp-1");
  // The next batch is evaluated while the first one is still being committed.
  store::CommitBatch second;
  second.summaries = {summary("pp-1", "app", 4)};
  ASSERT_TRUE(firing.add_to(&second).ok());
  EXPECT_TRUE(second.alerts.empty());
  ASSERT_TRUE(store_->commit(first).ok());

  // A restarted stage knows what fired from the store.
  AlertFiring restarted(rules(), *store_);
  store::CommitBatch third;
  third.summaries = {summary("pp-1", "app", 5), summary("pp-3", "web", 3)};
  ASSERT_TRUE(restarted.add_to(&third).ok());
  ASSERT_EQ(third.alerts.size(), 1u);
  EXPECT_EQ(third.alerts[0].pain_point_id(), "pp-3");
}

TEST_F(AlertsStoreTest, AnEpisodeFiresOnceAndReArmsOnlyAfterItsConditionWasFalse) {
  const std::vector<aggregator::AlertRule> severe = {std::get<aggregator::AlertRule>(
      aggregator::parse_alert_rule("severe", "severity at_least=5"))};
  constexpr std::int64_t kDay = 86'400;
  auto at = [](std::int64_t day, double severity) {
    v1::PainPointSummary s = summary("pp-1", "app", 9);
    s.mutable_last_seen()->set_seconds(1'790'000'600 + day * kDay);
    s.set_severity(severity);
    return s;
  };
  auto fire = [this](AlertFiring& firing, v1::PainPointSummary s) {
    store::CommitBatch batch;
    batch.summaries = {std::move(s)};
    EXPECT_TRUE(firing.add_to(&batch).ok());
    EXPECT_TRUE(store_->commit(batch).ok());
    return batch.alerts;
  };
  AlertFiring firing(severe, *store_);
  const auto opened = fire(firing, at(0, 6));
  ASSERT_EQ(opened.size(), 1u);
  // Severe for three weeks: one episode, whatever the days and the restarts.
  EXPECT_TRUE(fire(firing, at(8, 7)).empty());
  AlertFiring restarted(severe, *store_);
  EXPECT_TRUE(fire(restarted, at(15, 6)).empty());
  EXPECT_TRUE(fire(restarted, at(21, 5)).empty());
  // Below the threshold once (recorded), then severe again after another restart: a new episode.
  EXPECT_TRUE(fire(restarted, at(22, 4)).empty());
  AlertFiring again(severe, *store_);
  const auto reopened = fire(again, at(23, 6));
  ASSERT_EQ(reopened.size(), 1u);
  EXPECT_NE(reopened[0].alert_id(), opened[0].alert_id());
  EXPECT_EQ(reopened[0].window_start().seconds() % kDay, 0);
  EXPECT_EQ(reopened[0].triggered_at().seconds(), 1'790'000'600 + 23 * kDay);
  EXPECT_TRUE(fire(again, at(24, 6)).empty());
}

TEST_F(AlertsStoreTest, ListNewestFirstByProductWithPagesEtagAndAuth) {
  for (int i = 0; i < 5; ++i) {
    store::CommitBatch batch;
    v1::AlertEvent alert;
    alert.set_alert_id("al-" + std::to_string(i));
    alert.set_product_id(i % 2 == 0 ? "app" : "web");
    alert.set_kind(v1::ALERT_KIND_SPIKE);
    batch.alerts.push_back(alert);
    ASSERT_TRUE(store_->commit(batch).ok());
  }
  add_alerts_routes(router_, *store_, ApiAuth{"", "reader"});
  EXPECT_EQ(get("/v1/alerts").status, 401);

  auto first = get("/v1/alerts?limit=2", "reader");
  ASSERT_EQ(first.status, 200) << first.body;
  auto page = list_of(first);
  ASSERT_EQ(page.alerts_size(), 2);
  EXPECT_EQ(page.alerts(0).alert_id(), "al-4");
  EXPECT_EQ(page.alerts(1).alert_id(), "al-3");
  EXPECT_NE(first.body.find("\"kind\":\"ALERT_KIND_SPIKE\""), std::string::npos) << first.body;
  auto rest = list_of(get("/v1/alerts?limit=2&cursor=" + page.next_cursor(), "reader"));
  ASSERT_EQ(rest.alerts_size(), 2);
  EXPECT_EQ(rest.alerts(0).alert_id(), "al-2");
  auto last = list_of(get("/v1/alerts?limit=2&cursor=" + rest.next_cursor(), "reader"));
  ASSERT_EQ(last.alerts_size(), 1);
  EXPECT_EQ(last.next_cursor(), "");

  auto app = list_of(get("/v1/alerts?product=app", "reader"));
  ASSERT_EQ(app.alerts_size(), 3);
  EXPECT_EQ(app.alerts(2).alert_id(), "al-0");
  EXPECT_EQ(list_of(get("/v1/alerts?product=none", "reader")).alerts_size(), 0);

  std::string etag;
  for (const auto& [key, value] : first.headers) {
    if (key == "ETag") etag = value;
  }
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(get("/v1/alerts?limit=2", "reader", etag).status, 304);
  EXPECT_EQ(get("/v1/alerts?cursor=x", "reader").status, 400);
  EXPECT_EQ(get("/v1/alerts?limit=0", "reader").status, 400);
}

}  // namespace
}  // namespace painpoint::service

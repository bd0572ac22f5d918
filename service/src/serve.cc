#include "serve.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "aggregator_stage.h"
#include "alerts/alert_publisher.h"
#include "alerts/alerts_api.h"
#include "alerts/webhook_delivery.h"
#include "api.h"
#include "board.h"
#include "clustering_identity.h"
#include "config_file.h"
#include "curation_api.h"
#include "http_server.h"
#include "metrics.h"
#include "painpoint/aggregator/word_vectors.h"
#include "painpoint/changelog/changelog.h"
#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"
#include "painpoint/ingest/stage_backlog.h"
#include "painpoint/ingest/topics.h"
#include "painpoint/ingest/worker.h"
#include "painpoint/store/store.h"
#include "partition_changelog.h"
#include "product_partitions.h"
#include "publisher.h"
#include "routing/partition_owners.h"
#include "routing/serve_routing.h"
#include "signals.h"

namespace painpoint::service {

namespace {

using Clock = std::chrono::steady_clock;

// A batch's output normally is acknowledged within milliseconds; waiting longer means the broker
// is down or failing requests, and /readyz says so (the consumer's own reachability is only
// refreshed by polls, which pause during that wait).
constexpr std::chrono::milliseconds kIngestAckStall{3'000};

// Partitions of painpoint.feedback-by-product whose backlog ingest follows on a mock cluster
// (the embedded broker's count when larger); `painpoint topics ensure` makes 16.
constexpr std::int32_t kFollowedPartitions = 1024;

struct Pipeline {
  store::Store* store = nullptr;
  ingest::IngestWorker* ingest = nullptr;
  AggregatorStage* aggregator = nullptr;
  Publisher* publisher = nullptr;
  AlertPublisher* alert_publisher = nullptr;
};

// TEST ONLY: PAINPOINT_TEST_PUBLISH_DELAY_MS holds back the first publish so the integration test
// can kill serve between commit and publish. Not a tuning knob; unset in production.
std::chrono::milliseconds test_publish_delay() {
  const char* value = std::getenv("PAINPOINT_TEST_PUBLISH_DELAY_MS");
  if (value == nullptr || *value == '\0') return std::chrono::milliseconds{0};
  try {
    return std::chrono::milliseconds{std::stoll(value)};
  } catch (const std::exception&) {
    spdlog::warn("ignoring PAINPOINT_TEST_PUBLISH_DELAY_MS={}: not a number", value);
    return std::chrono::milliseconds{0};
  }
}

// painpoint.summaries must be compacted: subscribers rebuild the pain points from the latest
// record per key, which a delete policy removes. False after logging what to do.
bool summaries_topic_fits(ingest::Admin& admin, const std::string& brokers,
                          std::chrono::milliseconds timeout) {
  const std::vector<std::string> topics = {std::string(ingest::kTopicSummaries)};
  auto configs = admin.describe_topic_configs(topics, timeout);
  if (!configs.ok()) {
    spdlog::warn(
        "cannot check {} ({}); `painpoint topics ensure --brokers {}` creates it compacted",
        topics[0], configs.status().to_string(), brokers);
    return true;
  }
  for (const auto& spec : ingest::painpoint_topics(1)) {
    if (spec.name != topics[0]) continue;
    const auto mismatches = ingest::topic_mismatches(spec, 1, (*configs)[spec.name]);
    for (const auto& mismatch : mismatches) {
      spdlog::error(
          "{}: {}: subscribers need the latest summary per pain point kept. Change it (e.g. "
          "kafka-configs --bootstrap-server {} --alter --entity-type topics --entity-name {} "
          "--add-config cleanup.policy=compact) and start again; `painpoint topics ensure "
          "--brokers {}` lists every difference",
          spec.name, mismatch, brokers, spec.name, brokers);
    }
    return mismatches.empty();
  }
  return true;
}

// Each partition of the repartition topic owns the state of the products that hash to it, so
// the topic must keep the partition count the store was built with: recorded at the first start,
// compared at every later one. False after logging what to do; `how_to_keep(recorded)` says how
// to start with the recorded count.
bool input_partitions_fit(store::Store& store, int partitions,
                          const std::filesystem::path& data_dir,
                          const std::function<std::string(int recorded)>& how_to_keep) {
  std::optional<std::int32_t> recorded;
  store::Status s = store.input_partitions(&recorded);
  if (s.ok() && !recorded) s = store.record_input_partitions(partitions);
  if (!s.ok()) {
    spdlog::error("store: {}", s.to_string());
    return false;
  }
  if (!recorded || *recorded == partitions) return true;
  spdlog::error(
      "{} has {} partitions, but the store in {} was built with {}: products would move to "
      "partitions that do not hold their state. {}, or start with an empty --data-dir and "
      "`painpoint replay emit` this store's events into the new topics",
      ingest::kTopicByProduct, partitions, data_dir.string(), *recorded, how_to_keep(*recorded));
  return false;
}

bool repartition_topic_fits(ingest::Admin& admin, const std::string& brokers,
                            std::chrono::milliseconds timeout, store::Store& store,
                            const std::filesystem::path& data_dir) {
  const std::string topic(ingest::kTopicByProduct);
  auto metadata = admin.metadata(timeout, topic);
  if (!metadata.ok() || metadata->topics.empty() || !metadata->topics[0].error.ok()) {
    spdlog::warn(
        "cannot check the partitions of {}; `painpoint topics ensure --brokers {}` "
        "creates it",
        topic, brokers);
    return true;
  }
  return input_partitions_fit(store, metadata->topics[0].partitions, data_dir, [&](int recorded) {
    return fmt::format(
        "Use a topic with {} partitions (`painpoint topics ensure --brokers {} --partitions {}` "
        "checks it)",
        recorded, brokers, recorded);
  });
}

// The topic checks. librdkafka's mock cluster (`painpoint broker`) names no controller among its
// brokers and never answers DescribeConfigs, so only the partition count, which comes with the
// topic's metadata, is checked there; its topics are Painpoint's own anyway.
bool cluster_topics_fit(const std::string& brokers, const ingest::ClientProperties& admin_props,
                        store::Store& store, const std::filesystem::path& data_dir) {
  // The aggregator stage has just reached the cluster: it answers in milliseconds.
  constexpr std::chrono::seconds kTimeout{10};
  auto admin = ingest::Admin::create({brokers, "painpoint-topic-check", admin_props});
  if (!admin.ok()) {
    spdlog::error("topic check: {}", admin.status().to_string());
    return false;
  }
  auto answers = admin->has_controller(kTimeout);
  const bool describes_configs = answers.ok() && *answers;
  if (!describes_configs) {
    spdlog::debug("topic configuration checks skipped: {}",
                  answers.ok() ? "the cluster names no controller" : answers.status().to_string());
  }
  return (!describes_configs || summaries_topic_fits(*admin, brokers, kTimeout)) &&
         repartition_topic_fits(*admin, brokers, kTimeout, store, data_dir);
}

void register_ingest_metrics(MetricsRegistry& metrics, const ingest::IngestWorker& worker) {
  const ingest::IngestCounters* c = &worker.counters();
  metrics.counter_callback("painpoint_events_consumed_total",
                           "Messages consumed from the input topics",
                           [c] { return static_cast<double>(c->consumed.load()); });
  metrics.counter_callback("painpoint_events_invalid_total", "Events rejected by validation",
                           [c] { return static_cast<double>(c->invalid.load()); },
                           {{"stage", "ingest"}});
  metrics.counter_callback("painpoint_ingest_produced_total",
                           "Messages acknowledged on the repartition and dead-letter topics",
                           [c] { return static_cast<double>(c->produced.load()); });
  metrics.counter_callback("painpoint_ingest_delivery_failures_total",
                           "Output messages that failed; batch redone",
                           [c] { return static_cast<double>(c->delivery_failures.load()); });
  metrics.counter_callback(
      "painpoint_events_lost_to_retention_total",
      "Messages skipped because the offset to resume from was no longer on the broker",
      [c] { return static_cast<double>(c->lost_to_retention.load()); }, {{"stage", "ingest"}});
  metrics.counter_callback(
      "painpoint_ingest_stage_holds_total",
      "Times ingest held its input because the aggregator stage was too far behind for a broker "
      "that keeps 5 MiB per partition (the embedded broker)",
      [c] { return static_cast<double>(c->stage_holds.load()); });
  metrics.counter_callback("painpoint_ingest_stage_held_seconds_total",
                           "Time ingest held its input for the aggregator stage",
                           [c] { return static_cast<double>(c->stage_held_ms.load()) / 1000.0; });
}

// changelog.enabled: a product whose partition this instance is restoring answers 503 with
// Retry-After until its state is complete, rather than a partial answer. Without forwarding, a
// product whose partition another instance holds answers 503 too: what is on this disk is the
// state from when the partition was last here (docs/api.md).
RouteWrapper unavailable_unless_held(const AggregatorStage& stage, bool forwarding,
                                     RouteWrapper inner) {
  return [&stage, forwarding, inner = std::move(inner)](HttpHandler handler) -> HttpHandler {
    return [&stage, forwarding, next = wrapped(inner, std::move(handler))](
               const HttpRequest& request) {
      using Holding = AggregatorStage::ProductHolding;
      const Holding holding = stage.holding_of(request.path_param("product"));
      HttpResponse response;
      if (holding == Holding::kRestoring) {
        response = HttpResponse::error(503, "partition_restoring",
                                       "this product's partition is being restored from the "
                                       "changelog here; ask again shortly");
      } else if (holding == Holding::kNotHeld && !forwarding) {
        response = HttpResponse::error(
            503, "partition_not_held",
            "this instance does not hold this product's partition (another instance does, or "
            "the group is rebalancing): ask the instance that holds it (its /readyz lists it), "
            "or run serve with --forward-requests");
      } else {
        return next(request);
      }
      response.headers.emplace_back("Retry-After", "1");
      return response;
    };
  };
}

Router make_router(const Pipeline& pipeline, MetricsRegistry& metrics, FeedbackSink* sink,
                   const ApiConfig& api_config, const Connectors& connectors) {
  Router router;
  router.get("/healthz", [](const HttpRequest&) { return HttpResponse::text(200, "ok\n"); });
  router.get("/readyz", [pipeline](const HttpRequest&) {
    const auto ack_wait = pipeline.ingest->waiting_for_acks();
    const bool ingest_stalled = ack_wait > kIngestAckStall;
    const bool ingest_ok =
        pipeline.ingest->running() && pipeline.ingest->broker_reachable() && !ingest_stalled;
    const bool aggregator_ok = pipeline.aggregator->ready();
    const bool publisher_ok = pipeline.publisher->publisher_ok();
    const bool ready = ingest_ok && aggregator_ok && publisher_ok;
    std::string body = "{\"ready\":";
    body += ready ? "true" : "false";
    body += ",\"checks\":{\"ingest\":";
    body += json_quote(
        ingest_ok                     ? std::string("ok")
        : !pipeline.ingest->running() ? std::string("not running")
        : ingest_stalled
            ? "output not acknowledged by the Kafka broker for " +
                  std::to_string(
                      std::chrono::duration_cast<std::chrono::seconds>(ack_wait).count()) +
                  " s (broker down or failing requests)"
            : ingest::unreachable_detail(pipeline.ingest->connection_problem()));
    body += ",\"aggregator\":" + json_quote(pipeline.aggregator->status_detail());
    body += ",\"publisher\":" + json_quote(pipeline.publisher->status_detail());
    // Not a readiness failure (consumption goes on), but a loss an operator must see: the
    // messages skipped because retention removed them before they were consumed.
    const std::uint64_t lost_ingest = pipeline.ingest->counters().lost_to_retention.load();
    const std::uint64_t lost_aggregator = pipeline.aggregator->events_lost_to_retention();
    body += "},\"details\":{\"lost_to_retention\":{\"ingest\":" + std::to_string(lost_ingest) +
            ",\"aggregator\":" + std::to_string(lost_aggregator) + "}";
    // changelog.enabled: which input partitions are this instance's, and which still restore.
    const std::vector<std::int32_t> held = pipeline.aggregator->active_partitions();
    const std::vector<std::int32_t> restoring = pipeline.aggregator->restoring_partitions();
    if (!held.empty() || !restoring.empty()) {
      const auto list = [](const std::vector<std::int32_t>& ps) {
        std::string out = "[";
        for (std::size_t i = 0; i < ps.size(); ++i) {
          out += (i > 0 ? "," : "") + std::to_string(ps[i]);
        }
        return out + "]";
      };
      body += ",\"partitions\":{\"held\":" + list(held) + ",\"restoring\":" + list(restoring) + "}";
    }
    // Not a readiness check either: alerts wait in the store's outbox and serving goes on; a
    // broker that is down shows in "publisher" already.
    body += ",\"alert_publisher\":" + json_quote(pipeline.alert_publisher->status_detail());
    if (lost_ingest + lost_aggregator > 0) {
      body += ",\"warning\":" +
              json_quote(std::to_string(lost_ingest + lost_aggregator) +
                         " messages were lost to retention since start (their offsets had left "
                         "the broker before they were consumed); see the error log");
    }
    body += "}}";
    return HttpResponse::json(ready ? 200 : 503, std::move(body));
  });
  router.get("/metrics", [&metrics](const HttpRequest&) {
    HttpResponse response;
    response.content_type = std::string(MetricsRegistry::kContentType);
    response.body = metrics.render();
    return response;
  });
  add_api_routes(router, *pipeline.store, sink, api_config);
  add_connector_routes(router, connectors, sink, api_config);
  add_curation_routes(router, *pipeline.aggregator, api_config.auth, api_config.routing.curation);
  add_alerts_routes(router, *pipeline.store, api_config.auth);
  add_board_routes(router);
  return router;
}

}  // namespace

std::filesystem::path word_vectors_path_for(const std::filesystem::path& requested) {
  if (!requested.empty()) return requested;
  std::filesystem::path path = aggregator::default_word_vectors_path();
  std::error_code ec;
  return std::filesystem::exists(path, ec) ? path : std::filesystem::path();
}

std::filesystem::path encoder_path_for(const std::filesystem::path& requested) {
  return requested.empty() ? std::filesystem::path(aggregator::default_encoder_path()) : requested;
}

aggregator::LoadedVectors load_vectors_for(const std::filesystem::path& requested) {
  const std::filesystem::path path = word_vectors_path_for(requested);
  if (path.empty()) {
    spdlog::warn(
        "no word vectors at {}: clustering uses sparse TF-IDF features only, which groups "
        "paraphrases less well (run scripts/fetch-embeddings.sh, or pass --word-vectors)",
        aggregator::default_word_vectors_path());
    return {};
  }
  auto loaded = aggregator::load_word_vectors(path.string());
  if (loaded.vectors) {
    spdlog::info("word vectors: {} {} x {} dims from {}", loaded.vectors->size(),
                 loaded.vectors->whole_text() ? "tokens" : "words", loaded.vectors->dims(),
                 path.string());
  }
  return loaded;
}

aggregator::LoadedEncoder load_encoder_for(const std::filesystem::path& requested) {
  const std::string path = encoder_path_for(requested).string();
  auto loaded = aggregator::load_sentence_encoder(path);
  if (!loaded.encoder) {
    loaded.detail += " (run scripts/fetch-encoder.sh, or set cluster.encoder = static)";
  } else {
    spdlog::info("sentence encoder: {} ({} kernels)", path, loaded.encoder->kernel());
  }
  return loaded;
}

namespace {

// What serve loads before it starts anything: the configuration file, the connectors and the
// model files the configuration asks for.
struct ServeSetup {
  ServiceConfig config;
  ConnectorsLoad connectors;
  aggregator::LoadedEncoder encoder;
  std::unique_ptr<aggregator::WordVectors> vectors;
  std::vector<ReadyWebhook> webhooks;  // alerts.webhooks.*, with their secrets read
};

base::ExitCode load_setup(const ServeOptions& options, ServeSetup& setup) {
  auto file = load_service_config(options.config_file, options.config_overrides);
  if (!file.config) {
    spdlog::error("config {}", file.error);
    return base::ExitCode::kBadUsage;
  }
  setup.config = std::move(*file.config);
  if (setup.config.changelog_enabled && options.brokers.empty()) {
    spdlog::error(
        "changelog.enabled = true needs --brokers of an Apache Kafka cluster: the embedded broker "
        "keeps at most 5 MiB per partition, less than a changelog holds (set changelog.enabled "
        "= false, the default, or pass --brokers)");
    return base::ExitCode::kBadUsage;
  }
  auto webhooks = prepare_webhooks(setup.config.alerts);
  if (auto* error = std::get_if<std::string>(&webhooks)) {
    spdlog::error("alerts: {}", *error);
    return base::ExitCode::kBadUsage;
  }
  setup.webhooks = std::get<std::vector<ReadyWebhook>>(std::move(webhooks));
  setup.connectors = load_connectors(setup.config.connectors);
  if (!setup.connectors.connectors) {
    spdlog::error("connectors: {}", setup.connectors.error);
    return base::ExitCode::kBadUsage;
  }
  for (const auto& [system, connector] : setup.connectors.connectors->enabled) {
    spdlog::info("connector {} enabled at POST /v1/connectors/{}", system_name(system),
                 system_name(system));
  }
  if (setup.config.cluster.encoder == aggregator::EncoderMode::kSemantic) {
    setup.encoder = load_encoder_for(options.encoder);
    if (!setup.encoder.encoder) {
      spdlog::error("sentence encoder: {}", setup.encoder.detail);
      return base::ExitCode::kBadUsage;
    }
    setup.config.cluster.embedding_dims = aggregator::SentenceEncoder::kDims;
  }
  if (auto loaded = load_vectors_for(options.word_vectors); loaded.vectors) {
    setup.vectors = std::move(loaded.vectors);
    setup.config.cluster.word_vectors = setup.vectors.get();
  } else if (!options.word_vectors.empty()) {
    spdlog::error("word vectors {}: {}", options.word_vectors.string(), loaded.detail);
    return base::ExitCode::kBadUsage;
  }
  return base::ExitCode::kOk;
}

// The clustering the data directory was built with must be the one configured (exit 2 otherwise);
// recorded at the first start.
base::ExitCode check_clustering(const ServeOptions& options, const ServeSetup& setup,
                                store::Store& store) {
  std::string error;
  const auto clustering = describe_clustering(
      setup.config.cluster,
      {setup.encoder.encoder ? encoder_path_for(options.encoder) : std::filesystem::path(),
       setup.vectors ? word_vectors_path_for(options.word_vectors) : std::filesystem::path()},
      &error);
  if (!clustering) {
    spdlog::error("clustering: {}", error);
    return base::ExitCode::kBadUsage;
  }
  if (!clustering_fits(store, *clustering, options.data_dir)) return base::ExitCode::kCannotProceed;
  return base::ExitCode::kOk;
}

// Without --brokers: starts the embedded broker and sets `brokers` to its address.
base::ExitCode start_embedded_broker_if_needed(const ServeOptions& options,
                                               std::unique_ptr<ingest::EmbeddedBroker>& embedded,
                                               std::string& brokers) {
  brokers = options.brokers;
  if (!brokers.empty()) return base::ExitCode::kOk;
  ingest::EmbeddedBrokerConfig broker_config;
  broker_config.port = options.embedded_port;
  broker_config.partitions = options.embedded_partitions;
  auto started = ingest::EmbeddedBroker::start(broker_config);
  if (!started.ok()) {
    spdlog::error("cannot start the embedded broker: {}", started.status().to_string());
    return base::ExitCode::kStartFailed;
  }
  embedded = std::move(started).value();
  brokers = embedded->bootstrap();
  spdlog::info("embedded Kafka broker listening on {} (in memory; pass --brokers for real Kafka)",
               brokers);
  return base::ExitCode::kOk;
}

AggregatorStageConfig make_stage_config(const ServeSetup& setup, const std::string& brokers) {
  AggregatorStageConfig stage_config;
  stage_config.brokers = brokers;
  stage_config.consumer_properties =
      setup.config.kafka.settings.for_role(ingest::ClientRole::kConsumer);
  stage_config.cluster = setup.config.cluster;
  stage_config.encoder = setup.encoder.encoder.get();
  if (setup.encoder.encoder) {
    // A batch is encoded before it is aggregated (about a millisecond per event and core):
    // smaller batches keep the latency to a summary and the time between polls short.
    stage_config.batch_size = std::min<std::size_t>(stage_config.batch_size, 2'000);
  }
  stage_config.checkpoint_events = setup.config.checkpoint_events;
  stage_config.checkpoint_interval = setup.config.checkpoint_interval;
  stage_config.checkpoint_batches = static_cast<std::size_t>(setup.config.checkpoint_batches);
  stage_config.aggregator_threads = static_cast<unsigned>(setup.config.aggregator_threads);
  stage_config.alert_rules = setup.config.alerts.rules;
  return stage_config;
}

PublisherConfig make_publisher_config(const ServeSetup& setup, const std::string& brokers) {
  PublisherConfig publisher_config;
  publisher_config.brokers = brokers;
  publisher_config.producer_properties =
      setup.config.kafka.settings.for_role(ingest::ClientRole::kProducer);
  publisher_config.interval = setup.config.summary_interval;
  publisher_config.test_initial_delay = test_publish_delay();
  return publisher_config;
}

AlertPublisherConfig make_alert_publisher_config(const ServeSetup& setup,
                                                 const std::string& brokers) {
  AlertPublisherConfig config;
  config.brokers = brokers;
  config.producer_properties = setup.config.kafka.settings.for_role(ingest::ClientRole::kProducer);
  return config;
}

// Moves the prepared webhooks out of `setup`.
WebhookDeliveryConfig make_webhook_config(ServeSetup& setup) {
  WebhookDeliveryConfig config;
  config.webhooks = std::move(setup.webhooks);
  config.ca_file = setup.config.alerts.webhook_ca_file;
  config.backoff_max = setup.config.alerts.webhook_backoff_max;
  return config;
}

ingest::IngestConfig make_ingest_config(const ServeSetup& setup, const std::string& brokers) {
  ingest::IngestConfig ingest_config;
  ingest_config.brokers = brokers;
  ingest_config.consumer_extra =
      setup.config.kafka.settings.for_role(ingest::ClientRole::kConsumer);
  ingest_config.producer_extra =
      setup.config.kafka.settings.for_role(ingest::ClientRole::kProducer);
  ingest_config.validation = setup.config.validation;
  return ingest_config;
}

ApiConfig make_api_config(const ServeOptions& options, const ServeSetup& setup) {
  ApiConfig api_config;
  api_config.auth = {options.api_token, options.api_read_token};
  api_config.validation = setup.config.validation;
  if (options.api_token.empty() && options.api_read_token.empty()) {
    spdlog::warn(
        "HTTP API without tokens: anyone who reaches {}:{} can read and POST feedback "
        "(set --api-token / PAINPOINT_API_TOKEN)",
        options.http_address, options.http_port);
  }
  return api_config;
}

// The stages of one serve process, in the order they start.
struct Stages {
  AggregatorStage& aggregator;
  Publisher& publisher;
  AlertPublisher& alert_publisher;
  WebhookDelivery& webhooks;
  ingest::IngestWorker& ingest;
  OutboxDeletions& outbox_deletions;
};

// changelog.enabled: the changelog topic as `painpoint topics ensure` makes it, with as many
// partitions as the aggregator's input topic (which must exist), handed to the stage.
base::ExitCode prepare_changelog(const std::string& brokers, const ServeSetup& setup,
                                 AggregatorStage& stage, OutboxDeletions& deletions) {
  constexpr std::chrono::seconds kTimeout{30};
  auto admin =
      ingest::Admin::create({brokers, "painpoint-changelog",
                             setup.config.kafka.settings.for_role(ingest::ClientRole::kAdmin)});
  if (!admin.ok()) {
    spdlog::error("changelog: {}", admin.status().to_string());
    return base::ExitCode::kStartFailed;
  }
  const std::string input(ingest::kTopicByProduct);
  auto metadata = admin->metadata(kTimeout, input);
  if (!metadata.ok() || metadata->topics.empty() || !metadata->topics[0].error.ok() ||
      metadata->topics[0].partitions <= 0) {
    spdlog::error(
        "changelog.enabled needs the partition count of {}, which the cluster did not give ({}); "
        "`painpoint topics ensure --brokers {}` creates the topics",
        input, metadata.ok() ? "no such topic" : metadata.status().to_string(), brokers);
    return base::ExitCode::kCannotProceed;
  }
  const int partitions = metadata->topics[0].partitions;
  const std::string topic(ingest::kTopicChangelog);
  auto check = changelog::ensure_changelog_topic(*admin, topic, partitions, kTimeout);
  if (!check.ok()) {
    spdlog::error("changelog topic {}: {}", topic, check.status().to_string());
    return base::ExitCode::kCannotProceed;
  }
  if (check->outcome == ingest::TopicCheck::Outcome::kMismatch) {
    spdlog::error(
        "changelog topic {} differs from what Painpoint needs: {}; `painpoint topics "
        "ensure --brokers {}` lists every difference",
        topic, fmt::join(check->mismatches, "; "), brokers);
    return base::ExitCode::kCannotProceed;
  }
  if (check->outcome == ingest::TopicCheck::Outcome::kCreated) {
    spdlog::info("created the changelog topic {} with {} partitions", topic, partitions);
  }
  changelog::ChangelogConfig config;
  config.brokers = brokers;
  config.topic = topic;
  config.clients = setup.config.kafka.settings;
  stage.use_changelog(std::move(config), partitions, &deletions);
  return base::ExitCode::kOk;
}

base::ExitCode start_stages(const ServeOptions& options, const ServeSetup& setup,
                            const std::string& brokers, store::Store& store, Stages stages) {
  if (setup.config.changelog_enabled) {
    if (auto code = prepare_changelog(brokers, setup, stages.aggregator, stages.outbox_deletions);
        code != base::ExitCode::kOk) {
      return code;
    }
  }
  if (auto s = stages.aggregator.start(); !s.ok()) {
    spdlog::error("cannot start the aggregator stage: {}", s.to_string());
    return base::ExitCode::kStartFailed;
  }
  // After the aggregator stage reached the cluster (so a cluster that cannot be reached delays
  // nothing here) and before anything is published.
  if (!options.brokers.empty() &&
      !cluster_topics_fit(brokers, setup.config.kafka.settings.for_role(ingest::ClientRole::kAdmin),
                          store, options.data_dir)) {
    return base::ExitCode::kCannotProceed;
  }
  // Started after the aggregator stage (whose commits fill the outbox) and stopped after it, so
  // the summaries of the final batch still go out on a clean stop.
  if (auto s = stages.publisher.start(); !s.ok()) {
    spdlog::error("cannot start the summary publisher: {}", s.to_string());
    return base::ExitCode::kStartFailed;
  }
  if (auto s = stages.alert_publisher.start(); !s.ok()) {
    spdlog::error("cannot start the alert publisher: {}", s.to_string());
    return base::ExitCode::kStartFailed;
  }
  if (auto error = stages.webhooks.start(); !error.empty()) {
    spdlog::error("cannot start the alert webhooks: {}", error);
    return base::ExitCode::kStartFailed;
  }
  if (auto s = stages.ingest.start(); !s.ok()) {
    spdlog::error("cannot start the ingest stage: {}", s.to_string());
    return base::ExitCode::kStartFailed;
  }
  return base::ExitCode::kOk;
}

// Waits for SIGINT/SIGTERM, a failed aggregator stage (kStoreFailed) or, with --exit-when-idle,
// for everything consumed to be stored and published.
base::ExitCode wait_until_done(const std::atomic<bool>& stop, const ServeOptions& options,
                               Stages stages) {
  constexpr Clock::time_point kNotIdle = Clock::time_point::max();
  Clock::time_point idle_since = kNotIdle;
  std::uint64_t last_consumed = 0;
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stages.aggregator.failed()) return base::ExitCode::kStoreFailed;
    if (!options.exit_when_idle) continue;
    // Idle: the aggregator has nothing left to read and ingest has not moved for a while (its
    // output is what the aggregator reads, so both are drained), and every summary and alert the
    // commits produced is published.
    const std::uint64_t consumed = stages.ingest.counters().consumed.load();
    const bool quiet = consumed == last_consumed && stages.aggregator.idle() &&
                       stages.publisher.outbox_empty() && stages.alert_publisher.outbox_empty();
    last_consumed = consumed;
    if (!quiet) {
      idle_since = kNotIdle;
    } else if (idle_since == kNotIdle) {
      idle_since = Clock::now();
    } else if (Clock::now() - idle_since > std::chrono::seconds(3)) {
      spdlog::info("all input consumed, stored and published; exiting (--exit-when-idle)");
      break;
    }
  }
  return base::ExitCode::kOk;
}

void stop_stages(Stages stages, HttpServer& http, const store::Store& store) {
  const auto stop_started = Clock::now();
  // Ingest and the aggregator stage do not depend on each other's shutdown: stop them side by
  // side (each bounds its own wait for the broker). The publisher goes after the aggregator
  // stage, so the summaries of its last commit are still published.
  std::thread ingest_stopper([&ingest = stages.ingest] { ingest.stop(); });
  stages.aggregator.stop();
  stages.publisher.stop();
  stages.alert_publisher.stop();
  stages.webhooks.stop();
  ingest_stopper.join();
  http.stop(std::chrono::seconds(1));
  spdlog::info(
      "stopped in {} ms; store holds {} events",
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stop_started).count(),
      store.event_count());
}

}  // namespace

base::ExitCode run_serve(const ServeOptions& options) {
  const std::atomic<bool>& stop = install_stop_signal_handlers();
  ServeSetup setup;
  if (auto code = load_setup(options, setup); code != base::ExitCode::kOk) return code;
  std::unique_ptr<ingest::EmbeddedBroker> embedded;
  std::string brokers;
  if (auto code = start_embedded_broker_if_needed(options, embedded, brokers);
      code != base::ExitCode::kOk) {
    return code;
  }

  store::StoreOptions store_options;
  store_options.sync_writes = options.sync_writes;
  store_options.min_free_bytes = options.min_free_mib << 20;
  // A schema 2 directory is upgraded on this open; with the embedded broker, its partitions are
  // the count when the store recorded none.
  store_options.upgrade_rule = store_upgrade_rule(
      embedded ? std::optional<std::int32_t>(options.embedded_partitions) : std::nullopt);
  std::unique_ptr<store::Store> store;
  if (store::Status s = store::Store::open(options.data_dir, store_options, &store); !s.ok()) {
    spdlog::error("cannot open the store in {}: {}", options.data_dir.string(), s.to_string());
    return base::ExitCode::kStartFailed;
  }
  spdlog::info("store {} holds {} events", options.data_dir.string(), store->event_count());
  if (auto code = check_clustering(options, setup, *store); code != base::ExitCode::kOk) {
    return code;
  }
  // The embedded broker's topics have the partitions it was started with; a cluster's are
  // checked once the aggregator stage reached it (cluster_topics_fit).
  if (embedded && !input_partitions_fit(
                      *store, options.embedded_partitions, options.data_dir, [](int recorded) {
                        return fmt::format("Start with --partitions {}", recorded);
                      })) {
    return base::ExitCode::kCannotProceed;
  }

  MetricsRegistry metrics;
  metrics.gauge_callback("painpoint_store_events", "Distinct events held in the store",
                         [s = store.get()] { return static_cast<double>(s->event_count()); });
  // Declared before the publisher, which reports to it, and the stage, which drains it.
  OutboxDeletions outbox_deletions;
  PublisherConfig publisher_config = make_publisher_config(setup, brokers);
  if (setup.config.changelog_enabled) {
    publisher_config.on_deleted = [&outbox_deletions](std::span<const store::OutboxPosition> p) {
      outbox_deletions.add(p);
    };
  }
  // Declared before the publisher, which reads it, and the stage, which writes it.
  PublishedPartitions published_partitions;
  if (setup.config.changelog_enabled) {
    publisher_config.publishes = [&published_partitions](std::int32_t p) {
      return published_partitions.contains(p);
    };
    publisher_config.on_stall = [&published_partitions](std::chrono::steady_clock::time_point at) {
      published_partitions.stalled(at);
    };
  }
  Publisher publisher(std::move(publisher_config), *store, metrics);
  // Declared after the publisher, which it wakes from its commit thread until it is destroyed.
  AggregatorStageConfig stage_config = make_stage_config(setup, brokers);
  stage_config.published_partitions = &published_partitions;
  // Ingest holds its input while the stage is far behind, where the broker keeps too little to
  // buffer the difference (a mock cluster; ingest finds out from the cluster id).
  auto stage_backlog = std::make_shared<ingest::StageBacklog>(
      std::max(kFollowedPartitions, embedded ? options.embedded_partitions : 0));
  stage_config.input_backlog = stage_backlog;
  stage_config.on_committed = [&publisher] { publisher.wake(); };
  const std::string aggregator_group = stage_config.group_id;
  AggregatorStage aggregator_stage(std::move(stage_config), *store, metrics);
  AlertPublisher alert_publisher(make_alert_publisher_config(setup, brokers), *store, metrics);
  WebhookDelivery webhook_delivery(make_webhook_config(setup), *store, metrics);
  ingest::IngestConfig ingest_config = make_ingest_config(setup, brokers);
  ingest_config.stage_backlog = stage_backlog;
  ingest::IngestWorker ingest_worker(std::move(ingest_config));
  register_ingest_metrics(metrics, ingest_worker);
  const Stages stages{aggregator_stage, publisher,     alert_publisher,
                      webhook_delivery, ingest_worker, outbox_deletions};

  // Declared before the server so that it outlives every handler that sends to it.
  auto feedback_sink = make_kafka_feedback_sink(
      brokers, setup.config.kafka.settings.for_role(ingest::ClientRole::kProducer));
  if (!feedback_sink.ok()) {
    spdlog::error("cannot create the producer of POST /v1/feedback: {}",
                  feedback_sink.status().to_string());
    return base::ExitCode::kStartFailed;
  }
  // The server starts before the stages so that /readyz can say why they have not started yet
  // (the aggregator stage waits for the Kafka cluster, and a wrong password would otherwise
  // look like a silent hang).
  HttpServerConfig http_config;
  http_config.address = options.http_address;
  http_config.port = options.http_port;
  http_config.body_limit_bytes = options.http_body_limit;
  // Declared before the server, whose handlers use it.
  ServeRouting routing;
  ApiConfig api_config = make_api_config(options, setup);
  const bool forwarding = options.forward_requests && !options.brokers.empty();
  if (forwarding) api_config.routing = routing.wrappers(*store);
  if (setup.config.changelog_enabled) {
    api_config.routing.by_product = unavailable_unless_held(
        aggregator_stage, forwarding, std::move(api_config.routing.by_product));
  }
  if (options.forward_requests && options.brokers.empty()) {
    spdlog::warn("--forward-requests needs --brokers of an Apache Kafka cluster; ignored");
  }
  HttpServer http(
      http_config,
      make_router({store.get(), &ingest_worker, &aggregator_stage, &publisher, &alert_publisher},
                  metrics, feedback_sink->get(), api_config, *setup.connectors.connectors));
  try {
    http.start();
  } catch (const std::exception& e) {
    spdlog::error("cannot start the HTTP server on {}:{}: {}", options.http_address,
                  options.http_port, e.what());
    return base::ExitCode::kStartFailed;
  }
  const std::string self_address =
      advertised_address(options.http_address, http.port(), options.advertise);
  aggregator_stage.advertise_api(self_address);
  if (auto code = start_stages(options, setup, brokers, *store, stages);
      code != base::ExitCode::kOk) {
    return code;
  }
  if (forwarding) {
    routing.start(brokers, setup.config.kafka.settings.for_role(ingest::ClientRole::kAdmin),
                  aggregator_group, self_address);
  }
  spdlog::info(
      "painpoint serving: http://{}:{} (healthz, readyz, metrics), Kafka {} (librdkafka {})",
      options.http_address, http.port(), brokers, ingest::librdkafka_version());

  const base::ExitCode exit_code = wait_until_done(stop, options, stages);
  if (stop.load()) spdlog::info("stop requested: finishing the batches in flight");
  stop_stages(stages, http, *store);
  return exit_code;
}
}  // namespace painpoint::service

#include "painpoint/service/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cluster_command.h"
#include "config_file.h"
#include "import_command.h"
#include "painpoint/ingest/embedded_broker.h"
#include "painpoint/ingest/kafka.h"
#include "painpoint/ingest/produce.h"
#include "painpoint/ingest/topics.h"
#include "replay.h"
#include "serve.h"
#include "signals.h"

namespace painpoint::service {

namespace {

constexpr const char* kKafkaConfigHelp =
    "Configuration file; its kafka.* keys set the Kafka client properties (TLS, SASL, ...)";

// The `kafka.*` settings of the configuration file at `path` (none when `path` is empty); false
// after printing the error.
bool load_kafka_settings(const std::string& path, const char* command,
                         ingest::ClientSettings* settings) {
  if (path.empty()) return true;
  auto loaded = load_service_config(path);
  if (!loaded.config) {
    std::cerr << "painpoint " << command << ": " << path << ": " << loaded.error << "\n";
    return false;
  }
  *settings = std::move(loaded.config->kafka.settings);
  return true;
}

base::ExitCode run_produce_command(const std::string& brokers, const std::string& topic,
                                   const std::string& input, const std::string& config_path) {
  ingest::ProduceOptions options;
  options.brokers = brokers;
  options.topic = topic;
  ingest::ClientSettings kafka;
  if (!load_kafka_settings(config_path, "produce", &kafka)) return base::ExitCode::kBadUsage;
  options.producer_extra = kafka.for_role(ingest::ClientRole::kProducer);
  ingest::ProduceReport report;
  if (input.empty() || input == "-") {
    report = ingest::produce_jsonl(std::cin, options);
  } else {
    std::ifstream in(input);
    if (!in) {
      std::cerr << "painpoint produce: cannot open " << input << "\n";
      return base::ExitCode::kBadUsage;
    }
    report = ingest::produce_jsonl(in, options);
  }
  for (const auto& error : report.errors) {
    std::cerr << "line " << error.line << ": " << error.code << ": " << error.detail << "\n";
  }
  if (!report.status.ok()) std::cerr << "painpoint produce: " << report.status.to_string() << "\n";
  std::cout << "sent " << report.sent << ", rejected " << report.rejected << ", failed "
            << report.failed << " (of " << report.lines << " lines) to " << topic << "\n";
  return report.ok() ? base::ExitCode::kOk : base::ExitCode::kInputRejected;
}

struct TopicsEnsureOptions {
  std::string brokers;
  int partitions = 16;
  int replication_factor = -1;  // the broker's default.replication.factor
  std::string config_path;
};

// `painpoint topics ensure`: one line per topic (created / ok / mismatch); kOk when every topic
// fits, kTopicsMismatch on a mismatch, kCannotProceed when the cluster could not be asked.
base::ExitCode run_topics_ensure(const TopicsEnsureOptions& options) {
  ingest::ClientSettings kafka;
  if (!load_kafka_settings(options.config_path, "topics ensure", &kafka)) {
    return base::ExitCode::kBadUsage;
  }
  auto admin = ingest::Admin::create(
      {options.brokers, "painpoint-topics", kafka.for_role(ingest::ClientRole::kAdmin)});
  if (!admin.ok()) {
    std::cerr << "painpoint topics ensure: " << admin.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  const auto specs = ingest::painpoint_topics(options.partitions, options.replication_factor);
  auto checks = ingest::ensure_topics(*admin, specs, std::chrono::seconds(30));
  if (!checks.ok()) {
    std::cerr << "painpoint topics ensure: " << options.brokers << ": "
              << checks.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  bool fits = true;
  for (const auto& check : *checks) {
    switch (check.outcome) {
      case ingest::TopicCheck::Outcome::kCreated:
        std::cout << "created " << check.topic << "\n";
        break;
      case ingest::TopicCheck::Outcome::kOk:
        std::cout << "ok " << check.topic << "\n";
        break;
      case ingest::TopicCheck::Outcome::kMismatch:
        fits = false;
        for (const auto& mismatch : check.mismatches) {
          std::cout << "mismatch " << check.topic << ": " << mismatch << "\n";
        }
        break;
    }
  }
  if (!fits) {
    std::cerr << "painpoint topics ensure: existing topics differ from what Painpoint needs; "
                 "change them with kafka-configs (configs) or recreate them (partitions)\n";
  }
  return fits ? base::ExitCode::kOk : base::ExitCode::kTopicsMismatch;
}

// Each subcommand: its options as CLI11 fills them, declared by declare_*() before parsing and
// run by run_*() after. The members are named as the command line names them.
struct ServeCommand {
  ServeOptions serve;
  std::string serve_config;
  CLI::App* serve_cmd = nullptr;
};

void declare_serve(CLI::App& app, ServeCommand& command) {
  auto& [serve, serve_config, serve_cmd] = command;
  serve_cmd = app.add_subcommand("serve", "Run the pipeline, the store and the HTTP API");
  serve_cmd->add_option("--brokers", serve.brokers,
                        "Kafka bootstrap servers (default: start the embedded broker)");
  serve_cmd->add_option("--data-dir", serve.data_dir, "RocksDB data directory")
      ->capture_default_str();
  serve_cmd->add_option("--http-port", serve.http_port, "HTTP port (0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--http-address", serve.http_address, "HTTP bind address")
      ->capture_default_str();
  serve_cmd->add_option("--advertise", serve.advertise,
                        "HOST:PORT other instances reach this one's HTTP API at, carried in the "
                        "aggregator consumer's client id (default: the bind address, or the host "
                        "name when binding all interfaces)");
  serve_cmd->add_flag("--forward-requests", serve.forward_requests,
                      "With Apache Kafka: answer API requests about products other instances own "
                      "by forwarding them to the owner (docs/api.md, \"Several instances\")");
  serve_cmd->add_option("--config", serve_config, "Configuration file (key = value lines)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--set", serve.config_overrides,
                        "Override one configuration key: KEY=VALUE, the file's key names "
                        "(e.g. cluster.encoder=static); repeatable, applied after --config");
  serve_cmd
      ->add_option("--partitions", serve.embedded_partitions,
                   "Partitions per topic of the embedded broker (the store records it at its "
                   "first start; later starts need the same)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  serve_cmd
      ->add_option("--broker-port", serve.embedded_port,
                   "Port of the embedded broker (0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option(
      "--encoder", serve.encoder,
      "Sentence encoder file for cluster.encoder = semantic (default path if empty)");
  serve_cmd->add_option("--word-vectors", serve.word_vectors,
                        "Word vectors file, GloVe or distilled token vectors (default: "
                        ".cache/painpoint/glove-100d.bin if present)");
  serve_cmd->add_flag("--sync", serve.sync_writes,
                      "fsync the RocksDB WAL on every commit (survives power loss; slower)");
  serve_cmd->add_option("--min-free-mib", serve.min_free_mib,
                        "Stop committing (exit 3) while the data directory's file system has less "
                        "free space than this, in MiB")
      ->capture_default_str();
  serve_cmd->add_flag("--exit-when-idle", serve.exit_when_idle,
                      "Exit 0 once all input is consumed and stored (benchmarks, tests)");
  serve_cmd
      ->add_option("--api-token", serve.api_token,
                   "Bearer token required by POST /v1/* (prefer the environment variable: "
                   "arguments are visible to other local users)")
      ->envname("PAINPOINT_API_TOKEN");
  serve_cmd
      ->add_option("--api-read-token", serve.api_read_token,
                   "Bearer token required by GET /v1/* (the --api-token is accepted too)")
      ->envname("PAINPOINT_API_READ_TOKEN");
  serve_cmd
      ->add_option("--http-body-limit", serve.http_body_limit,
                   "Largest accepted request body in bytes (larger: 413)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, std::size_t{64} << 20));
}

int run_serve_command(ServeCommand& command) {
  auto& [serve, serve_config, serve_cmd] = command;
  if (!serve_config.empty()) serve.config_file = serve_config;
  const int code = base::to_int(run_serve(serve));
  // Everything Painpoint owns is stopped and the store is closed. Kafka consumers that could
  // not leave their group (broker down) finish tearing down in the background; do not let them
  // hold up the exit (SIGTERM must finish within seconds).
  if (!ingest::await_background_teardown(std::chrono::seconds(1))) {
    spdlog::warn("exiting without waiting for the Kafka group coordinator (broker unreachable)");
    spdlog::default_logger()->flush();
    std::_Exit(code);
  }
  return code;
}

struct BrokerCommand {
  ingest::EmbeddedBrokerConfig broker;
  bool broker_fault_control = false;
  CLI::App* broker_cmd = nullptr;
};

void declare_broker(CLI::App& app, BrokerCommand& command) {
  auto& [broker, broker_fault_control, broker_cmd] = command;
  broker_cmd = app.add_subcommand(
      "broker", "Run a standalone Kafka-protocol broker (in memory) on 127.0.0.1");
  broker_cmd->add_option("--port", broker.port, "TCP port (0: any free port)")
      ->capture_default_str();
  broker_cmd->add_option("--partitions", broker.partitions, "Partitions per Painpoint topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  broker_cmd->add_flag("--fault-control", broker_fault_control,
                       "Read fault-injection commands from stdin (tests; see README)");
}

int run_broker_command(BrokerCommand& command) {
  auto& [broker, broker_fault_control, broker_cmd] = command;
  const std::atomic<bool>& stop = install_stop_signal_handlers();
  return ingest::run_broker(broker, stop, std::cout, std::cerr,
                            broker_fault_control ? STDIN_FILENO : -1);
}

struct ProduceCommand {
  std::string produce_brokers, produce_topic, produce_input, produce_config;
  CLI::App* produce_cmd = nullptr;
};

void declare_produce(CLI::App& app, ProduceCommand& command) {
  auto& [produce_brokers, produce_topic, produce_input, produce_config, produce_cmd] = command;
  produce_cmd = app.add_subcommand(
      "produce", "Send proto3-JSON FeedbackEvents (one per line) to a topic as protobuf");
  produce_cmd->add_option("--brokers", produce_brokers, "Kafka bootstrap servers")->required();
  produce_cmd->add_option("--topic", produce_topic, "Topic, e.g. feedback.support")->required();
  produce_cmd->add_option("--input", produce_input, "JSONL file (default: stdin)");
  produce_cmd->add_option("--config", produce_config, kKafkaConfigHelp)->check(CLI::ExistingFile);
}

struct ClusterCommand {
  ClusterCommandOptions cluster;
  std::string cluster_config, cluster_vectors, cluster_encoder;
  std::vector<std::string> cluster_sets;
  CLI::App* cluster_cmd = nullptr;
};

void declare_cluster(CLI::App& app, ClusterCommand& command) {
  auto& [cluster, cluster_config, cluster_vectors, cluster_encoder, cluster_sets, cluster_cmd] =
      command;
  cluster_cmd = app.add_subcommand(
      "cluster",
      "Cluster a JSONL file of events offline, exactly as serve would, and write each "
      "event's final pain point");
  cluster_cmd->add_option("--input", cluster.input_path, "Events, one proto3-JSON per line")
      ->required()
      ->check(CLI::ExistingFile);
  cluster_cmd->add_option("--output", cluster.output_path, "Assignments JSONL to write")
      ->required();
  cluster_cmd->add_option("--config", cluster_config, "Configuration file")
      ->check(CLI::ExistingFile);
  cluster_cmd->add_option("--word-vectors", cluster_vectors,
                          "Word vectors file, or 'none' (default: the default path if present)");
  cluster_cmd->add_option(
      "--encoder", cluster_encoder,
      "Sentence encoder file for encoder = semantic (default: the default path)");
  cluster_cmd
      ->add_option("--encoder-threads", cluster.encoder_threads,
                   "Threads that encode in semantic mode (0: one per core)")
      ->capture_default_str();
  cluster_cmd
      ->add_option("--threads", cluster.threads,
                   "Threads that cluster, products spread over them; the output is the same for "
                   "any number (0: one per core, at most 8)")
      ->check(CLI::Range(0u, 256u))
      ->capture_default_str();
  cluster_cmd->add_option("--set", cluster_sets,
                          "Override one clustering key: NAME=VALUE (e.g. encoder=static, or "
                          "cluster.encoder=static as in serve's --set)");
}

int run_cluster(ClusterCommand& command) {
  auto& [cluster, cluster_config, cluster_vectors, cluster_encoder, cluster_sets, cluster_cmd] =
      command;
  if (!cluster_config.empty()) cluster.config_path = cluster_config;
  if (!cluster_vectors.empty()) cluster.vectors_path = cluster_vectors;
  if (!cluster_encoder.empty()) cluster.encoder_path = cluster_encoder;
  for (const std::string& set : cluster_sets) {
    const auto eq = set.find('=');
    if (eq == std::string::npos) {
      std::cerr << "painpoint cluster: --set expects NAME=VALUE, got " << set << "\n";
      return base::to_int(base::ExitCode::kBadUsage);
    }
    cluster.config_overrides.emplace_back(set.substr(0, eq), set.substr(eq + 1));
  }
  return base::to_int(run_cluster_command(cluster));
}

struct ReplayCommand {
  CLI::App* replay_cmd = nullptr;
  RebuildOptions rebuild;
  std::string rebuild_config, rebuild_since, rebuild_until, rebuild_order = "arrival";
  CLI::App* rebuild_cmd = nullptr;
  EmitOptions emit;
  std::string emit_since, emit_until, emit_config;
  CLI::App* emit_cmd = nullptr;
  RewindOptions rewind;
  std::string rewind_to, rewind_lookup = "auto", rewind_config;
  CLI::App* rewind_cmd = nullptr;
};

void declare_replay(CLI::App& app, ReplayCommand& command) {
  auto& [replay_cmd, rebuild, rebuild_config, rebuild_since, rebuild_until, rebuild_order,
         rebuild_cmd, emit, emit_since, emit_until, emit_config, emit_cmd, rewind, rewind_to,
         rewind_lookup, rewind_config, rewind_cmd] = command;
  replay_cmd =
      app.add_subcommand("replay", "Operate on the stored feedback history: rebuild, emit, rewind");
  replay_cmd->require_subcommand(1);
  rebuild_cmd = replay_cmd->add_subcommand(
      "rebuild",
      "Recompute pain points from the stored events (offline), keeping ids by member overlap");
  rebuild_cmd->add_option("--data-dir", rebuild.data_dir, "RocksDB data directory")
      ->capture_default_str();
  rebuild_cmd->add_option("--config", rebuild_config, "Configuration to rebuild with")
      ->check(CLI::ExistingFile);
  rebuild_cmd->add_option("--set", rebuild.config_overrides,
                          "Override one configuration key: KEY=VALUE, the file's key names "
                          "(e.g. cluster.encoder=static); repeatable, applied after --config");
  rebuild_cmd->add_option("--encoder", rebuild.encoder,
                          "Sentence encoder file for cluster.encoder = semantic");
  rebuild_cmd->add_option("--word-vectors", rebuild.word_vectors,
                          "Word vectors file (default: the default path if present)");
  rebuild_cmd->add_option("--since", rebuild_since,
                          "Replay events with occurred_at >= this RFC 3339 time");
  rebuild_cmd->add_option("--until", rebuild_until,
                          "Replay events with occurred_at < this RFC 3339 time");
  rebuild_cmd->add_option("--product", rebuild.products,
                          "Product to rebuild (repeatable; "
                          "default: all)");
  rebuild_cmd
      ->add_option("--order", rebuild_order,
                   "arrival: the order serve clustered the events in (the clustering is online, "
                   "so with an unchanged configuration this keeps every id and moves no event); "
                   "occurred-at: (occurred_at, event id), independent of how they arrived")
      ->capture_default_str()
      ->check(CLI::IsMember({"arrival", "occurred-at"}));
  rebuild_cmd->add_flag("--dry-run", rebuild.dry_run, "Print the report, write nothing");
  rebuild_cmd
      ->add_option("--inherit-threshold", rebuild.inherit_threshold,
                   "Minimum member Jaccard for a new pain point to keep an old id")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));

  emit_cmd = replay_cmd->add_subcommand(
      "emit", "Re-publish stored FeedbackEvents in occurred_at order to a topic");
  emit_cmd->add_option("--data-dir", emit.data_dir, "RocksDB data directory")
      ->capture_default_str();
  emit_cmd->add_option("--brokers", emit.brokers, "Kafka bootstrap servers")->required();
  emit_cmd->add_option("--topic", emit.topic, "Topic to publish to")->required();
  emit_cmd->add_option("--config", emit_config, kKafkaConfigHelp)->check(CLI::ExistingFile);
  emit_cmd->add_option("--since", emit_since, "Events with occurred_at >= this RFC 3339 time");
  emit_cmd->add_option("--until", emit_until, "Events with occurred_at < this RFC 3339 time");
  emit_cmd->add_option("--product", emit.products, "Product to emit (repeatable; default: all)");
  emit_cmd->add_option("--rate", emit.rate_per_second, "Events per second (0: unlimited)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));

  rewind_cmd = replay_cmd->add_subcommand(
      "rewind", "Move the aggregator's stored input offsets back to a point in time");
  rewind_cmd->add_option("--data-dir", rewind.data_dir, "RocksDB data directory")
      ->capture_default_str();
  rewind_cmd->add_option("--brokers", rewind.brokers, "Kafka bootstrap servers")->required();
  rewind_cmd->add_option("--to", rewind_to, "RFC 3339 time (Kafka message time)")->required();
  rewind_cmd->add_option("--config", rewind_config, kKafkaConfigHelp)->check(CLI::ExistingFile);
  rewind_cmd->add_option("--topic", rewind.topic, "The aggregator's input topic")
      ->capture_default_str();
  rewind_cmd
      ->add_option("--offset-lookup", rewind_lookup,
                   "auto (broker, checking a 'none' answer by reading), broker, or scan")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "broker", "scan"}));
  rewind_cmd->add_flag("--dry-run", rewind.dry_run, "Print the plan, write nothing");
}

int run_replay(ReplayCommand& command) {
  auto& [replay_cmd, rebuild, rebuild_config, rebuild_since, rebuild_until, rebuild_order,
         rebuild_cmd, emit, emit_since, emit_until, emit_config, emit_cmd, rewind, rewind_to,
         rewind_lookup, rewind_config, rewind_cmd] = command;
  auto time_arg = [](const std::string& text, const char* name, std::optional<TimePoint>* out) {
    if (text.empty()) return true;
    *out = parse_timestamp(text);
    if (!*out)
      std::cerr << "painpoint replay: " << name << ": not an RFC 3339 time: " << text << "\n";
    return out->has_value();
  };
  if (*rebuild_cmd) {
    if (!rebuild_config.empty()) rebuild.config_file = rebuild_config;
    rebuild.order =
        rebuild_order == "occurred-at" ? ReplayOrder::kOccurredAt : ReplayOrder::kArrival;
    if (!time_arg(rebuild_since, "--since", &rebuild.since) ||
        !time_arg(rebuild_until, "--until", &rebuild.until)) {
      return base::to_int(base::ExitCode::kBadUsage);
    }
    return base::to_int(run_replay_rebuild(rebuild));
  }
  if (*emit_cmd) {
    if (!time_arg(emit_since, "--since", &emit.since) ||
        !time_arg(emit_until, "--until", &emit.until) ||
        !load_kafka_settings(emit_config, "replay emit", &emit.kafka)) {
      return base::to_int(base::ExitCode::kBadUsage);
    }
    return base::to_int(run_replay_emit(emit));
  }
  if (*rewind_cmd) {
    std::optional<TimePoint> to;
    if (!time_arg(rewind_to, "--to", &to) ||
        !load_kafka_settings(rewind_config, "replay rewind", &rewind.kafka)) {
      return base::to_int(base::ExitCode::kBadUsage);
    }
    rewind.to = *to;
    rewind.lookup = rewind_lookup == "broker" ? OffsetLookup::kBroker
                    : rewind_lookup == "scan" ? OffsetLookup::kScan
                                              : OffsetLookup::kAuto;
    return base::to_int(run_replay_rewind(rewind));
  }
  return base::to_int(base::ExitCode::kBadUsage);
}

struct TopicsCommand {
  TopicsEnsureOptions topics;
  CLI::App* topics_cmd = nullptr;
};

void declare_topics(CLI::App& app, TopicsCommand& command) {
  auto& [topics, topics_cmd] = command;
  topics_cmd = app.add_subcommand("topics", "Set up Painpoint's Kafka topics");
  topics_cmd->require_subcommand(1);
  auto* ensure_cmd = topics_cmd->add_subcommand(
      "ensure", "Create the missing topics and check the existing ones (partitions, configs)");
  ensure_cmd->add_option("--brokers", topics.brokers, "Kafka bootstrap servers")->required();
  ensure_cmd
      ->add_option("--partitions", topics.partitions,
                   "Partitions of each created topic; the repartition topic must have exactly "
                   "this many")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  ensure_cmd
      ->add_option("--replication-factor", topics.replication_factor,
                   "Replicas of each created topic (-1: the broker's default)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 100));
  ensure_cmd->add_option("--config", topics.config_path, kKafkaConfigHelp)
      ->check(CLI::ExistingFile);
}

struct ConfigCommand {
  std::string config_path;
  CLI::App* config_cmd = nullptr;
};

void declare_config(CLI::App& app, ConfigCommand& command) {
  auto& [config_path, config_cmd] = command;
  config_cmd = app.add_subcommand("config", "Print every configuration key with its value");
  config_cmd->add_option("--config", config_path, "File to check and print (default: defaults)")
      ->check(CLI::ExistingFile);
}

int run_config(const ConfigCommand& command) {
  const auto& [config_path, config_cmd] = command;
  ServiceConfig config;
  if (!config_path.empty()) {
    auto loaded = load_service_config(config_path);
    if (!loaded.config) {
      std::cerr << "painpoint config: " << config_path << ": " << loaded.error << "\n";
      return base::to_int(base::ExitCode::kBadUsage);
    }
    config = std::move(*loaded.config);
  }
  std::cout << describe_service_config(config);
  return base::to_int(base::ExitCode::kOk);
}

int run_import_command(ImportOptions& import_options) {
  ingest::ClientSettings kafka;
  if (!load_kafka_settings(import_options.config_path, "import", &kafka)) {
    return base::to_int(base::ExitCode::kBadUsage);
  }
  import_options.producer_extra = kafka.for_role(ingest::ClientRole::kProducer);
  return base::to_int(run_import(import_options));
}

}  // namespace

int run_cli(int argc, char** argv) {
  install_crash_handlers();
  CLI::App app{"Painpoint: ranked, evidence-backed pain points per product from feedback streams",
               "painpoint"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return std::string("painpoint " PAINPOINT_VERSION " (librdkafka ") +
           ingest::librdkafka_version() + ")";
  });
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  ServeCommand serve;
  declare_serve(app, serve);
  BrokerCommand broker;
  declare_broker(app, broker);
  ProduceCommand produce;
  declare_produce(app, produce);
  ClusterCommand cluster;
  declare_cluster(app, cluster);
  ReplayCommand replay;
  declare_replay(app, replay);
  ImportOptions import_options;
  CLI::App* import_cmd = add_import_subcommand(app, &import_options);
  TopicsCommand topics;
  declare_topics(app, topics);
  ConfigCommand config;
  declare_config(app, config);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  // Logs go to stderr so that stdout stays machine-readable (broker address, summaries).
  spdlog::set_default_logger(spdlog::stderr_color_mt("painpoint"));

  if (*serve.serve_cmd) return run_serve_command(serve);
  if (*broker.broker_cmd) return run_broker_command(broker);
  if (*import_cmd) return run_import_command(import_options);
  if (*cluster.cluster_cmd) return run_cluster(cluster);
  if (*replay.replay_cmd) return run_replay(replay);
  if (*topics.topics_cmd) return base::to_int(run_topics_ensure(topics.topics));
  if (*produce.produce_cmd) {
    return base::to_int(run_produce_command(produce.produce_brokers, produce.produce_topic,
                                            produce.produce_input, produce.produce_config));
  }
  if (*config.config_cmd) return run_config(config);
  return base::to_int(base::ExitCode::kBadUsage);
}
}  // namespace painpoint::service

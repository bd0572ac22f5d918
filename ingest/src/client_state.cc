#include "client_state.h"

#include <spdlog/spdlog.h>

#include <string_view>

#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest::detail {

namespace {

// Appended to a connection the broker closed before answering the first request: the usual cause
// is a listener that expects TLS (or SASL) from a client configured without it.
constexpr std::string_view kClosedDuringApiVersionHint =
    ": the broker closed the connection before answering ApiVersion; check that "
    "kafka.security.protocol matches the listener (a plaintext client on an SSL listener?)";

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const char* name = rk != nullptr ? rd_kafka_name(rk) : "rdkafka";
  if (level <= 3) {
    spdlog::error("kafka {} [{}]: {}", name, fac, buf);
  } else if (level == 4) {
    spdlog::warn("kafka {} [{}]: {}", name, fac, buf);
  } else if (level <= 6) {
    spdlog::info("kafka {} [{}]: {}", name, fac, buf);
  } else {
    spdlog::debug("kafka {} [{}]: {}", name, fac, buf);
  }
}

// The clients' log lines also go to their state: some connection failures reach the application
// only as a log line (see ClientState::on_log).
void client_log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  log_cb(rk, level, fac, buf);
  if (void* opaque = rk != nullptr ? rd_kafka_opaque(rk) : nullptr; opaque != nullptr) {
    static_cast<ClientState*>(opaque)->on_log(fac, buf);
  }
}

void error_cb(rd_kafka_t* /*rk*/, int err, const char* reason, void* opaque) {
  static_cast<ClientState*>(opaque)->on_error(static_cast<rd_kafka_resp_err_t>(err), reason);
}

// librdkafka reports every broker's connection state in its statistics; a broker in state "UP"
// means the cluster is reachable again after an ALL_BROKERS_DOWN.
int stats_cb(rd_kafka_t* /*rk*/, char* json, size_t json_len, void* opaque) {
  const std::string_view stats(json, json_len);
  static_cast<ClientState*>(opaque)->on_broker_state(stats.find("\"state\":\"UP\"") !=
                                                     std::string_view::npos);
  return 0;  // librdkafka frees json
}

}  // namespace

void install_log_cb(rd_kafka_conf_t* conf) { rd_kafka_conf_set_log_cb(conf, log_cb); }

void install_common_cbs(rd_kafka_conf_t* conf, ClientState* state) {
  rd_kafka_conf_set_log_cb(conf, client_log_cb);
  rd_kafka_conf_set_opaque(conf, state);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_stats_cb(conf, stats_cb);
}

Status with_connection_problem(Status status, const ClientState& state) {
  if (const std::string problem = state.connection_problem(); !problem.empty()) {
    status.message += " (last connection error: " + problem + ")";
  }
  return status;
}

std::string ClientState::connection_problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

void ClientState::on_broker_state(bool some_broker_up) {
  reachable.store(some_broker_up);
  if (!some_broker_up) return;
  std::lock_guard lock(mutex_);
  problem_.clear();
}

void ClientState::note_problem(const char* reason) {
  std::lock_guard lock(mutex_);
  problem_ = reason;
}

void ClientState::on_log(std::string_view facility, std::string_view line) {
  // librdkafka logs a connection the broker closed at info level and raises no error for it. Two
  // such closes name a wrong security.protocol: before the broker answered ApiVersion (librdkafka
  // 2.12 no longer adds its "(connecting to a SSL listener?)" hint), and during the TLS handshake
  // (a TLS client on a plaintext listener, when the close is seen before a handshake read fails).
  if (facility != "FAIL" || reachable.load() ||
      line.find("Disconnected") == std::string_view::npos) {
    return;
  }
  std::string problem(line);
  if (line.find("in state APIVERSION_QUERY") != std::string_view::npos) {
    problem += kClosedDuringApiVersionHint;
    if (!warned_closed_during_api_version_.exchange(true))
      spdlog::warn("kafka {}: {}", what, problem);
  } else if (line.find("in state SSL_HANDSHAKE") == std::string_view::npos) {
    return;
  }
  std::lock_guard lock(mutex_);
  problem_ = std::move(problem);
}

void ClientState::on_error(rd_kafka_resp_err_t code, const char* reason) {
  switch (code) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
      // librdkafka has logged these already (its FAIL lines, at most once per reconnect
      // back-off). Single connections fail routinely (idle reaping, restarts) and it reconnects;
      // while no broker is reachable the last one says why.
      spdlog::debug("kafka {}: {}", what, reason);
      if (!reachable.load()) note_problem(reason);
      return;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: {
      reachable.store(false);
      spdlog::warn("kafka {}: all brokers down: {}", what, reason);
      std::lock_guard lock(mutex_);
      if (problem_.empty()) problem_ = std::string("all brokers down: ") + reason;
      return;
    }
    case RD_KAFKA_RESP_ERR__FATAL:
      spdlog::error("kafka {}: fatal error: {}", what, reason);
      return;
    default:
      spdlog::warn("kafka {}: {} ({})", what, reason, rd_kafka_err2name(code));
  }
}

}  // namespace painpoint::ingest::detail

namespace painpoint::ingest {

std::string unreachable_detail(const std::string& connection_problem) {
  std::string text = "Kafka broker unreachable";
  if (!connection_problem.empty()) text += ": " + connection_problem;
  return text;
}

}  // namespace painpoint::ingest

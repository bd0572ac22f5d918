#include "painpoint/ingest/embedded_broker.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <ostream>
#include <thread>

#include "painpoint/ingest/kafka_handles.h"
// clang-format off
#include <librdkafka/rdkafka_mock.h>  // needs rdkafka.h first
// clang-format on
#include "painpoint/ingest/topics.h"

// ---------------------------------------------------------------------------------------------
// Fixed port for the mock cluster.
//
// librdkafka 2.0.2's mock cluster has no way to choose its listening port:
// rd_kafka_mock_broker_new() always binds 127.0.0.1:0 and advertises whatever port the kernel
// picked (rd_kafka_mock_cluster_new() has no port argument and no configuration property
// reaches the listener). `painpoint broker --port 9092` must nevertheless listen on, and
// advertise, 9092: clients bootstrap from the printed address and then connect to the advertised
// one, so a port-forwarding proxy in front of the mock would still leak the random port.
//
// The listener is created synchronously inside rd_kafka_mock_cluster_new(), on the calling
// thread, with a plain bind() call that resolves through the PLT. This executable therefore
// provides bind(): while a thread has asked for a port (only inside EmbeddedBroker::start), the
// first bind of 127.0.0.1:0 on that thread gets that port instead; every other bind() in the
// process goes straight to libc. EmbeddedBroker::start checks the port it got and fails loudly
// if this ever stops working (e.g. a librdkafka that binds elsewhere).
namespace {
thread_local std::uint16_t t_requested_port = 0;
}  // namespace

extern "C" int bind(int fd, const struct sockaddr* addr, socklen_t len) noexcept {
  using BindFn = int (*)(int, const struct sockaddr*, socklen_t);
  static const auto real_bind = reinterpret_cast<BindFn>(dlsym(RTLD_NEXT, "bind"));
  if (t_requested_port != 0 && addr != nullptr && addr->sa_family == AF_INET &&
      len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in sin;
    std::memcpy(&sin, addr, sizeof sin);
    if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
      sin.sin_port = htons(t_requested_port);
      t_requested_port = 0;  // brokers 2..N keep ephemeral ports
      return real_bind(fd, static_cast<const struct sockaddr*>(static_cast<const void*>(&sin)),
                       sizeof sin);
    }
  }
  return real_bind(fd, addr, len);
}

namespace painpoint::ingest {
namespace {

// librdkafka 2.0.2 aborts (an assertion in rd_kafka_mock_cluster_destroy) when the mock's listener
// cannot bind, so a busy port has to be detected before the mock tries it.
bool port_is_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // as the mock does
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  const bool ok =
      ::bind(fd, static_cast<const sockaddr*>(static_cast<const void*>(&sin)), sizeof sin) == 0 &&
      ::listen(fd, 1) == 0;
  ::close(fd);
  return ok;
}

// The mock cluster's thread (librdkafka 2.12) serves its op queue and only then drains its
// wake-up pipe, so an op queued in between loses its wake-up and waits for the thread's 1 s poll
// timeout. Synchronous ops issued back to back hit that window often (three of the eight topic
// creations at start, 3 s); a pause after each reply lets the thread finish the drain first.
constexpr std::chrono::milliseconds kMockOpSpacing{2};

}  // namespace

struct EmbeddedBroker::Impl {
  detail::KafkaPtr rk;  // the mock cluster needs a client handle to live in
  rd_kafka_mock_cluster_t* cluster = nullptr;
  std::string bootstrap;
  std::uint16_t port = 0;

  ~Impl() {
    // The cluster must go before the handle it was created on.
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
  }
};

EmbeddedBroker::EmbeddedBroker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EmbeddedBroker::~EmbeddedBroker() = default;

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::start(const EmbeddedBrokerConfig& config) {
  if (config.num_brokers < 1 || config.partitions < 1) {
    return Status::Error(KafkaErrc::kInvalidConfig, "need at least one broker and one partition");
  }
  // The handle never connects anywhere; quiet its "no bootstrap.servers" notice.
  auto conf = detail::make_conf({{"log_level", "3"}, {"client.id", "painpoint-embedded"}});
  if (!conf.ok()) return conf.status();
  detail::install_log_cb(conf->get());
  char errstr[512];
  detail::KafkaPtr rk(rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof errstr));
  if (!rk) return Status::Error(KafkaErrc::kInvalidConfig, errstr);
  (void)conf->release();

  if (config.port != 0 && !port_is_free(config.port)) {
    return Status::Error(
        KafkaErrc::kTransport,
        "cannot listen on 127.0.0.1:" + std::to_string(config.port) + ": address in use");
  }
  auto impl = std::make_unique<Impl>();
  t_requested_port = config.port;
  impl->cluster = rd_kafka_mock_cluster_new(rk.get(), config.num_brokers);
  t_requested_port = 0;
  impl->rk = std::move(rk);
  if (impl->cluster == nullptr) {
    return Status::Error(
        KafkaErrc::kTransport,
        config.port != 0
            ? "cannot listen on 127.0.0.1:" + std::to_string(config.port) + " (port in use?)"
            : std::string("cannot create the mock cluster"));
  }
#if RD_KAFKA_VERSION >= 0x020c0000
  rd_kafka_mock_group_initial_rebalance_delay_ms(
      impl->cluster, detail::to_timeout_ms(config.group_initial_rebalance_delay));
#endif
  impl->bootstrap = rd_kafka_mock_cluster_bootstraps(impl->cluster);
  const auto colon = impl->bootstrap.find(':');
  const auto comma = impl->bootstrap.find(',');
  impl->port = static_cast<std::uint16_t>(std::stoi(impl->bootstrap.substr(
      colon + 1, comma == std::string::npos ? std::string::npos : comma - colon - 1)));
  if (config.port != 0 && impl->port != config.port) {
    return Status::Error(KafkaErrc::kTransport, "mock cluster listens on " + impl->bootstrap +
                                                    ", not on port " + std::to_string(config.port) +
                                                    " (the bind() override did not take effect)");
  }

  auto broker = std::unique_ptr<EmbeddedBroker>(new EmbeddedBroker(std::move(impl)));
  if (config.create_painpoint_topics) {
    bool first = true;
    for (const auto& spec : painpoint_topics(config.partitions)) {
      if (!first) std::this_thread::sleep_for(kMockOpSpacing);
      first = false;
      if (auto s = broker->create_topic(spec.name, spec.partitions); !s.ok()) return s;
    }
  }
  spdlog::debug("embedded broker listening on {}", broker->bootstrap());
  return broker;
}

std::string EmbeddedBroker::bootstrap() const { return impl_->bootstrap; }
std::uint16_t EmbeddedBroker::port() const { return impl_->port; }

Status EmbeddedBroker::create_topic(const std::string& name, int partitions) {
  return detail::status_from(
      rd_kafka_mock_topic_create(impl_->cluster, name.c_str(), partitions, 1),
      "create topic " + name);
}

Status EmbeddedBroker::set_broker_down(std::int32_t broker_id) {
  return detail::status_from(rd_kafka_mock_broker_set_down(impl_->cluster, broker_id),
                             "set broker down");
}

Status EmbeddedBroker::set_broker_up(std::int32_t broker_id) {
  return detail::status_from(rd_kafka_mock_broker_set_up(impl_->cluster, broker_id),
                             "set broker up");
}

Status EmbeddedBroker::set_broker_rtt(std::int32_t broker_id, std::chrono::milliseconds rtt) {
  return detail::status_from(
      rd_kafka_mock_broker_set_rtt(impl_->cluster, broker_id, detail::to_timeout_ms(rtt)),
      "set broker rtt");
}

void EmbeddedBroker::push_request_errors(std::int16_t api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (int e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->cluster, api_key, codes.size(), codes.data());
}

void EmbeddedBroker::clear_request_errors(std::int16_t api_key) {
  rd_kafka_mock_clear_request_errors(impl_->cluster, api_key);
}

namespace {

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t' || line[pos] == '\r')) ++pos;
    std::size_t end = pos;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
    if (end > pos) words.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

template <typename Int>
std::optional<Int> parse_number(std::string_view word) {
  Int value{};
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
  return value;
}

std::string reply(const Status& status) {
  return status.ok() ? "ok" : "error: " + status.to_string();
}

}  // namespace

std::string apply_fault_command(EmbeddedBroker& broker, std::string_view line) {
  const auto words = split_words(line);
  if (words.empty() || words[0].front() == '#') return "ok";
  const std::string_view command = words[0];
  const auto arity = [&](std::size_t n) { return words.size() == n + 1; };
  if ((command == "down" || command == "up") && arity(1)) {
    const auto id = parse_number<std::int32_t>(words[1]);
    if (!id) return "error: broker id must be an integer";
    return reply(command == "down" ? broker.set_broker_down(*id) : broker.set_broker_up(*id));
  }
  if (command == "rtt" && arity(2)) {
    const auto id = parse_number<std::int32_t>(words[1]);
    const auto ms = parse_number<std::int32_t>(words[2]);
    if (!id || !ms || *ms < 0) return "error: usage: rtt <broker_id> <ms>";
    return reply(broker.set_broker_rtt(*id, std::chrono::milliseconds(*ms)));
  }
  if (command == "errors" && arity(3)) {
    const auto api = parse_number<std::int16_t>(words[1]);
    const auto count = parse_number<int>(words[2]);
    const auto code = parse_number<int>(words[3]);
    if (!api || *api < 0 || !count || *count < 1 || *count > 100'000 || !code) {
      return "error: usage: errors <api_key> <count 1..100000> <error_code>";
    }
    broker.push_request_errors(*api, std::vector<int>(static_cast<std::size_t>(*count), *code));
    return "ok";
  }
  if (command == "clear" && arity(1)) {
    const auto api = parse_number<std::int16_t>(words[1]);
    if (!api || *api < 0) return "error: usage: clear <api_key>";
    broker.clear_request_errors(*api);
    return "ok";
  }
  return "error: unknown command (down ID | up ID | rtt ID MS | errors API COUNT CODE | clear API)";
}

int run_broker(const EmbeddedBrokerConfig& config, const std::atomic<bool>& stop, std::ostream& out,
               std::ostream& err, int control_fd) {
  auto broker = EmbeddedBroker::start(config);
  if (!broker.ok()) {
    spdlog::error("embedded broker: {}", broker.status().to_string());
    err << "painpoint broker: " << broker.status().to_string() << std::endl;
    return 1;
  }
  // Scripts read the first line to learn where to connect; it must not sit in a buffer.
  out << (*broker)->bootstrap() << std::endl;
  spdlog::info("embedded broker listening on {}", (*broker)->bootstrap());
  std::string pending;  // control input not yet ended by a newline
  while (!stop.load()) {
    if (control_fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    // Polled with a timeout rather than read blocking, so that a stop signal is seen at once.
    pollfd pfd{control_fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 100);
    if (ready <= 0) continue;  // timeout, or EINTR from the stop signal
    char buffer[4096];
    const ssize_t n = ::read(control_fd, buffer, sizeof buffer);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      spdlog::info("embedded broker: fault-control input ended");
      control_fd = -1;
      continue;
    }
    pending.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      const std::string answer = apply_fault_command(**broker, line);
      spdlog::info("embedded broker: fault control '{}': {}", line, answer);
      out << answer << std::endl;
    }
  }
  spdlog::info("embedded broker stopping");
  return 0;
}

}  // namespace painpoint::ingest

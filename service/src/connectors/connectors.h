#pragma once

// Webhooks from support systems: POST /v1/connectors/{zendesk|intercom|jira|generic}.
// Each request's signature is checked with the system's own scheme, its payload is mapped to a
// FeedbackEvent and then takes the path of POST /v1/feedback (validation, normalization, Kafka).
// See docs/connectors.md for the schemes, the mapped fields and the configuration keys.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "painpoint/base/status.h"
#include "painpoint/v1/feedback.pb.h"

namespace painpoint::service {

class Router;
class FeedbackSink;
struct ApiConfig;
struct HttpRequest;

enum class ConnectorSystem { kZendesk, kIntercom, kJira, kGeneric };

inline constexpr ConnectorSystem kConnectorSystems[] = {
    ConnectorSystem::kZendesk, ConnectorSystem::kIntercom, ConnectorSystem::kJira,
    ConnectorSystem::kGeneric};

std::string_view system_name(ConnectorSystem system);
std::optional<ConnectorSystem> parse_system(std::string_view name);

// The `connectors.<system>.*` keys of one system, as written in the configuration file.
struct ConnectorConfig {
  std::filesystem::path secret_file;  // empty: PAINPOINT_<SYSTEM>_SECRET, else disabled
  std::string default_product;        // when no product mapping matches
  std::string url_base;               // e.g. https://acme.zendesk.com (links to tickets)
  // "<selector>.<value>" -> product id, e.g. "brand.360001" -> "mobile-app".
  std::map<std::string, std::string, std::less<>> product_by;
  // generic only: field name (id, text, product, account, arr, time, url) -> JSON pointer.
  std::map<std::string, std::string, std::less<>> pointers;
};

struct ConnectorsConfig {
  std::map<ConnectorSystem, ConnectorConfig> systems;
  // `account_id,arr_cents` lines: the ARR of accounts whose payload does not carry one.
  std::filesystem::path accounts_file;
  // How far a signed timestamp may lie from the server's clock, either way (replay protection).
  std::chrono::seconds max_timestamp_skew{300};
};

// Applies one `connectors.*` key of the configuration file. nullopt on success, else the reason.
std::optional<std::string> apply_connector_key(ConnectorsConfig& config, std::string_view key,
                                               std::string_view value);
// The keys set in `config`, in the file format (secrets themselves are never in the config).
std::string describe_connectors(const ConnectorsConfig& config);

// A secret file's content without its trailing newline; nullopt when it cannot be read.
// (Also the alert webhooks' secrets.)
std::optional<std::string> read_secret_file(const std::filesystem::path& path);

// A connector ready to serve: its configuration plus the secret read at start.
struct EnabledConnector {
  ConnectorConfig config;
  std::string secret;
};

struct Connectors {
  std::map<ConnectorSystem, EnabledConnector> enabled;  // systems without a secret are absent
  std::map<std::string, std::int64_t, std::less<>> arr_by_account;
  std::chrono::seconds max_timestamp_skew{300};
};

// Reads the secrets (file, else environment) and the accounts file. An error names what is wrong
// (an unreadable file, a generic connector without id/text pointers) but never a secret.
struct ConnectorsLoad {
  std::optional<Connectors> connectors;
  std::string error;
};
ConnectorsLoad load_connectors(const ConnectorsConfig& config);

// The outcome of checking and mapping one webhook request.
enum class ConnectorErrc {
  kOk = 0,
  kBadSignature,    // 401: missing or wrong signature
  kStaleTimestamp,  // 401: signed timestamp missing or beyond max_timestamp_skew
  kMalformed,       // 400: not JSON, or a field the mapping needs is missing or of the wrong type
};

// Stable lowercase name, e.g. "bad_signature".
std::string_view to_string(ConnectorErrc code);
// The code base::Result uses when it is built from an OK status (a programming error).
constexpr ConnectorErrc result_without_value_code(ConnectorErrc) {
  return ConnectorErrc::kMalformed;
}

using ConnectorStatus = base::Status<ConnectorErrc>;

// Checks the request's signature with `secret` under `system`'s scheme (constant-time compare).
ConnectorStatus verify_signature(ConnectorSystem system, const HttpRequest& request,
                                 std::string_view secret, std::chrono::seconds max_skew,
                                 std::chrono::system_clock::time_point now);

// A payload mapped to a FeedbackEvent, or the reason it carries no feedback (an event type that
// is not subscribed for, an agent's comment): those are acknowledged so the system does not retry.
struct MappedPayload {
  v1::FeedbackEvent event;
  // Candidate product selectors, most specific first: ("tag", "billing"), ("brand", "360001").
  std::vector<std::pair<std::string, std::string>> product_keys;
  std::string ignored;  // non-empty: no event
};

// Maps `body` (the raw JSON of a webhook) without deciding the product; the event id is derived
// from the system's own ids, so a redelivery maps to the same id.
ConnectorStatus map_payload(ConnectorSystem system, std::string_view body,
                            const ConnectorConfig& config, MappedPayload* out);

// Sets the product (the first product_by match, else the payload's own for generic, else the
// default) and the ARR from the accounts file when the payload carried none.
void resolve_product_and_arr(const EnabledConnector& connector, const Connectors& connectors,
                             MappedPayload* mapped);

// Registers POST /v1/connectors/{system}. `connectors` and `sink` must outlive the server.
void add_connector_routes(Router& router, const Connectors& connectors, FeedbackSink* sink,
                          const ApiConfig& config);

}  // namespace painpoint::service

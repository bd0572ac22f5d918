#pragma once

// librdkafka properties chosen by the operator (TLS, SASL, timeouts, ...), applied to every Kafka
// client Painpoint makes. The service's configuration file fills them from its `kafka.*` keys.
//
// Some properties carry Painpoint's delivery guarantees (manual commits, idempotent producer,
// its own offset reset, the murmur2 partitioner, the group ids) or feed its readiness checks;
// those stay Painpoint's and are refused here with the reason.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "painpoint/ingest/status.h"

namespace painpoint::ingest {

enum class ClientRole { kConsumer, kProducer, kAdmin };

using ClientProperties = std::map<std::string, std::string>;

struct ClientSettings {
  ClientProperties all;  // every client
  ClientProperties consumer;
  ClientProperties producer;
  ClientProperties admin;

  // `all` overlaid with the properties of `role` (the role's value wins).
  ClientProperties for_role(ClientRole role) const;
  ClientProperties& of_role(ClientRole role);
};

// Why Painpoint must set `property` itself on clients of `role`; nullopt when the operator may.
std::optional<std::string_view> reserved_property_reason(ClientRole role,
                                                         std::string_view property);

// True for properties whose values are secrets: never logged, printed as "<redacted>".
bool is_secret_property(std::string_view property);

// kInvalidConfig when librdkafka does not know `property` or refuses `value`; the message names
// the property and, for a secret property, never contains the value.
Status check_client_property(const std::string& property, const std::string& value);

}  // namespace painpoint::ingest

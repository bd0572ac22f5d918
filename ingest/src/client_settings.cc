#include "painpoint/ingest/client_settings.h"

#include <array>
#include <utility>

#include "painpoint/ingest/kafka_handles.h"

namespace painpoint::ingest {

namespace {

struct Reserved {
  std::string_view property;
  bool consumer, producer, admin;
  std::string_view reason;
};

// Each entry says why the service has to own the property; the roles it applies to are the
// roles whose behaviour depends on it.
constexpr std::array kReserved{
    Reserved{"bootstrap.servers", true, true, true, "the brokers come from --brokers"},
    Reserved{"metadata.broker.list", true, true, true, "the brokers come from --brokers"},
    Reserved{"statistics.interval.ms", true, true, true,
             "the statistics tell readiness whether a broker is reachable"},
    Reserved{"group.id", true, false, false,
             "Painpoint names its consumer groups (painpoint-ingest, painpoint-aggregator)"},
    Reserved{"enable.auto.commit", true, false, false,
             "offsets are committed only after their events are stored or forwarded"},
    Reserved{"enable.auto.offset.store", true, false, false,
             "offsets are committed only after their events are stored or forwarded"},
    Reserved{"auto.offset.reset", true, false, false,
             "Painpoint resets offsets itself so that data lost to retention is counted"},
    Reserved{"isolation.level", true, false, false,
             "read_committed keeps aborted transactional input out of the store"},
    Reserved{"enable.partition.eof", true, false, false,
             "the consumer loops do not expect end-of-partition events"},
    Reserved{"enable.idempotence", false, true, false,
             "retries must not duplicate or reorder events, summaries and dead letters"},
    Reserved{"acks", false, true, false,
             "an event counts as forwarded only when all in-sync replicas have it"},
    Reserved{"request.required.acks", false, true, false,
             "an event counts as forwarded only when all in-sync replicas have it"},
    Reserved{"partitioner", false, true, false,
             "products map to partitions by murmur2, as in Java clients and the aggregator"},
    Reserved{"transactional.id", false, true, false,
             "Painpoint does not use Kafka transactions (see DESIGN.md)"},
    Reserved{"allow.auto.create.topics", false, false, true,
             "topic checks must not create the topics they look at"},
};

bool applies(const Reserved& r, ClientRole role) {
  switch (role) {
    case ClientRole::kConsumer:
      return r.consumer;
    case ClientRole::kProducer:
      return r.producer;
    case ClientRole::kAdmin:
      return r.admin;
  }
  return false;
}

}  // namespace

ClientProperties ClientSettings::for_role(ClientRole role) const {
  ClientProperties merged = all;
  const ClientProperties& own = role == ClientRole::kConsumer   ? consumer
                                : role == ClientRole::kProducer ? producer
                                                                : admin;
  for (const auto& [name, value] : own) merged[name] = value;
  return merged;
}

ClientProperties& ClientSettings::of_role(ClientRole role) {
  return role == ClientRole::kConsumer   ? consumer
         : role == ClientRole::kProducer ? producer
                                         : admin;
}

std::optional<std::string_view> reserved_property_reason(ClientRole role,
                                                         std::string_view property) {
  for (const Reserved& r : kReserved) {
    if (r.property == property && applies(r, role)) return r.reason;
  }
  return std::nullopt;
}

bool is_secret_property(std::string_view property) {
  // librdkafka's own sensitive properties: sasl.password, ssl.key.password,
  // ssl.keystore.password, sasl.oauthbearer.client.secret, ssl.key.pem, sasl.oauthbearer.config.
  return property.find("password") != std::string_view::npos ||
         property.find("secret") != std::string_view::npos || property == "ssl.key.pem" ||
         property == "ssl_key" || property == "sasl.oauthbearer.config";
}

Status check_client_property(const std::string& property, const std::string& value) {
  auto conf = detail::make_conf({{property, value}});
  return conf.ok() ? Status::Ok() : conf.status();
}

}  // namespace painpoint::ingest

#pragma once

// The `kafka.*` keys of the configuration file: librdkafka properties for Painpoint's clients.
//
//   kafka.<property> = value            every client (consumers, producers, admin)
//   kafka.consumer.<property> = value   consumers only (also .producer., .admin.); wins over
//   kafka.* kafka.<...>.<property>_file = PATH  the value is the file's content (one trailing
//   newline cut) kafka.<...>.<property>_env = NAME   the value is the environment variable NAME
//   kafka.group_instance_id = ID        the consumers' group.instance.id (also _env, _file)
//
// Secrets (passwords, private keys) belong in _file or _env keys: the configuration file cuts
// values at `#`, and `painpoint config` shows a secret written directly only as <redacted>.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/ingest/client_settings.h"

namespace painpoint::service {

struct KafkaKeys {
  ingest::ClientSettings settings;
  // The keys as written, with the value `painpoint config` may show (file paths and variable
  // names as written; a secret written directly as <redacted>).
  std::vector<std::pair<std::string, std::string>> shown;
};

// True for `kafka.` keys, which apply_kafka_key handles.
bool is_kafka_key(std::string_view key);

// Resolves and checks one `kafka.` key (reserved properties, unknown properties, values librdkafka
// refuses, unreadable files, unset variables). The error names the key and never holds a secret.
std::optional<std::string> apply_kafka_key(KafkaKeys& keys, std::string_view key,
                                           std::string_view value);

// The lines `painpoint config` prints for the kafka keys: a comment on their form, then `shown`.
std::string describe_kafka_keys(const KafkaKeys& keys);

}  // namespace painpoint::service

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "painpoint/aggregator/encoder.h"
#include "painpoint/aggregator/word_vectors.h"
#include "painpoint/base/exit_code.h"

namespace painpoint::service {

struct ServeOptions {
  // Empty: start the embedded broker in-process.
  std::string brokers;
  std::filesystem::path data_dir = "painpoint-data";
  std::string http_address = "127.0.0.1";
  std::uint16_t http_port = 8080;
  // Where other instances reach this one's HTTP API (host:port). Empty: the bind address and the
  // bound port, or the host name when binding all interfaces (advertised_address()).
  std::string advertise;
  // Forward API requests to the instance that owns their data (routing/forwarding.h), on a
  // cluster that describes consumer groups. Off by default: librdkafka up to 2.14.1 can abort
  // the process on a DescribeConsumerGroups that fails to send while the broker reconnects
  // (librdkafka #4605), and forwarding asks every second.
  bool forward_requests = false;
  int embedded_partitions = 16;
  std::uint16_t embedded_port = 0;
  bool sync_writes = false;
  // Commits are refused (the aggregator stage stops, exit 3) while the data directory's file
  // system has less free space than this (store::StoreOptions::min_free_bytes).
  std::uint64_t min_free_mib = 64;
  // Exit 0 once every input topic is consumed and stored (benchmarks, demos, tests).
  bool exit_when_idle = false;
  std::optional<std::filesystem::path> config_file;
  // "key=value" settings over the file's (--set), in the file's key names.
  std::vector<std::string> config_overrides;
  // GloVe vectors for the clustering (scripts/fetch-embeddings.sh). Empty: the default path if
  // the file exists there, else sparse features only (with a warning).
  std::filesystem::path word_vectors;
  // Sentence encoder for cluster.encoder = semantic (scripts/fetch-encoder.sh). Empty: the
  // default path; a semantic configuration without a usable encoder does not start.
  std::filesystem::path encoder;
  // Bearer tokens of the HTTP API (empty: that guard is off; see ApiAuth in api.h).
  std::string api_token;
  std::string api_read_token;
  std::size_t http_body_limit = 1024 * 1024;  // larger request bodies -> 413
};

// The file load_vectors_for() and load_encoder_for() read for `requested` (empty: no word
// vectors, the default file being absent).
std::filesystem::path word_vectors_path_for(const std::filesystem::path& requested);
std::filesystem::path encoder_path_for(const std::filesystem::path& requested);

// Loads `requested`, or the default vectors file when `requested` is empty and that file exists
// (logs a warning and returns no vectors when it does not). Shared by serve and cluster.
aggregator::LoadedVectors load_vectors_for(const std::filesystem::path& requested);

// Loads `requested`, or the default encoder file when it is empty. The error (in `detail`) says
// how to get the file. Shared by serve and replay rebuild.
aggregator::LoadedEncoder load_encoder_for(const std::filesystem::path& requested);

// Runs the whole pipeline until SIGINT/SIGTERM (or idle, with exit_when_idle). Returns kOk after a
// graceful stop, kStartFailed or kBadUsage when it could not start, kStoreFailed when the store
// stopped writing.
[[nodiscard]] base::ExitCode run_serve(const ServeOptions& options);

}  // namespace painpoint::service

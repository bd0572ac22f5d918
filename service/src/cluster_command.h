#pragma once

// `painpoint cluster`: events from a JSONL file, in file order, through the same validation
// (painpoint::ingest) and the same Aggregator as `painpoint serve`; writes every input line's
// FINAL pain point (after merges) as JSONL. Products are clustered on several threads, one
// Aggregator each; the output is the same for any number of threads.

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "painpoint/base/exit_code.h"

namespace painpoint::service {

inline constexpr unsigned kMaxDefaultClusterThreads = 8;

struct ClusterCommandOptions {
  std::string input_path;
  std::string output_path;
  // Optional configuration file, the same as `painpoint serve --config` (config_file.h:
  // `cluster.<name> = value` and `validation.<name> = value` lines).
  std::optional<std::string> config_path;
  // Clustering keys applied after the config file, e.g. {"join_threshold", "0.4"}.
  std::vector<std::pair<std::string, std::string>> config_overrides;
  // Word vectors file (scripts/fetch-embeddings.sh). nullopt: the default path if it exists
  // (with a warning on stderr when it does not); "none": sparse features only.
  std::optional<std::string> vectors_path;
  // Sentence encoder file (scripts/fetch-encoder.sh) for cluster.encoder = semantic. nullopt:
  // the default path; a missing file is then an error that says how to get it.
  std::optional<std::string> encoder_path;
  // Threads that encode (semantic mode); 0: one per core.
  unsigned encoder_threads = 0;
  // Aggregators, each on its own thread, that products are spread over (a product stays on
  // one); the output does not depend on it. 0: one per core, at most kMaxDefaultClusterThreads.
  unsigned threads = 0;
  // Events per take_changes() call, per thread: serve's largest batch (AggregatorStageConfig::
  // batch_size), the one it takes under backlog. Each drain summarizes every pain point the batch
  // touched; the command discards the changes, and drains to keep memberships bounded.
  std::size_t batch_size = 50'000;
};

// kOk on success (invalid events are reported per line and do not fail the run), kFailed when the
// input, output, config or vectors cannot be used.
[[nodiscard]] base::ExitCode run_cluster_command(const ClusterCommandOptions& options);

}  // namespace painpoint::service

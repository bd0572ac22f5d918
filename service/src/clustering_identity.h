#pragma once

// The clustering a store's aggregator state is built with. Pain points built from one encoder's
// vectors (or one word-vector file, or one term hashing) cannot be continued with another: their
// sums would be compared with vectors of another space. So serve records the clustering in the
// store, refuses to continue a state built with another encoder, and warns about changed
// settings (thresholds take effect from then on; `replay rebuild` applies them to the history).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "painpoint/aggregator/config.h"

namespace painpoint::store {
class Store;
}

namespace painpoint::service {

// The files a clustering reads; empty when it reads none of that kind.
struct ClusteringFiles {
  std::filesystem::path encoder;       // semantic mode
  std::filesystem::path word_vectors;  // static mode, when the file exists
};

// "key = value" lines: the encoder, the SHA-256 of each file the state depends on, then every
// clustering key (aggregator::config_keys()) with its value. Fails (nullopt, `error` set) when a
// file cannot be read.
[[nodiscard]] std::optional<std::string> describe_clustering(
    const aggregator::ClusterConfig& config, const ClusteringFiles& files, std::string* error);

struct ClusteringChange {
  // Keys whose change makes the stored state unusable ("encoder", "encoder_sha256", ...), and
  // the other keys that differ, each as "key: old -> new".
  std::vector<std::string> incompatible;
  std::vector<std::string> settings;
};

// "a; b; c": the lines of a ClusteringChange list, for messages.
[[nodiscard]] std::string joined(const std::vector<std::string>& changes);

[[nodiscard]] ClusteringChange compare_clustering(std::string_view recorded,
                                                  std::string_view current);

// Serve's start: records `current` in a store that has no record, and refuses (false, after
// logging what to do) to continue a state built with an incompatible clustering. Changed
// settings are logged and recorded.
[[nodiscard]] bool clustering_fits(store::Store& store, const std::string& current,
                                   const std::filesystem::path& data_dir);

}  // namespace painpoint::service

#include "clustering_identity.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>

#include "painpoint/base/hex.h"
#include "painpoint/store/store.h"
#include "text_trim.h"

namespace painpoint::service {
namespace {

namespace agg = painpoint::aggregator;

// Keys whose value the stored state depends on: its vectors and its term buckets.
constexpr std::array<std::string_view, 4> kStateKeys = {"encoder", "encoder_sha256",
                                                        "word_vectors_sha256", "hash_bits"};

bool is_state_key(std::string_view key) {
  for (std::string_view k : kStateKeys) {
    if (k == key) return true;
  }
  return false;
}

std::optional<std::string> file_sha256(const std::filesystem::path& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path.string();
    return std::nullopt;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    *error = "SHA-256 unavailable";
    return std::nullopt;
  }
  std::string chunk(1 << 20, '\0');
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (in.gcount() > 0 &&
        EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<std::size_t>(in.gcount())) != 1) {
      *error = "SHA-256 of " + path.string() + " failed";
      return std::nullopt;
    }
  }
  if (in.bad()) {
    *error = "cannot read " + path.string();
    return std::nullopt;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    *error = "SHA-256 of " + path.string() + " failed";
    return std::nullopt;
  }
  return base::hex_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::map<std::string, std::string, std::less<>> parse_lines(std::string_view text) {
  std::map<std::string, std::string, std::less<>> out;
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(trim(line.substr(0, eq))), std::string(trim(line.substr(eq + 1))));
  }
  return out;
}

// A store from before the record: its events carry sentence vectors exactly when its state
// was built in semantic mode. nullopt when it holds no event or cannot be read.
std::optional<bool> events_carry_vectors(const store::Store& store) {
  std::optional<bool> carry;
  const store::Status s = store.scan_events_by_time(
      std::chrono::system_clock::time_point::min(), std::chrono::system_clock::time_point::max(),
      [&](const v1::StoredEvent& e) {
        carry = !e.embedding().empty();
        return false;
      });
  return s.ok() ? carry : std::nullopt;
}

}  // namespace

std::optional<std::string> describe_clustering(const agg::ClusterConfig& config,
                                               const ClusteringFiles& files, std::string* error) {
  std::string out = "encoder = " + std::string(agg::encoder_mode_name(config.encoder)) + "\n";
  if (config.encoder == agg::EncoderMode::kSemantic) {
    auto sha = file_sha256(files.encoder, error);
    if (!sha) return std::nullopt;
    out += "encoder_sha256 = " + *sha + "\n";
  }
  if (config.encoder == agg::EncoderMode::kStatic) {
    std::optional<std::string> sha = "none";
    if (!files.word_vectors.empty()) sha = file_sha256(files.word_vectors, error);
    if (!sha) return std::nullopt;
    out += "word_vectors_sha256 = " + *sha + "\n";
  }
  for (const auto& key : agg::config_keys()) {
    if (key.name == "encoder") continue;
    out += key.name + " = " + agg::config_value(config, key.name).value_or("") + "\n";
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
  return out;
}

ClusteringChange compare_clustering(std::string_view recorded, std::string_view current) {
  const auto before = parse_lines(recorded);
  const auto after = parse_lines(current);
  ClusteringChange change;
  auto note = [&](const std::string& key, std::string_view old_value, std::string_view new_value) {
    if (old_value == new_value) return;
    std::string line = key + ": " + std::string(old_value.empty() ? "(none)" : old_value) +
                       " -> " + std::string(new_value.empty() ? "(none)" : new_value);
    (is_state_key(key) ? change.incompatible : change.settings).push_back(std::move(line));
  };
  for (const auto& [key, value] : before) {
    const auto it = after.find(key);
    note(key, value, it == after.end() ? std::string_view() : std::string_view(it->second));
  }
  for (const auto& [key, value] : after) {
    if (!before.contains(key)) note(key, {}, value);
  }
  return change;
}

bool clustering_fits(store::Store& store, const std::string& current,
                     const std::filesystem::path& data_dir) {
  std::optional<std::string> recorded;
  if (store::Status s = store.clustering(&recorded); !s.ok()) {
    spdlog::error("store: {}", s.to_string());
    return false;
  }
  if (recorded) {
    const ClusteringChange change = compare_clustering(*recorded, current);
    if (!change.incompatible.empty()) {
      spdlog::error(
          "the pain points in {} were built with another clustering ({}): their state cannot be "
          "continued with this one. Start with the clustering they were built with, or "
          "re-cluster the stored history first with `painpoint replay rebuild --data-dir {} "
          "--config FILE` (pain points keep their ids by member overlap)",
          data_dir.string(), joined(change.incompatible), data_dir.string());
      return false;
    }
    if (change.settings.empty()) return true;
    spdlog::warn(
        "clustering settings changed since the last start ({}): they apply to new events; "
        "`painpoint replay rebuild` applies them to the stored history",
        joined(change.settings));
  } else if (store.event_count() > 0) {
    const bool semantic = parse_lines(current)["encoder"] == "semantic";
    const auto vectors = events_carry_vectors(store);
    if (vectors && *vectors != semantic) {
      spdlog::error(
          "the pain points in {} were built {} the sentence encoder (before the store recorded "
          "its clustering), and this configuration {} it: set cluster.encoder to what they were "
          "built with, or re-cluster the stored history first with `painpoint replay rebuild "
          "--data-dir {} --config FILE`",
          data_dir.string(), *vectors ? "with" : "without", semantic ? "uses" : "does not use",
          data_dir.string());
      return false;
    }
    spdlog::info("recording the clustering of the existing state in {} (not recorded before)",
                 data_dir.string());
  }
  if (store::Status s = store.record_clustering(current); !s.ok()) {
    spdlog::error("store: {}", s.to_string());
    return false;
  }
  return true;
}

}  // namespace painpoint::service

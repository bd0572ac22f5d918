#pragma once

// Rendered GET bodies kept until the data they were rendered from changes. The read API keys them
// by the store's counters (a product's sum of summary versions, the totals of every product), which
// commit() changes in the same WriteBatch as the data: a request whose counters did not move since
// the body was rendered gets that body without touching the store (docs/read-api.md).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace painpoint::service {

// What a body was rendered from. The counters only grow (events are never deleted, a summary's
// version grows with every change), so equal counters mean unchanged data.
struct DataVersion {
  std::int64_t products = 0;
  std::int64_t events = 0;
  std::int64_t summary_versions = 0;
  bool operator==(const DataVersion&) const = default;
};

struct CachedBody {
  std::string body;
  std::string etag;  // the quoted validator of `body` (etag_of)
};

// The strong validator of a body: a quoted hex digest (std::hash, stable within one process).
std::string etag_of(std::string_view body);

// Thread-safe; the lock is held for a hash lookup only, never while rendering.
class ResponseCache {
 public:
  // Past `max_bytes` of bodies the cache starts over.
  explicit ResponseCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // The body stored under `key` if it was rendered at `version`, else null.
  std::shared_ptr<const CachedBody> find(const std::string& key, const DataVersion& version);

  // Stores `body` under `key` (replacing what was there) and returns it with its validator.
  std::shared_ptr<const CachedBody> put(const std::string& key, const DataVersion& version,
                                        std::string body);

 private:
  struct Entry {
    DataVersion version;
    std::shared_ptr<const CachedBody> body;
  };
  const std::size_t max_bytes_;
  std::mutex mutex_;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace painpoint::service

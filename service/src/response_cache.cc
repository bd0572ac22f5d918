#include "response_cache.h"

#include <functional>

#include "painpoint/base/hex.h"

namespace painpoint::service {

std::string etag_of(std::string_view body) {
  const auto digest = static_cast<std::uint64_t>(std::hash<std::string_view>{}(body));
  std::string bytes;
  for (int shift = 56; shift >= 0; shift -= 8) {
    bytes.push_back(static_cast<char>((digest >> shift) & 0xFF));
  }
  return "\"" + base::hex_encode(bytes) + "\"";
}

std::shared_ptr<const CachedBody> ResponseCache::find(const std::string& key,
                                                      const DataVersion& version) {
  std::lock_guard lock(mutex_);
  auto found = entries_.find(key);
  if (found == entries_.end() || !(found->second.version == version)) return nullptr;
  return found->second.body;
}

std::shared_ptr<const CachedBody> ResponseCache::put(const std::string& key,
                                                     const DataVersion& version, std::string body) {
  auto cached = std::make_shared<CachedBody>();
  cached->etag = etag_of(body);
  cached->body = std::move(body);
  const std::size_t size = key.size() + cached->body.size();
  if (size > max_bytes_) return cached;
  std::lock_guard lock(mutex_);
  if (auto old = entries_.find(key); old != entries_.end()) {
    bytes_ -= key.size() + old->second.body->body.size();
    entries_.erase(old);
  }
  if (bytes_ + size > max_bytes_) {
    entries_.clear();
    bytes_ = 0;
  }
  entries_.emplace(key, Entry{version, cached});
  bytes_ += size;
  return cached;
}

}  // namespace painpoint::service

#include "restored_arrivals.h"

namespace painpoint::service {

void RestoredArrivals::filter(std::span<const store::PreparedWrite> writes,
                              std::vector<store::PreparedWrite>& out) {
  for (const store::PreparedWrite& w : writes) {
    if (w.family != store::kArrivalLogFamily) {
      out.push_back(w);
      continue;
    }
    switch (w.kind) {
      case store::WriteKind::kPut:
        held_.insert_or_assign(std::string(w.key), std::string(w.value));
        break;
      case store::WriteKind::kDelete: {
        const auto it = held_.find(w.key);
        const bool cancelled = it != held_.end();
        if (cancelled) held_.erase(it);
        if (!cancelled || !partition_was_empty_) out.push_back(w);
        break;
      }
      case store::WriteKind::kDeleteRange:
        if (w.key < w.value) held_.erase(held_.lower_bound(w.key), held_.lower_bound(w.value));
        out.push_back(w);
        break;
    }
  }
}

std::vector<store::PreparedWrite> RestoredArrivals::held() const {
  std::vector<store::PreparedWrite> out;
  out.reserve(held_.size());
  for (const auto& [key, value] : held_) {
    out.push_back({.family = store::kArrivalLogFamily,
                   .kind = store::WriteKind::kPut,
                   .key = key,
                   .value = value});
  }
  return out;
}

void RestoredArrivals::clear() { held_.clear(); }

}  // namespace painpoint::service

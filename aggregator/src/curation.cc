// Human curation (merge, rename, split) and the succession of a rebuilt product
// (aggregator/README.md, "Curation"). Each validates first and changes nothing when it fails.
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator_impl.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"
#include "painpoint/base/utf8.h"
#include "painpoint/v1/aggregator_state.pb.h"
#include "state_keys.h"

namespace painpoint::aggregator {
namespace {

using Renames = std::map<std::string, const Succession::Rename*, std::less<>>;  // by `from`
using LiveIds = std::set<std::string, std::less<>>;
using Renamed = std::unordered_map<std::string, std::string>;  // from -> to

// Linear in the product's clusters: curation runs at human pace, and an id index would cost
// memory on the hot path for nothing.
Cluster* find_pain_point(Product& p, std::string_view id) {
  for (auto& c : p.clusters) {
    if (c != nullptr && c->promoted && c->id == id) return c.get();
  }
  return nullptr;
}

CurationOutcome failure(CurationOutcome::Code code, std::string message) {
  CurationOutcome out;
  out.code = code;
  out.message = std::move(message);
  return out;
}

CurationOutcome not_found(std::string_view id) {
  return failure(CurationOutcome::Code::kNotFound, "no active pain point " + std::string(id));
}

CurationOutcome success(std::string id) {
  CurationOutcome out;
  out.id = std::move(id);
  return out;
}

bool valid_label(std::string_view label) {
  if (label.size() > Aggregator::kMaxLabelBytes) return false;
  // Well-formed UTF-8 (the summary is protobuf: invalid UTF-8 would not serialize) and no control
  // characters, C0 or C1 (labels end up in dashboards and terminals).
  if (!base::is_valid_utf8(label)) return false;
  for (std::size_t i = 0; i < label.size();) {
    const char32_t c = base::decode_utf8(label, i);
    if (c < 0x20 || (c >= 0x7F && c < 0xA0)) return false;
  }
  return true;
}

// The id `id` continues as after the renames.
const std::string& follow(const Renamed& renamed, const std::string& id) {
  const auto it = renamed.find(id);
  return it == renamed.end() ? id : it->second;
}

// Checks a succession against the product's live clusters; on success `live` holds their ids
// after the renames. Returns the failure, if any.
std::optional<CurationOutcome> check_succession(const Product& p, const Succession& s,
                                                const Renames& by_from, LiveIds& live) {
  using Code = CurationOutcome::Code;
  std::size_t found = 0;
  for (const auto& c : p.clusters) {
    if (c == nullptr) continue;
    const auto it = by_from.find(c->id);
    if (it != by_from.end()) ++found;
    const std::string& id = it != by_from.end() ? it->second->to : c->id;
    if (!live.insert(id).second) {
      return failure(Code::kConflict, "two live clusters would have the id " + id);
    }
  }
  if (found != by_from.size()) {
    for (const auto& [from, r] : by_from) {
      bool exists = false;
      for (const auto& c : p.clusters) exists = exists || (c != nullptr && c->id == from);
      if (!exists) return failure(Code::kNotFound, "no live cluster " + from);
    }
  }
  for (const auto& [from, into] : s.merged_into) {
    if (live.contains(from)) return failure(Code::kConflict, from + " is live, not merged");
    if (!live.contains(into)) return failure(Code::kNotFound, "no live cluster " + into);
  }
  for (const auto& id : s.retired) {
    if (live.contains(id)) return failure(Code::kConflict, id + " is live, not retired");
  }
  for (const auto& [a, b] : s.keep_apart) {
    if (!live.contains(a) || !live.contains(b)) {
      return failure(Code::kNotFound, "keep apart: no live cluster " + (live.contains(a) ? b : a));
    }
  }
  return std::nullopt;
}

// Curated facts follow the renames; the succession adds pairs kept apart and human merges.
void carry_curation(Curation& cur, const Succession& s, const Renamed& renamed) {
  if (!renamed.empty()) {
    std::map<std::string, std::string, std::less<>> labels;
    for (auto& [id, label] : cur.labels) labels[follow(renamed, id)] = std::move(label);
    cur.labels = std::move(labels);
    std::set<std::pair<std::string, std::string>> apart;
    for (const auto& [a, b] : cur.apart) {
      apart.insert(Curation::pair_of(follow(renamed, a), follow(renamed, b)));
    }
    cur.apart = std::move(apart);
    for (auto& [from, into] : cur.merges) {
      from = follow(renamed, from);
      into = follow(renamed, into);
    }
    cur.dirty = true;
  }
  for (const auto& [a, b] : s.keep_apart) {
    cur.dirty = cur.apart.insert(Curation::pair_of(a, b)).second || cur.dirty;
  }
  for (const auto& merge : s.human_merges) cur.dirty = cur.record_merge(merge) || cur.dirty;
}

// Sequence numbers continue after the previous state's (split ids derive from them).
void continue_sequence(Product& p, const StateReader* previous) {
  if (previous == nullptr) return;
  if (const auto meta = previous->get(meta_key(p.id))) {
    v1::AggProductState m;
    if (m.ParseFromString(*meta) && m.next_seq() > p.next_seq) {
      p.next_seq = m.next_seq();
      p.clusters.resize(p.next_seq);
      p.dirty_meta = true;
    }
  }
}

}  // namespace

void settle_touched(Product& p, const Cluster& c) {
  const bool derived = c.last_event_doc > p.doc_count - p.since_maintenance;
  const bool marked = c.seq < p.flags.size() && (p.flags[c.seq] & Product::kTouched) != 0;
  if (derived && !marked) p.mark(c.seq, Product::kTouched);
  if (!derived && marked) {
    std::erase(p.touched_since_maintenance, c.seq);
    p.flags[c.seq] &= static_cast<std::uint8_t>(~Product::kTouched);
  }
}

CurationOutcome Aggregator::Impl::curate_merge(std::string_view product_id,
                                               std::string_view from_id, std::string_view into_id) {
  if (from_id == into_id) {
    return failure(CurationOutcome::Code::kConflict, "cannot merge a pain point into itself");
  }
  Product& p = product(std::string(product_id));
  Cluster* from = find_pain_point(p, from_id);
  if (from == nullptr) return not_found(from_id);
  Cluster* into = find_pain_point(p, into_id);
  if (into == nullptr) return not_found(into_id);
  p.curation.record_merge({std::string(from_id), std::string(into_id)});
  p.curation.dirty = true;
  merge(p, *into, *from);
  settle_touched(p, *into);
  return success(std::string(into_id));
}

CurationOutcome Aggregator::Impl::curate_rename(std::string_view product_id, std::string_view id,
                                                std::string_view label) {
  if (!valid_label(label)) {
    return failure(CurationOutcome::Code::kInvalid,
                   "label must be at most " + std::to_string(kMaxLabelBytes) +
                       " bytes of UTF-8 without control characters");
  }
  Product& p = product(std::string(product_id));
  Cluster* c = find_pain_point(p, id);
  if (c == nullptr) return not_found(id);
  if (label.empty()) {
    p.curation.labels.erase(c->id);
  } else {
    p.curation.labels[c->id] = std::string(label);
  }
  p.curation.dirty = true;
  p.changed(c->seq);  // republish with the new label
  return success(c->id);
}

// Takes the current `vec`/`dense` (one event's features) out of `c`'s centroid and dense sum.
void Aggregator::Impl::subtract_features(Cluster& c) {
  merged_scratch.clear();
  auto b = vec.begin();
  for (const auto& tw : c.centroid) {
    while (b != vec.end() && b->term < tw.term) ++b;
    float w = tw.w;
    if (b != vec.end() && b->term == tw.term) w -= b->w;
    // Float residue of a term only the removed event had is not evidence.
    if (w > 1e-4f) merged_scratch.push_back(TermWeight{tw.term, w});
  }
  c.centroid.assign(merged_scratch.begin(), merged_scratch.end());
  c.norm2 = norm2_of(c.centroid);
  if (!dense.empty() && c.dense.size() == dense.size()) {
    for (std::size_t k = 0; k < dense.size(); ++k) c.dense[k] -= dense[k];
    c.dense_norm = dense_norm_of(c.dense);
  }
}

// Takes one event out of `c`'s count, source counts and daily window (accounts, revenue and
// first/last seen keep no history and stay: the documented approximation of splits and moves).
void Aggregator::Impl::remove_event_stats(Cluster& c, std::int32_t source, std::int64_t seconds) {
  --c.count;
  const auto s = static_cast<std::size_t>(source);
  if (s < c.sources.size() && c.sources[s] > 0) --c.sources[s];
  const auto w = static_cast<std::int64_t>(c.daily.size());
  const std::int64_t idx = w - 1 - (c.day_of_last - base::day_of(seconds));
  if (idx >= 0 && idx < w && c.daily[static_cast<std::size_t>(idx)] > 0) {
    --c.daily[static_cast<std::size_t>(idx)];
  }
}

CurationOutcome Aggregator::Impl::curate_split(std::string_view product_id, std::string_view id,
                                               std::span<const v1::FeedbackEvent> events,
                                               std::span<const float> embeddings) {
  if (events.empty()) return failure(CurationOutcome::Code::kInvalid, "no events to split off");
  // Without the vectors the split-off pain point would have no dense sum, and no later event
  // could join it.
  if (semantic() && embeddings.size() != events.size() * dims()) {
    return failure(CurationOutcome::Code::kInvalid,
                   "semantic mode: a split needs one vector per event");
  }
  std::set<std::string_view> ids;
  for (const auto& e : events) {
    if (e.product_id() != product_id) {
      return failure(CurationOutcome::Code::kInvalid,
                     "event " + e.event_id() + " belongs to another product");
    }
    if (!ids.insert(e.event_id()).second) {
      return failure(CurationOutcome::Code::kInvalid, "event " + e.event_id() + " repeated");
    }
  }
  Product& p = product(std::string(product_id));
  Cluster* src = find_pain_point(p, id);
  if (src == nullptr) return not_found(id);
  if (static_cast<std::int64_t>(events.size()) >= src->count) {
    return failure(CurationOutcome::Code::kConflict,
                   "a split must leave events behind (rename the pain point instead)");
  }

  Cluster& out = open_split_cluster(p, base::micros_of(events.front().occurred_at()));
  p.dirty_meta = true;

  for (std::size_t i = 0; i < events.size(); ++i) {
    const v1::FeedbackEvent& e = events[i];
    if (semantic()) event_embedding = embeddings.subspan(i * dims(), dims());
    refeaturize(p, e.text());
    event_embedding = {};
    subtract_features(*src);
    remove_event_stats(*src, static_cast<std::int32_t>(e.source()),
                       base::seconds_of(e.occurred_at()));
    absorb_event(p, out, e, 1.0);
    offer_member(out, e);
    memberships.push_back(Membership{e.event_id(), p.id, out.id});
  }
  // A human decided this is a pain point, whatever its size.
  if (!out.promoted) {
    out.promoted = true;
    ++p.live_promoted;
  }
  std::erase_if(src->exemplars, [&](const Exemplar& x) { return ids.contains(x.event_id); });
  if (std::erase_if(src->sample, [&](const Member& x) { return ids.contains(x.event_id); }) > 0) {
    src->sample_dirty = true;
  }
  rescore_exemplars(*src);
  rescore_exemplars(out);
  reindex(p, *src);
  reindex(p, out);
  refresh_hot(p, *src);
  refresh_hot(p, out);
  p.changed(src->seq);
  settle_touched(p, out);
  p.curation.apart.insert(Curation::pair_of(src->id, out.id));
  p.curation.dirty = true;
  return success(out.id);
}

Cluster& Aggregator::Impl::open_split_cluster(Product& p, std::int64_t first_seen_us) {
  auto fresh = std::make_unique<Cluster>();
  fresh->seq = p.next_seq++;
  // Unique per product (seq is), a pure function of the history, and never the id of a
  // cluster opened by an event (those hash product + '\x1f' + event id).
  fresh->id = "pp-" + base::hex_u64(fnv1a64(p.id + "\x1esplit\x1e" + std::to_string(fresh->seq)));
  fresh->first_seen_us = first_seen_us;
  fresh->last_seen_us = first_seen_us;
  p.clusters.push_back(std::move(fresh));
  return *p.clusters.back();
}

// ---------------------------------------------------------------- succession (replay)
CurationOutcome Aggregator::Impl::succeed(std::string_view product_id, const StateReader* previous,
                                          const Succession& s) {
  using Code = CurationOutcome::Code;
  Renames by_from;
  for (const auto& r : s.renames) {
    if (r.from.empty() || r.to.empty()) return failure(Code::kInvalid, "empty id in a rename");
    if (!by_from.emplace(r.from, &r).second) {
      return failure(Code::kInvalid, "id renamed twice: " + r.from);
    }
  }
  Product& p = product(std::string(product_id));
  // Validate everything before changing anything.
  LiveIds live;
  if (auto failed = check_succession(p, s, by_from, live)) return *std::move(failed);
  const Renamed renamed = rename_clusters(p, by_from);
  redirect_merge_records(p, s, live, renamed);
  carry_curation(p.curation, s, renamed);
  continue_sequence(p, previous);
  return success(std::string(product_id));
}

// Renames the product's live clusters as one permutation (each renamed one is republished with
// a version above the replaced pain point's) and its pending memberships with them.
inline Renamed Aggregator::Impl::rename_clusters(Product& p, const Renames& by_from) {
  Renamed renamed;
  for (auto& c : p.clusters) {
    if (c == nullptr) continue;
    const auto it = by_from.find(c->id);
    if (it == by_from.end()) continue;
    renamed.emplace(c->id, it->second->to);
    c->id = it->second->to;
    c->version = std::max(c->version, it->second->min_version);
    p.changed(c->seq);
  }
  for (auto& m : memberships) {
    if (m.product_id == p.id) m.pain_point_id = follow(renamed, m.pain_point_id);
  }
  return renamed;
}

// Merge records: a live or retired id has none; survivors follow their renames; the replaced
// state's merged ids resolve to their survivors.
inline void Aggregator::Impl::redirect_merge_records(Product& p, const Succession& s,
                                                     const LiveIds& live, const Renamed& renamed) {
  std::set<std::string, std::less<>> forget(live.begin(), live.end());
  forget.insert(s.retired.begin(), s.retired.end());
  for (auto& [from, into] : merged) into = follow(renamed, into);
  std::erase_if(merged, [&](const auto& entry) { return forget.contains(entry.first); });
  std::vector<StateWrite> writes;
  for (auto& w : pending_writes) {
    v1::AggMerged rec;
    if (w.value && rec.ParseFromString(*w.value)) {
      if (forget.contains(rec.id())) continue;
      rec.set_merged_into(follow(renamed, rec.merged_into()));
      w.value = rec.SerializeAsString();
    }
    writes.push_back(std::move(w));
  }
  pending_writes = std::move(writes);
  // Final records of clusters merged away in this product: one whose id lives on is not final.
  std::erase_if(pending_summaries, [&](const v1::PainPointSummary& x) {
    return x.product_id() == p.id && live.contains(x.id());
  });
  for (auto& x : pending_summaries) {
    if (x.product_id() == p.id) x.set_merged_into(follow(renamed, x.merged_into()));
  }
  for (const auto& [from, to] : renamed) {
    pending_writes.push_back(StateWrite{merged_key(to), std::nullopt, p.id});
  }
  for (const auto& id : s.retired) {
    pending_writes.push_back(StateWrite{merged_key(id), std::nullopt, p.id});
  }
  for (const auto& [from, into] : s.merged_into) {
    merged[from] = into;
    v1::AggMerged rec;
    rec.set_id(from);
    rec.set_merged_into(into);
    pending_writes.push_back(StateWrite{merged_key(from), rec.SerializeAsString(), p.id});
  }
}

CurationOutcome Aggregator::merge(std::string_view product_id, std::string_view from,
                                  std::string_view into) {
  return impl_->curate_merge(product_id, from, into);
}

CurationOutcome Aggregator::rename(std::string_view product_id, std::string_view id,
                                   std::string_view label) {
  return impl_->curate_rename(product_id, id, label);
}

CurationOutcome Aggregator::split(std::string_view product_id, std::string_view id,
                                  std::span<const v1::FeedbackEvent> events,
                                  std::span<const float> embeddings) {
  return impl_->curate_split(product_id, id, events, embeddings);
}

CurationOutcome Aggregator::succeed(std::string_view product_id, const StateReader* previous,
                                    const Succession& succession) {
  return impl_->succeed(product_id, previous, succession);
}

CurationRecord read_curation(const StateReader& state, std::string_view product_id) {
  CurationRecord out;
  const auto rec = state.get(curation_key(product_id));
  v1::AggCuration m;
  if (!rec || !m.ParseFromString(*rec)) return out;
  for (const auto& l : m.label()) out.labels.emplace_back(l.id(), l.label());
  for (const auto& a : m.apart()) out.apart.emplace_back(a.a(), a.b());
  for (const auto& x : m.merge()) out.merges.emplace_back(x.from(), x.into());
  return out;
}

}  // namespace painpoint::aggregator

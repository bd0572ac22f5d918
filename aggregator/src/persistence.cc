// Persistence: the changes handed to the caller (summaries, memberships, state writes), a
// product's state loaded lazily on its first event, eviction, and resolve() over merge records.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "aggregator_impl.h"
#include "state_codec.h"
#include "state_keys.h"

namespace painpoint::aggregator {
namespace {

template <typename String>
std::size_t string_heap(const String& s) {
  return s.capacity() > 15 ? s.capacity() + 1 : 0;
}

}  // namespace

// Rebuilds a product from the state: meta, term table pages, cluster records and their cold
// parts, then what derives from them (index, hot records, candidates, "grown" marks).
void Aggregator::Impl::corrupt_state(std::string_view key, std::string_view record) {
  if (state_error) return;
  state_error = "aggregator state record '" + std::string(key) + "' (" + std::string(record) +
                ") cannot be decoded";
}

void Aggregator::Impl::load(Product& p) {
  if (reader == nullptr) return;
  const auto meta = reader->get(meta_key(p.id));
  if (!meta) return;
  v1::AggProductState m;
  if (!m.ParseFromString(*meta)) return corrupt_state(meta_key(p.id), "a product's meta record");
  decode_meta(m, dims(), p);
  reader->scan(product_prefix(p.id) + "d/", [&](std::string_view key, std::string_view value) {
    v1::AggDfPage page;
    if (!page.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return corrupt_state(key, "a term-frequency page");
    }
    decode_page(page, p);
  });
  p.clusters.resize(p.next_seq);
  reader->scan(product_prefix(p.id) + "c/", [&](std::string_view key, std::string_view value) {
    v1::AggCluster c;
    if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return corrupt_state(key, "a cluster");
    }
    if (c.seq() >= p.next_seq) return;
    p.clusters[c.seq()] = decode_cluster(c);
  });
  reader->scan(product_prefix(p.id) + "x/", [&](std::string_view key, std::string_view value) {
    v1::AggCluster c;
    if (!c.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return corrupt_state(key, "the cold part of a cluster");
    }
    if (c.seq() >= p.next_seq || p.clusters[c.seq()] == nullptr) return;
    decode_cold(c, *p.clusters[c.seq()]);
  });
  reader->scan(product_prefix(p.id) + "s/", [&](std::string_view key, std::string_view value) {
    v1::AggSample sample;
    if (!sample.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return corrupt_state(key, "the member sample of a cluster");
    }
    if (sample.seq() >= p.next_seq || p.clusters[sample.seq()] == nullptr) return;
    decode_sample(sample, *p.clusters[sample.seq()]);
  });
  // Posting order is (weight, seq): inserting in any order rebuilds the same lists.
  for (auto& c : p.clusters) {
    if (c == nullptr) continue;
    insert_postings(p, *c);
    refresh_hot(p, *c);
    if (c->promoted) {
      ++p.live_promoted;
    } else {
      p.candidates.push_back(c->seq);
    }
  }
  // Which pain points grew since the last maintenance is derivable: those whose
  // last_event_doc falls after it.
  const std::int64_t since = p.doc_count - p.since_maintenance;
  for (auto& c : p.clusters) {
    if (c != nullptr && c->last_event_doc > since) p.mark(c->seq, Product::kTouched);
  }
  load_curation(p);
}

// Summaries of the product's changed pain points; with kInclude also its state writes: changed
// clusters (the cold part only when it changed), deleted ones, dirty term pages, meta, curation.
void Aggregator::Impl::flush(Product& p, Changes& out, StateOutput state) {
  for (std::uint32_t seq : p.drain(Product::kDirty)) {
    Cluster* c = p.clusters[seq].get();
    if (c == nullptr || !c->promoted) continue;
    out.summaries.emplace_back();
    fill_summary(p, *c, out.summaries.back());
  }
  if (state == StateOutput::kDefer) return;
  flush_curation(p, out);
  for (std::uint32_t seq : p.drain(Product::kUnsaved)) {
    Cluster* c = p.clusters[seq].get();
    if (c == nullptr) {
      out.state.push_back(StateWrite{cluster_key(p.id, seq), std::nullopt, p.id});
      out.state.push_back(StateWrite{cold_key(p.id, seq), std::nullopt, p.id});
      if (semantic()) out.state.push_back(StateWrite{sample_key(p.id, seq), std::nullopt, p.id});
      continue;
    }
    out.state.push_back(
        StateWrite{cluster_key(p.id, seq), encode_cluster(*c).SerializeAsString(), p.id});
    if (c->cold_dirty) {
      out.state.push_back(
          StateWrite{cold_key(p.id, seq), encode_cold(*c).SerializeAsString(), p.id});
      c->cold_dirty = false;
    }
    if (c->sample_dirty) {
      out.state.push_back(
          StateWrite{sample_key(p.id, seq), encode_sample(*c).SerializeAsString(), p.id});
      c->sample_dirty = false;
    }
  }
  std::sort(p.dirty_pages.begin(), p.dirty_pages.end());
  for (std::uint32_t page : p.dirty_pages) {
    p.page_flags[page] = 0;
    out.state.push_back(
        StateWrite{page_key(p.id, page), encode_page(p, page).SerializeAsString(), p.id});
  }
  p.dirty_pages.clear();
  if (p.dirty_meta) {
    out.state.push_back(StateWrite{meta_key(p.id), encode_meta(p).SerializeAsString(), p.id});
    p.dirty_meta = false;
  }
}

Changes Aggregator::Impl::take_changes(const Aggregator::ProductFilter& save_state) {
  Changes out;
  out.memberships = std::move(memberships);
  memberships.clear();
  membership_at.clear();
  membership_indexed = 0;
  // Room for a batch like this one, reserved here rather than grown by doubling in the next
  // batch's add()s. Besides the copies, the doubling was where glibc did its deferred work:
  // it sorts the blocks freed after a drain (the caller's changes: thousands of summaries and
  // state values when events spread over thousands of pain points) into its bins only when a
  // later allocation misses its caches, and that allocation was add()'s. With this and the
  // exemplar strings in the pool, add() allocates from glibc only the membership's and the
  // returned id (small blocks served from glibc's caches), so that work is done by the next
  // drain's own allocations instead (measured: BM_AddEvent vs BM_AddEventWithFlush). Capped:
  // a caller that drains once after a whole replay would otherwise keep room for all of it.
  memberships.reserve(std::min<std::size_t>(out.memberships.size(), 1 << 16));
  out.summaries = std::move(pending_summaries);
  pending_summaries.clear();
  // The merged records of products whose state stays deferred stay pending.
  std::vector<StateWrite> deferred;
  for (StateWrite& write : pending_writes) {
    (save_state(write.product_id) ? out.state : deferred).push_back(std::move(write));
  }
  pending_writes = std::move(deferred);
  for (auto& [id, p] : products) {
    flush(*p, out, save_state(id) ? StateOutput::kInclude : StateOutput::kDefer);
  }
  ++generation;
  return out;
}

void Aggregator::Impl::load_curation(Product& p) {
  const auto rec = reader->get(curation_key(p.id));
  if (!rec) return;
  v1::AggCuration m;
  if (!m.ParseFromString(*rec)) return corrupt_state(curation_key(p.id), "a product's curation");
  decode_curation(m, p.curation);
}

void Aggregator::Impl::flush_curation(Product& p, Changes& out) {
  if (!p.curation.dirty) return;
  p.curation.dirty = false;
  out.state.push_back(
      StateWrite{curation_key(p.id), encode_curation(p.curation).SerializeAsString(), p.id});
}

Changes Aggregator::take_changes(StateOutput state) {
  const bool include = state == StateOutput::kInclude;
  return impl_->take_changes([include](std::string_view) { return include; });
}

Changes Aggregator::take_changes(const ProductFilter& save_state) {
  return impl_->take_changes(save_state);
}

std::string Aggregator::resolve(std::string_view id) const {
  std::string cur(id);
  for (int hops = 0; hops < kMaxMergeHops; ++hops) {
    const auto it = impl_->merged.find(cur);
    if (it != impl_->merged.end()) {
      cur = it->second;
      continue;
    }
    if (impl_->reader == nullptr) break;
    const auto rec = impl_->reader->get(merged_key(cur));
    if (!rec) break;
    v1::AggMerged m;
    if (!m.ParseFromString(*rec) || m.merged_into().empty()) break;
    cur = m.merged_into();
  }
  return cur;
}

void Aggregator::evict_idle() {
  // Products unused during the last evict_idle interval go; their state is in the store. A
  // product whose state was not written out yet stays: reloading it would lose those changes.
  for (auto it = impl_->products.begin(); it != impl_->products.end();) {
    if (it->second->last_used_generation + 1 < impl_->generation &&
        !it->second->has_unsaved_state()) {
      it = impl_->products.erase(it);
    } else {
      ++it;
    }
  }
  if (impl_->pending_writes.empty()) impl_->merged.clear();
}

Aggregator::MemoryStats Aggregator::memory_stats() const {
  MemoryStats m;
  for (const auto& [id, p] : impl_->products) {
    ++m.products;
    m.bytes += sizeof(Product) + p->terms.capacity_bytes() +
               p->words.capacity() * sizeof(std::string) +
               p->lists.capacity() * sizeof(PostingList) + p->clusters.capacity() * sizeof(void*) +
               p->flags.capacity() + p->candidates.capacity() * 4 +
               p->dense_mean_sum.capacity() * 8 + p->hints.capacity() * sizeof(Product::Hint);
    for (const auto& w : p->words) m.bytes += string_heap(w);
    for (const auto& l : p->lists) {
      m.bytes += l.all.capacity_bytes() + l.head.capacity() * sizeof(Posting);
    }
    for (const auto& [page, list] : p->page_buckets) m.bytes += 32 + list.capacity() * 4;
    for (const auto& c : p->clusters) {
      if (c == nullptr) continue;
      ++m.clusters;
      m.bytes += sizeof(Cluster) + string_heap(c->id) + c->centroid.capacity() * 8 +
                 c->dense.capacity() * 4 + c->indexed.capacity() * 8 +
                 c->accounts.capacity() * sizeof(Account) + c->daily.capacity() * 8 +
                 c->exemplars.capacity() * sizeof(Exemplar);
      for (const auto& x : c->exemplars) {
        m.bytes += string_heap(x.event_id) + string_heap(x.text) + x.terms.capacity() * 8 +
                   x.label_words.capacity() * sizeof(PhraseWord) + x.label_terms.capacity() * 4;
      }
      m.bytes += c->sample.capacity() * sizeof(Member);
      for (const auto& x : c->sample) {
        m.bytes += string_heap(x.event_id) + string_heap(x.text) + string_heap(x.vector);
      }
    }
  }
  return m;
}

const std::optional<std::string>& Aggregator::state_error() const { return impl_->state_error; }

std::size_t Aggregator::active_pain_points() const {
  std::size_t n = 0;
  for (const auto& [id, p] : impl_->products) n += p->live_promoted;
  return n;
}

}  // namespace painpoint::aggregator

// `painpoint replay rebuild`: see replay.h and docs/replay.md.
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <unordered_map>

#include "clustering_identity.h"
#include "config_file.h"
#include "event_vectors.h"
#include "id_inheritance.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/text.h"
#include "painpoint/base/time.h"
#include "painpoint/store/store.h"
#include "progress.h"
#include "replay.h"
#include "serve.h"
#include "store_state_reader.h"

namespace painpoint::service {

namespace agg = painpoint::aggregator;

std::optional<TimePoint> parse_timestamp(const std::string& text) {
  google::protobuf::Timestamp ts;
  if (!google::protobuf::util::TimeUtil::FromString(text, &ts)) return std::nullopt;
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(ts.seconds()) + std::chrono::nanoseconds(ts.nanos())));
}

namespace {

// Interned ids: events refer to groups by index (a million events, a few thousand ids).
class IdTable {
 public:
  std::uint32_t intern(const std::string& id) {
    const auto [it, fresh] = index_.try_emplace(id, static_cast<std::uint32_t>(ids_.size()));
    if (fresh) ids_.push_back(id);
    return it->second;
  }
  [[nodiscard]] const std::string& at(std::uint32_t i) const { return ids_[i]; }
  [[nodiscard]] std::size_t size() const { return ids_.size(); }

 private:
  std::vector<std::string> ids_;
  std::unordered_map<std::string, std::uint32_t> index_;
};

constexpr std::uint32_t kNoGroup = UINT32_MAX;

struct ProductRun {
  std::unique_ptr<agg::Aggregator> aggregator;
  std::vector<std::string> event_ids;         // replay order
  std::vector<std::uint32_t> assigned;        // new id at assignment (index into new_ids)
  std::vector<std::uint32_t> old_member;      // stored membership (index into old_ids) or kNoGroup
  std::vector<std::int64_t> occurred_micros;  // replay order
  IdTable new_ids;
  IdTable old_ids;
};

struct Report {
  std::size_t products = 0;
  std::size_t events = 0;
  std::size_t kept = 0;
  std::size_t fresh = 0;
  std::size_t merged = 0;
  std::size_t retired = 0;
  std::size_t moved = 0;
  std::size_t left_out = 0;  // events of rebuilt products outside the time range
  std::size_t published = 0;
  std::size_t curation_applied = 0;
  std::size_t curation_dropped = 0;
};

// Same content, ignoring the version: nothing to publish.
bool same_content(v1::PainPointSummary a, v1::PainPointSummary b) {
  a.set_version(0);
  b.set_version(0);
  return a.SerializeAsString() == b.SerializeAsString();
}

class Rebuilder {
 public:
  Rebuilder(const RebuildOptions& options, store::Store& store, agg::ClusterConfig cfg,
            const agg::SentenceEncoder* encoder)
      : options_(options),
        store_(store),
        reader_(store),
        cfg_(std::move(cfg)),
        vectors_(encoder, /*threads=*/0) {}

  // Returns false on a store error (reported).
  bool replay(const std::set<std::string>& products, std::uint64_t total) {
    const TimePoint since = options_.since.value_or(TimePoint::min());
    const TimePoint until = options_.until.value_or(TimePoint::max());
    Progress progress("rebuild", total);
    // Stored memberships are looked up in batches (one MultiGet per chunk of events).
    std::vector<std::pair<ProductRun*, std::size_t>> pending;
    std::vector<std::string> pending_ids;
    std::vector<std::optional<std::string>> members;
    store::Status inner;
    auto lookup = [&]() {
      std::vector<std::string_view> ids(pending_ids.begin(), pending_ids.end());
      inner = store_.get_memberships(ids, &members);
      if (!inner.is_ok()) return false;
      for (std::size_t k = 0; k < pending.size(); ++k) {
        auto& [run, index] = pending[k];
        if (members[k]) run->old_member[index] = run->old_ids.intern(*members[k]);
      }
      pending.clear();
      pending_ids.clear();
      return true;
    };
    auto wanted = [&](std::string_view product) {
      return products.find(std::string(product)) != products.end();
    };
    auto add = [&](const v1::StoredEvent& stored) {
      const v1::FeedbackEvent& e = stored.event();
      if (!products.contains(e.product_id())) return true;
      auto& slot = runs_[e.product_id()];
      if (!slot.aggregator) slot.aggregator = std::make_unique<agg::Aggregator>(cfg_, nullptr);
      slot.event_ids.push_back(e.event_id());
      slot.occurred_micros.push_back(base::micros_of(e.occurred_at()));
      slot.assigned.push_back(
          slot.new_ids.intern(slot.aggregator->add(e, vectors_.vector_of(stored))));
      slot.old_member.push_back(kNoGroup);
      pending.emplace_back(&slot, slot.old_member.size() - 1);
      pending_ids.push_back(e.event_id());
      progress.advance();
      return pending.size() < 1024 || lookup();
    };
    const store::Status s = options_.order == ReplayOrder::kArrival
                                ? store_.scan_events_by_arrival(since, until, wanted, add)
                                : store_.scan_events_by_time(since, until, wanted, add);
    if (s.is_ok() && inner.is_ok()) (void)lookup();
    progress.finish();
    replay_seconds_ = progress.elapsed_seconds();
    if (!s.is_ok() || !inner.is_ok()) {
      std::cerr << "painpoint replay rebuild: reading events: "
                << (s.is_ok() ? inner : s).to_string() << "\n";
      return false;
    }
    // Products with no event in the range still lose their old pain points.
    for (const auto& p : products) runs_[p];
    return true;
  }

  bool finish_all(Report& report) {
    Progress progress(options_.dry_run ? "rebuild: diffing" : "rebuild: committing", runs_.size(),
                      "products");
    for (auto& [product, run] : runs_) {
      progress.finish();  // the report lines go to stdout, maybe the same terminal
      if (!finish(product, run, report)) return false;
      run = ProductRun{};  // done: its clustering and event lists are no longer needed
      progress.advance();
    }
    return true;
  }

  [[nodiscard]] double replay_seconds() const { return replay_seconds_; }

 private:
  void line(const std::string& text) {
    if (options_.verbose) std::cout << "  " << text << "\n";
  }

  bool fail(const std::string& what, const store::Status& s) {
    std::cerr << "painpoint replay rebuild: " << what << ": " << s.to_string() << "\n";
    return false;
  }

  bool finish(const std::string& product, ProductRun& run, Report& report);

  const RebuildOptions& options_;
  store::Store& store_;
  StoreStateReader reader_;
  agg::ClusterConfig cfg_;
  EventVectors vectors_;  // semantic mode: each event's stored vector
  std::map<std::string, ProductRun> runs_;
  double replay_seconds_ = 0;
};

bool Rebuilder::finish(const std::string& product, ProductRun& run, Report& report) {
  if (!run.aggregator) run.aggregator = std::make_unique<agg::Aggregator>(cfg_, nullptr);
  agg::Aggregator& aggregator = *run.aggregator;
  const std::size_t n = run.event_ids.size();

  // --- the old side: summaries, how stored memberships resolve -------------------------------
  std::map<std::string, v1::PainPointSummary> old_summaries;
  if (store::Status s = store_.scan_summaries(product,
                                              [&](const v1::PainPointSummary& x) {
                                                old_summaries[x.id()] = x;
                                                return true;
                                              });
      !s.is_ok()) {
    return fail("reading summaries of " + product, s);
  }
  auto old_resolve = [&](std::string id) {
    for (int hops = 0; hops < 1000; ++hops) {
      const auto it = old_summaries.find(id);
      if (it == old_summaries.end() || it->second.status() != v1::STATUS_MERGED) break;
      id = it->second.merged_into();
    }
    return id;
  };
  // Old groups: every active pain point (even without replayed events: it must get a fate) and
  // the candidates replayed events belonged to.
  IdTable old_groups;
  std::vector<InheritanceGroup> old_group_info;
  for (const auto& [id, s] : old_summaries) {
    if (s.status() != v1::STATUS_ACTIVE) continue;
    old_groups.intern(id);
    old_group_info.push_back({true});
  }
  std::vector<std::uint32_t> old_final(n, kNoGroup);  // per event: old group
  {
    std::vector<std::uint32_t> memo(run.old_ids.size(), kNoGroup - 1);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t m = run.old_member[i];
      if (m == kNoGroup) continue;
      if (memo[m] == kNoGroup - 1) {
        const std::string id = old_resolve(run.old_ids.at(m));
        const auto it = old_summaries.find(id);
        if (it != old_summaries.end() && it->second.status() != v1::STATUS_ACTIVE) {
          memo[m] = kNoGroup;  // ends at a retired id: in no group today
        } else {
          const std::size_t before = old_groups.size();
          memo[m] = old_groups.intern(id);
          if (old_groups.size() > before) old_group_info.push_back({false});  // a candidate
        }
      }
      old_final[i] = memo[m];
    }
  }

  // --- the new side ----------------------------------------------------------------------------
  agg::Changes first = aggregator.take_changes();
  std::set<std::string> promoted;
  for (const auto& s : first.summaries) {
    if (s.status() == v1::STATUS_ACTIVE) promoted.insert(s.id());
  }
  IdTable new_groups;
  std::vector<std::uint32_t> new_final(n);
  {
    std::vector<std::uint32_t> memo(run.new_ids.size(), kNoGroup);
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t& m = memo[run.assigned[i]];
      if (m == kNoGroup) m = new_groups.intern(aggregator.resolve(run.new_ids.at(run.assigned[i])));
      new_final[i] = m;
    }
  }
  std::vector<InheritanceGroup> new_group_info(new_groups.size());
  for (std::uint32_t g = 0; g < new_groups.size(); ++g) {
    new_group_info[g].published = promoted.contains(new_groups.at(g));
  }

  InheritanceInput input;
  input.old_groups = old_group_info;
  input.new_groups = new_group_info;
  input.threshold = options_.inherit_threshold;
  input.events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    InheritanceInput::Event e;
    if (old_final[i] != kNoGroup) e.old_group = old_final[i];
    e.new_group = new_final[i];
    input.events.push_back(e);
  }
  const InheritanceResult match = match_inheritance(input);

  // Final id of every new group: inherited, or its own unless subscribers already know that id
  // for something else (then a fresh one that nobody has used).
  std::vector<std::string> final_id(new_groups.size());
  std::set<std::string> taken;
  for (std::uint32_t g = 0; g < new_groups.size(); ++g) {
    if (match.heir_of[g]) taken.insert(old_groups.at(*match.heir_of[g]));
  }
  for (std::uint32_t g = 0; g < new_groups.size(); ++g) {
    if (match.heir_of[g]) final_id[g] = old_groups.at(*match.heir_of[g]);
  }
  for (std::uint32_t g = 0; g < new_groups.size(); ++g) {
    if (match.heir_of[g]) continue;
    std::string id = new_groups.at(g);
    for (std::uint32_t k = 0; old_summaries.contains(id) || taken.contains(id); ++k) {
      char hex[17];
      std::snprintf(
          hex, sizeof hex, "%016llx",
          static_cast<unsigned long long>(agg::fnv1a64(
              product + "\x1ereplay\x1e" + new_groups.at(g) + "\x1e" + std::to_string(k))));
      id = std::string("pp-") + hex;
    }
    taken.insert(id);
    final_id[g] = id;
  }
  std::set<std::string> live(taken.begin(), taken.end());

  // --- curation ----------------------------------------------------------------------------------
  const agg::CurationRecord curation = agg::read_curation(reader_, product);
  auto group_holding = [&](const std::string& old_id) -> std::optional<std::uint32_t> {
    const auto o = [&]() -> std::optional<std::uint32_t> {
      for (std::uint32_t i = 0; i < old_groups.size(); ++i) {
        if (old_groups.at(i) == old_id) return i;
      }
      return std::nullopt;
    }();
    if (!o || match.old_fates[*o].kind != OldFate::Kind::kInherited) return std::nullopt;
    return match.old_fates[*o].new_group;
  };
  auto old_index = [&](const std::string& id) -> std::optional<std::uint32_t> {
    for (std::uint32_t i = 0; i < old_groups.size(); ++i) {
      if (old_groups.at(i) == id) return i;
    }
    return std::nullopt;
  };
  // Splits: a pair kept apart where one side kept its id and the other merged into it again
  // (the fresh clustering does not know the split) is split again; both alive: kept apart.
  struct Resplit {
    std::string origin;  // final id holding the events now
    std::string id;      // the split-off id to restore
    std::uint32_t old_group;
  };
  std::vector<Resplit> resplits;
  std::set<std::uint32_t> resplit_groups;
  agg::Succession succession;
  for (const auto& [a, b] : curation.apart) {
    const auto ga = group_holding(a), gb = group_holding(b);
    if (ga && gb) {
      succession.keep_apart.emplace_back(a, b);
      ++report.curation_applied;
      line("curation: " + a + " and " + b + " kept apart");
      continue;
    }
    const std::string& kept = ga ? a : b;
    const std::string& gone = ga ? b : a;
    const auto og = old_index(gone);
    if ((ga || gb) && og && match.old_fates[*og].kind == OldFate::Kind::kMerged &&
        match.old_fates[*og].new_group == *(ga ? ga : gb) && !resplit_groups.contains(*og)) {
      resplits.push_back({kept, gone, *og});
      resplit_groups.insert(*og);
      continue;
    }
    ++report.curation_dropped;
    line("curation: split " + a + " / " + b +
         " not re-applied (neither side survives as a pain point)");
  }

  // --- succession: renames, fates -------------------------------------------------------------
  for (std::uint32_t g = 0; g < new_groups.size(); ++g) {
    if (!match.heir_of[g] && final_id[g] == new_groups.at(g)) continue;
    std::int64_t min_version = 0;
    if (const auto it = old_summaries.find(final_id[g]); it != old_summaries.end()) {
      min_version = it->second.version();
    }
    succession.renames.push_back({new_groups.at(g), final_id[g], min_version});
  }
  std::vector<v1::PainPointSummary> finals;  // final records of old ids
  for (std::uint32_t o = 0; o < old_groups.size(); ++o) {
    const OldFate& fate = match.old_fates[o];
    const std::string& id = old_groups.at(o);
    if (fate.kind == OldFate::Kind::kInherited) {
      if (old_group_info[o].published) {
        ++report.kept;
        char j[16];
        std::snprintf(j, sizeof j, "%.2f", fate.jaccard);
        if (fate.jaccard < 1.0) line("kept    " + id + " (jaccard " + j + ")");
      }
      continue;
    }
    if (fate.kind == OldFate::Kind::kDropped || resplit_groups.contains(o)) continue;
    v1::PainPointSummary fin = old_summaries.at(id);
    fin.set_version(fin.version() + 1);
    if (fate.kind == OldFate::Kind::kMerged) {
      const std::string& into = final_id[fate.new_group];
      fin.set_status(v1::STATUS_MERGED);
      fin.set_merged_into(into);
      succession.merged_into.emplace_back(id, into);
      ++report.merged;
      char share[16];
      std::snprintf(share, sizeof share, "%.0f%%", 100 * fate.jaccard);
      line("merged  " + id + " -> " + into + " (" + share + " of its events)");
    } else {
      fin.set_status(v1::STATUS_RETIRED);
      succession.retired.push_back(id);
      ++report.retired;
      line("retired " + id);
    }
    finals.push_back(std::move(fin));
  }
  // Human merges: the merged-away side's events belong with the survivor.
  struct Remerge {
    std::uint32_t group;  // the new group holding most of the merged-away events
    std::string from;     // the merge as recorded
    std::string into;     // where `into` lives on
  };
  succession.human_merges = curation.merges;
  std::vector<Remerge> remerges;
  for (const auto& [from, into] : curation.merges) {
    // Where do the events that went through `from` sit now?
    std::map<std::uint32_t, std::int64_t> where;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (run.old_member[i] == kNoGroup) continue;
      std::string id = run.old_ids.at(run.old_member[i]);
      bool through = false;
      for (int hops = 0; hops < 1000 && !through; ++hops) {
        through = id == from;
        const auto it = old_summaries.find(id);
        if (it == old_summaries.end() || it->second.status() != v1::STATUS_MERGED) break;
        id = it->second.merged_into();
      }
      if (!through) continue;
      ++where[new_final[i]];
      ++total;
    }
    const std::string survivor = old_resolve(into);
    if (total == 0 || !live.contains(survivor) || !group_holding(survivor)) {
      ++report.curation_dropped;
      line("curation: merge " + from + " -> " + into + " not re-applied (" +
           (total == 0 ? "no replayed events" : into + " did not survive") + ")");
      continue;
    }
    const auto best =
        std::max_element(where.begin(), where.end(),
                         [](const auto& x, const auto& y) { return x.second < y.second; });
    const std::string& now = final_id[best->first];
    if (now == survivor) continue;  // still together: nothing to do
    if (!new_group_info[best->first].published) {
      ++report.curation_dropped;
      line("curation: merge " + from + " -> " + into + " not re-applied (its events are emerging)");
      continue;
    }
    remerges.push_back({best->first, from, survivor});
  }

  if (const auto out = aggregator.succeed(product, &reader_, succession); !out.ok()) {
    std::cerr << "painpoint replay rebuild: " << product << ": succession failed: " << out.message
              << "\n";
    return false;
  }
  // Final id per event (index into final_id, or an override for re-applied curation).
  std::vector<std::string> event_final(n);
  for (std::size_t i = 0; i < n; ++i) event_final[i] = final_id[new_final[i]];

  for (const Resplit& r : resplits) {
    std::vector<v1::FeedbackEvent> events;
    std::vector<float> embeddings;  // semantic mode: each event's stored vector, in order
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < n; ++i) {
      if (old_final[i] != r.old_group || event_final[i] != r.origin) continue;
      std::optional<v1::StoredEvent> stored;
      if (store::Status s = store_.get_event(run.event_ids[i], &stored); !s.is_ok()) {
        return fail("reading an event to split", s);
      }
      if (!stored) continue;
      events.push_back(stored->event());
      const std::span<const float> v = vectors_.vector_of(*stored);
      embeddings.insert(embeddings.end(), v.begin(), v.end());
      which.push_back(i);
    }
    const auto out = aggregator.split(product, r.origin, events, embeddings);
    if (!out.ok()) {
      ++report.curation_dropped;
      line("curation: split of " + r.id + " from " + r.origin + " not re-applied: " + out.message);
      continue;
    }
    agg::Succession rename;
    rename.renames.push_back({out.id, r.id, old_summaries.at(r.id).version()});
    if (const auto o2 = aggregator.succeed(product, nullptr, rename); !o2.ok()) {
      std::cerr << "painpoint replay rebuild: " << product << ": " << o2.message << "\n";
      return false;
    }
    for (std::size_t i : which) event_final[i] = r.id;
    live.insert(r.id);
    ++report.kept;
    ++report.curation_applied;
    line("curation: split of " + r.id + " from " + r.origin + " re-applied (" +
         std::to_string(which.size()) + " events)");
  }
  // What a re-merged event's membership names: the merged-away id, as after the human merge
  // (memberships name the pain point at assignment; the merge record resolves it), so that the
  // next rebuild still finds the events that went through it.
  std::vector<std::optional<std::string>> member_override(n);
  for (const Remerge& m : remerges) {
    std::string moving = final_id[m.group];
    if (!match.heir_of[m.group] && !live.contains(m.from)) {
      // A fresh cluster: it takes the merged-away id back, so the merge repeats as recorded.
      agg::Succession rename;
      const auto old = old_summaries.find(m.from);
      rename.renames.push_back(
          {moving, m.from, old != old_summaries.end() ? old->second.version() : 0});
      if (aggregator.succeed(product, nullptr, rename).ok()) {
        for (auto& id : event_final) {
          if (id == moving) id = m.from;
        }
        live.erase(moving);
        live.insert(m.from);
        moving = m.from;
      }
    }
    const auto out = aggregator.merge(product, moving, m.into);
    if (!out.ok()) {
      ++report.curation_dropped;
      line("curation: merge " + m.from + " -> " + m.into + " not re-applied: " + out.message);
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (event_final[i] != moving) continue;
      member_override[i] = moving;
      event_final[i] = m.into;
    }
    live.erase(moving);
    ++report.curation_applied;
    line("curation: merge " + m.from + " -> " + m.into + " re-applied");
  }
  for (const auto& [id, label] : curation.labels) {
    if (live.contains(id)) {
      if (aggregator.rename(product, id, label).ok()) {
        ++report.curation_applied;
        line("curation: label of " + id + " re-applied");
        continue;
      }
    }
    ++report.curation_dropped;
    line("curation: label \"" + label + "\" of " + id +
         " dropped (the pain point did not survive)");
  }

  agg::Changes second = aggregator.take_changes();

  // --- what to write
  // ------------------------------------------------------------------------------
  store::CommitBatch batch;
  {
    std::map<std::string, std::optional<std::string>> state;
    for (auto& w : first.state) state[std::move(w.key)] = std::move(w.value);
    for (auto& w : second.state) state[std::move(w.key)] = std::move(w.value);
    const std::string prefix = agg::product_state_prefix(product);
    if (store::Status s = store_.scan_state(prefix,
                                            [&](std::string_view key, std::string_view) {
                                              state.try_emplace(std::string(key), std::nullopt);
                                              return true;
                                            });
        !s.is_ok()) {
      return fail("reading the state of " + product, s);
    }
    batch.aggregator_state.reserve(state.size());
    for (auto& [k, v] : state) batch.aggregator_state.push_back({k, std::move(v)});
  }
  std::map<std::string, v1::PainPointSummary> summaries;
  for (auto& s : first.summaries) {
    if (s.status() == v1::STATUS_ACTIVE) summaries[s.id()] = std::move(s);
  }
  for (auto& s : second.summaries) summaries[s.id()] = std::move(s);
  for (auto& s : finals) summaries[s.id()] = std::move(s);
  std::size_t fresh = 0;
  for (auto& [id, s] : summaries) {
    const auto old = old_summaries.find(id);
    const bool known = old != old_summaries.end();
    if (s.status() == v1::STATUS_ACTIVE && !live.contains(id)) continue;  // renamed away
    if (s.status() != v1::STATUS_ACTIVE && !known) continue;  // never published: nothing to end
    if (s.status() == v1::STATUS_ACTIVE && (!known || old->second.status() != v1::STATUS_ACTIVE)) {
      ++fresh;
      line("new     " + id + " (" + std::to_string(s.event_count()) + " events)");
    }
    if (known && same_content(s, old->second)) continue;
    batch.summaries.push_back(s);
  }
  batch.publish_summaries = true;
  report.fresh += fresh;

  // Memberships: every replayed event names its final pain point (or candidate).
  std::size_t moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string before =
        old_final[i] == kNoGroup ? std::string() : old_groups.at(old_final[i]);
    if (event_final[i] != before) ++moved;
    const std::string& now = member_override[i] ? *member_override[i] : event_final[i];
    std::optional<std::string> stored;
    if (run.old_member[i] != kNoGroup) stored = run.old_ids.at(run.old_member[i]);
    if (stored != now) {
      batch.memberships.push_back({run.event_ids[i], product, now});
      batch.memberships_known.emplace_back(
          store::KnownMembership{run.occurred_micros[i], std::move(stored)});
    }
  }
  // Events of the product outside the replayed range leave their pain points.
  std::size_t left_out = 0;
  if (options_.since || options_.until) {
    auto collect = [&](TimePoint from, TimePoint to) {
      auto this_product = [&](std::string_view p) { return p == product; };
      return store_.scan_events_by_time(from, to, this_product, [&](const v1::StoredEvent& e) {
        if (e.event().product_id() == product) {
          batch.removed_memberships.push_back(e.event().event_id());
          ++left_out;
        }
        return true;
      });
    };
    if (options_.since) {
      if (store::Status s = collect(TimePoint::min(), *options_.since); !s.is_ok()) {
        return fail("reading events before --since", s);
      }
    }
    if (options_.until) {
      if (store::Status s = collect(*options_.until, TimePoint::max()); !s.is_ok()) {
        return fail("reading events after --until", s);
      }
    }
  }

  ++report.products;
  report.events += n;
  report.moved += moved;
  report.left_out += left_out;
  report.published += batch.summaries.size();
  std::cout << "product " << product << ": " << n << " events, " << live.size()
            << " pain points and candidates, " << moved << " events moved, "
            << batch.summaries.size() << " summaries to publish"
            << (left_out > 0 ? ", " + std::to_string(left_out) + " events outside the range" : "")
            << "\n";
  if (options_.dry_run) return true;
  if (store::Status s = store_.commit(batch); !s.is_ok()) {
    return fail("committing the rebuild of " + product, s);
  }
  return true;
}

// A rebuild may change the clustering the stored state depends on (another encoder) only if
// it rebuilds everything: otherwise products left out would keep a state of the old encoder.
// `current` receives the clustering this rebuild uses, recorded after a whole-history rebuild.
bool rebuild_clustering_fits(const RebuildOptions& options, store::Store& store,
                             const agg::ClusterConfig& config, bool word_vectors_loaded,
                             bool whole_history, std::string* current) {
  std::string error;
  auto described = describe_clustering(
      config,
      {config.encoder == agg::EncoderMode::kSemantic ? encoder_path_for(options.encoder)
                                                     : std::filesystem::path(),
       word_vectors_loaded ? word_vectors_path_for(options.word_vectors) : std::filesystem::path()},
      &error);
  if (!described) {
    std::cerr << "painpoint replay rebuild: clustering: " << error << "\n";
    return false;
  }
  *current = std::move(*described);
  std::optional<std::string> recorded;
  if (store::Status s = store.clustering(&recorded); !s.is_ok()) {
    std::cerr << "painpoint replay rebuild: " << s.to_string() << "\n";
    return false;
  }
  if (!recorded || whole_history) return true;
  const ClusteringChange change = compare_clustering(*recorded, *current);
  if (change.incompatible.empty()) return true;
  std::cerr << "painpoint replay rebuild: this configuration changes what the stored state is "
               "built on ("
            << joined(change.incompatible)
            << "); such a rebuild must cover every product and the whole history (leave out "
               "--product, --since and --until)\n";
  return false;
}

}  // namespace

base::ExitCode run_replay_rebuild(const RebuildOptions& options) {
  ServiceConfig config;
  if (options.config_file) {
    auto loaded = load_service_config(*options.config_file);
    if (!loaded.config) {
      std::cerr << "painpoint replay rebuild: config " << options.config_file->string() << ": "
                << loaded.error << "\n";
      return base::ExitCode::kBadUsage;
    }
    config = std::move(*loaded.config);
  }
  aggregator::LoadedEncoder encoder;
  if (config.cluster.encoder == aggregator::EncoderMode::kSemantic) {
    encoder = load_encoder_for(options.encoder);
    if (!encoder.encoder) {
      std::cerr << "painpoint replay rebuild: sentence encoder: " << encoder.detail << "\n";
      return base::ExitCode::kBadUsage;
    }
    config.cluster.embedding_dims = aggregator::SentenceEncoder::kDims;
  }
  aggregator::LoadedVectors vectors = load_vectors_for(options.word_vectors);
  if (vectors.vectors) {
    config.cluster.word_vectors = vectors.vectors.get();
  } else if (!options.word_vectors.empty()) {
    std::cerr << "painpoint replay rebuild: word vectors " << options.word_vectors.string() << ": "
              << vectors.detail << "\n";
    return base::ExitCode::kBadUsage;
  }

  std::unique_ptr<store::Store> store;
  store::StoreOptions store_options;
  store_options.create_if_missing = false;
  if (store::Status s = store::Store::open(options.data_dir, store_options, &store); !s.is_ok()) {
    if (s.code() == store::StoreErrc::kLocked) {
      std::cerr << "painpoint replay rebuild: " << options.data_dir.string()
                << " is in use by a running painpoint process (stop `painpoint serve` first; a "
                   "rebuild replaces state that serve holds in memory)\n";
      return base::ExitCode::kStoreLocked;
    }
    std::cerr << "painpoint replay rebuild: cannot open " << options.data_dir.string() << ": "
              << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }

  // Events committed after serve's last aggregator checkpoint (it crashed) are replayed into
  // the stored state by the next serve; a rebuild would count them twice. Serve's recovery
  // comes first.
  std::size_t unsaved = 0;
  if (store::Status s = store->scan_unsaved_events([&](const v1::StoredEvent&) {
        ++unsaved;
        return true;
      });
      !s.is_ok()) {
    std::cerr << "painpoint replay rebuild: " << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  if (unsaved > 0) {
    std::cerr << "painpoint replay rebuild: " << unsaved
              << " stored events are not in the saved aggregator state yet (serve stopped "
                 "without its final checkpoint); start `painpoint serve` on this directory once "
                 "and stop it with SIGTERM, then rebuild\n";
    return base::ExitCode::kCannotProceed;
  }

  std::set<std::string> products;
  std::uint64_t total = 0;
  const auto stats = store->product_stats();
  for (const auto& p : stats) {
    if (!options.products.empty() && std::find(options.products.begin(), options.products.end(),
                                               p.product_id()) == options.products.end()) {
      continue;
    }
    products.insert(p.product_id());
    total += static_cast<std::uint64_t>(p.event_count());
  }
  for (const auto& p : options.products) {
    if (!products.contains(p)) {
      std::cerr << "painpoint replay rebuild: no stored events of product " << p << "\n";
      return base::ExitCode::kCannotProceed;
    }
  }
  // With a time range the number of replayed events is not known up front.
  if (options.since || options.until) total = 0;
  const bool whole_history = options.products.empty() && !options.since && !options.until;
  std::string clustering;
  if (!rebuild_clustering_fits(options, *store, config.cluster, vectors.vectors != nullptr,
                               whole_history, &clustering)) {
    return base::ExitCode::kCannotProceed;
  }

  Rebuilder rebuilder(options, *store, config.cluster, encoder.encoder.get());
  const auto t0 = std::chrono::steady_clock::now();
  if (!rebuilder.replay(products, total)) return base::ExitCode::kFailed;
  Report report;
  if (!rebuilder.finish_all(report)) return base::ExitCode::kFailed;
  if (whole_history && !options.dry_run) {
    if (store::Status s = store->record_clustering(clustering); !s.is_ok()) {
      std::cerr << "painpoint replay rebuild: " << s.to_string() << "\n";
      return base::ExitCode::kFailed;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "rebuild: %zu products, %zu events, kept %zu, new %zu, merged %zu, retired %zu, events "
      "moved %zu, curation re-applied %zu, dropped %zu, summaries %s %zu, %.3f s (%s order, "
      "replay %.3f s, %.0f events/s)%s\n",
      report.products, report.events, report.kept, report.fresh, report.merged, report.retired,
      report.moved, report.curation_applied, report.curation_dropped,
      options.dry_run ? "to publish" : "published", report.published, secs,
      options.order == ReplayOrder::kArrival ? "arrival" : "occurred-at",
      rebuilder.replay_seconds(), secs > 0 ? static_cast<double>(report.events) / secs : 0.0,
      options.dry_run ? " [dry run: nothing written]" : "");
  std::fflush(stdout);
  return base::ExitCode::kOk;
}

}  // namespace painpoint::service

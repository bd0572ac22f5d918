// `painpoint replay rebuild`: see replay.h and docs/replay.md.
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "clustering_identity.h"
#include "config_file.h"
#include "event_vectors.h"
#include "id_inheritance.h"
#include "painpoint/aggregator/aggregator.h"
#include "painpoint/aggregator/text.h"
#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"
#include "painpoint/store/store.h"
#include "product_partitions.h"
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

// Splits: a pair kept apart where one side kept its id and the other merged into it again
// (the fresh clustering does not know the split) is split again.
struct Resplit {
  std::string origin;  // final id holding the events now
  std::string id;      // the split-off id to restore
  std::uint32_t old_group;
};

// Human merges: the merged-away side's events belong with the survivor.
struct Remerge {
  std::uint32_t group;  // the new group holding most of the merged-away events
  std::string from;     // the merge as recorded
  std::string into;     // where `into` lives on
};

// What Rebuilder::finish() works out for one product, step by step: the old grouping of the
// replayed events, the new one, which ids survive, and the curation to re-apply.
struct ProductRebuild {
  std::size_t n = 0;  // replayed events
  // The old side: summaries, and how stored memberships resolve.
  std::map<std::string, v1::PainPointSummary> old_summaries;
  IdTable old_groups;
  std::vector<InheritanceGroup> old_group_info;
  std::vector<std::uint32_t> old_final;  // per event: old group, or kNoGroup
  // The new side.
  agg::Changes first;  // the replay's changes
  IdTable new_groups;
  std::vector<std::uint32_t> new_final;  // per event: new group
  std::vector<InheritanceGroup> new_group_info;
  // Which ids survive.
  InheritanceResult match;
  std::vector<std::string> final_id;  // per new group
  std::set<std::string> live;
  // Curation and succession.
  agg::CurationRecord curation;
  agg::Succession succession;
  std::vector<Resplit> resplits;
  std::set<std::uint32_t> resplit_groups;
  std::vector<v1::PainPointSummary> finals;  // final records of old ids
  std::vector<Remerge> remerges;
  // Per event: its final id, and what its membership names when that differs (re-merges).
  std::vector<std::string> event_final;
  std::vector<std::optional<std::string>> member_override;
  agg::Changes second;  // the changes of succession and curation

  // Follows merge records from an old id to where it lives on.
  [[nodiscard]] std::string old_resolve(std::string id) const {
    for (int hops = 0; hops < agg::Aggregator::kMaxMergeHops; ++hops) {
      const auto it = old_summaries.find(id);
      if (it == old_summaries.end() || it->second.status() != v1::STATUS_MERGED) break;
      id = it->second.merged_into();
    }
    return id;
  }
  [[nodiscard]] std::optional<std::uint32_t> old_index(const std::string& id) const {
    for (std::uint32_t i = 0; i < old_groups.size(); ++i) {
      if (old_groups.at(i) == id) return i;
    }
    return std::nullopt;
  }
  // The new group that inherited the old id, if one did.
  [[nodiscard]] std::optional<std::uint32_t> group_holding(const std::string& old_id) const {
    const auto o = old_index(old_id);
    if (!o || match.old_fates[*o].kind != OldFate::Kind::kInherited) return std::nullopt;
    return match.old_fates[*o].new_group;
  }
};

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
    if (store::Status s = ProductPartitions::from_store(store_, &partitions_); !s.ok()) {
      return fail("reading the input partition count", s);
    }
    // Stored memberships are looked up in batches (one MultiGet per chunk of events).
    std::vector<std::pair<ProductRun*, std::size_t>> pending;
    std::vector<std::string> pending_ids;
    std::vector<std::optional<std::string>> members;
    store::Status inner;
    auto lookup = [&]() {
      std::vector<std::string_view> ids(pending_ids.begin(), pending_ids.end());
      inner = store_.get_memberships(ids, &members);
      if (!inner.ok()) return false;
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
      partitions_.learn(stored);
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
    if (s.ok() && inner.ok()) (void)lookup();
    progress.finish();
    replay_seconds_ = progress.elapsed_seconds();
    if (!s.ok() || !inner.ok()) {
      std::cerr << "painpoint replay rebuild: reading events: "
                << (s.ok() ? inner : s).to_string() << "\n";
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

  // False (reported) once a read of the stored state failed: what was read after it is incomplete.
  bool state_readable(const std::string& product) {
    const auto& error = reader_.read_error();
    if (!error) return true;
    std::cerr << "painpoint replay rebuild: " << product << ": " << *error << "\n";
    return false;
  }

  bool finish(const std::string& product, ProductRun& run, Report& report);
  // The steps of finish(), in order.
  bool read_old_side(const std::string& product, const ProductRun& run, ProductRebuild& r);
  static void group_new_side(const ProductRun& run, agg::Aggregator& aggregator, ProductRebuild& r);
  void name_new_groups(const std::string& product, ProductRebuild& r) const;
  void plan_splits(ProductRebuild& r, Report& report);
  void plan_succession(ProductRebuild& r, Report& report);
  void plan_remerges(const ProductRun& run, ProductRebuild& r, Report& report);
  bool reapply_splits(const std::string& product, const ProductRun& run,
                      agg::Aggregator& aggregator, ProductRebuild& r, Report& report);
  void reapply_merges(const std::string& product, agg::Aggregator& aggregator, ProductRebuild& r,
                      Report& report);
  void reapply_labels(const std::string& product, agg::Aggregator& aggregator, ProductRebuild& r,
                      Report& report);
  bool add_state_writes(const std::string& product, ProductRebuild& r, store::CommitBatch& batch);
  std::size_t add_summary_writes(ProductRebuild& r, store::CommitBatch& batch);
  static std::size_t add_membership_writes(const std::string& product, const ProductRun& run,
                                           const ProductRebuild& r, store::CommitBatch& batch);
  bool add_left_out(const std::string& product, store::CommitBatch& batch, std::size_t* left_out);

  const RebuildOptions& options_;
  store::Store& store_;
  StoreStateReader reader_;
  agg::ClusterConfig cfg_;
  EventVectors vectors_;  // semantic mode: each event's stored vector
  ProductPartitions partitions_{std::nullopt};
  std::map<std::string, ProductRun> runs_;
  double replay_seconds_ = 0;
};

bool Rebuilder::finish(const std::string& product, ProductRun& run, Report& report) {
  if (!run.aggregator) run.aggregator = std::make_unique<agg::Aggregator>(cfg_, nullptr);
  agg::Aggregator& aggregator = *run.aggregator;
  ProductRebuild r;
  r.n = run.event_ids.size();

  if (!read_old_side(product, run, r)) return false;
  group_new_side(run, aggregator, r);
  name_new_groups(product, r);
  r.curation = agg::read_curation(reader_, product);
  if (!state_readable(product)) return false;
  plan_splits(r, report);
  plan_succession(r, report);
  plan_remerges(run, r, report);
  if (const auto out = aggregator.succeed(product, &reader_, r.succession); !out.ok()) {
    std::cerr << "painpoint replay rebuild: " << product << ": succession failed: " << out.message
              << "\n";
    return false;
  }
  if (!state_readable(product)) return false;
  // Final id per event (index into final_id, or an override for re-applied curation).
  r.event_final.resize(r.n);
  for (std::size_t i = 0; i < r.n; ++i) r.event_final[i] = r.final_id[r.new_final[i]];
  if (!reapply_splits(product, run, aggregator, r, report)) return false;
  reapply_merges(product, aggregator, r, report);
  reapply_labels(product, aggregator, r, report);
  r.second = aggregator.take_changes();

  store::CommitBatch batch;
  if (!add_state_writes(product, r, batch)) return false;
  report.fresh += add_summary_writes(r, batch);
  const std::size_t moved = add_membership_writes(product, run, r, batch);
  std::size_t left_out = 0;
  if (!add_left_out(product, batch, &left_out)) return false;

  ++report.products;
  report.events += r.n;
  report.moved += moved;
  report.left_out += left_out;
  report.published += batch.summaries.size();
  std::cout << "product " << product << ": " << r.n << " events, " << r.live.size()
            << " pain points and candidates, " << moved << " events moved, "
            << batch.summaries.size() << " summaries to publish"
            << (left_out > 0 ? ", " + std::to_string(left_out) + " events outside the range" : "")
            << "\n";
  if (options_.dry_run) return true;
  partitions_.assign(&batch);
  if (store::Status s = store_.commit(batch); !s.ok()) {
    return fail("committing the rebuild of " + product, s);
  }
  return true;
}

// The old side: the product's summaries, its old groups (every active pain point, even without
// replayed events: it must get a fate, and the candidates replayed events belonged to) and each
// replayed event's old group.
bool Rebuilder::read_old_side(const std::string& product, const ProductRun& run,
                              ProductRebuild& r) {
  if (store::Status s = store_.scan_summaries(product,
                                              [&](const v1::PainPointSummary& x) {
                                                r.old_summaries[x.id()] = x;
                                                return true;
                                              });
      !s.ok()) {
    return fail("reading summaries of " + product, s);
  }
  for (const auto& [id, s] : r.old_summaries) {
    if (s.status() != v1::STATUS_ACTIVE) continue;
    r.old_groups.intern(id);
    r.old_group_info.push_back({true});
  }
  r.old_final.assign(r.n, kNoGroup);
  std::vector<std::uint32_t> memo(run.old_ids.size(), kNoGroup - 1);
  for (std::size_t i = 0; i < r.n; ++i) {
    const std::uint32_t m = run.old_member[i];
    if (m == kNoGroup) continue;
    if (memo[m] == kNoGroup - 1) {
      const std::string id = r.old_resolve(run.old_ids.at(m));
      const auto it = r.old_summaries.find(id);
      if (it != r.old_summaries.end() && it->second.status() != v1::STATUS_ACTIVE) {
        memo[m] = kNoGroup;  // ends at a retired id: in no group today
      } else {
        const std::size_t before = r.old_groups.size();
        memo[m] = r.old_groups.intern(id);
        if (r.old_groups.size() > before) r.old_group_info.push_back({false});  // a candidate
      }
    }
    r.old_final[i] = memo[m];
  }
  return true;
}

// The new side: the replay's clusters as the aggregator resolves them, and which were promoted.
void Rebuilder::group_new_side(const ProductRun& run, agg::Aggregator& aggregator,
                               ProductRebuild& r) {
  r.first = aggregator.take_changes();
  std::set<std::string> promoted;
  for (const auto& s : r.first.summaries) {
    if (s.status() == v1::STATUS_ACTIVE) promoted.insert(s.id());
  }
  r.new_final.resize(r.n);
  std::vector<std::uint32_t> memo(run.new_ids.size(), kNoGroup);
  // Semantic mode moves members at maintenance: the replay's memberships (one per event, in
  // replay order) name where each event is now, which may differ from where add() put it.
  const auto& members = r.first.memberships;
  for (std::size_t i = 0; i < r.n; ++i) {
    if (i < members.size() && members[i].event_id == run.event_ids[i] &&
        members[i].pain_point_id != run.new_ids.at(run.assigned[i])) {
      r.new_final[i] = r.new_groups.intern(aggregator.resolve(members[i].pain_point_id));
      continue;
    }
    std::uint32_t& m = memo[run.assigned[i]];
    if (m == kNoGroup) {
      m = r.new_groups.intern(aggregator.resolve(run.new_ids.at(run.assigned[i])));
    }
    r.new_final[i] = m;
  }
  r.new_group_info.resize(r.new_groups.size());
  for (std::uint32_t g = 0; g < r.new_groups.size(); ++g) {
    r.new_group_info[g].published = promoted.contains(r.new_groups.at(g));
  }
}

// Final id of every new group: inherited, or its own unless subscribers already know that id
// for something else (then a fresh one that nobody has used).
void Rebuilder::name_new_groups(const std::string& product, ProductRebuild& r) const {
  InheritanceInput input;
  input.old_groups = r.old_group_info;
  input.new_groups = r.new_group_info;
  input.threshold = options_.inherit_threshold;
  input.events.reserve(r.n);
  for (std::size_t i = 0; i < r.n; ++i) {
    InheritanceInput::Event e;
    if (r.old_final[i] != kNoGroup) e.old_group = r.old_final[i];
    e.new_group = r.new_final[i];
    input.events.push_back(e);
  }
  r.match = match_inheritance(input);

  const std::uint32_t groups = static_cast<std::uint32_t>(r.new_groups.size());
  r.final_id.resize(groups);
  std::set<std::string> taken;
  for (std::uint32_t g = 0; g < groups; ++g) {
    if (r.match.heir_of[g]) taken.insert(r.old_groups.at(*r.match.heir_of[g]));
  }
  for (std::uint32_t g = 0; g < groups; ++g) {
    if (r.match.heir_of[g]) r.final_id[g] = r.old_groups.at(*r.match.heir_of[g]);
  }
  for (std::uint32_t g = 0; g < groups; ++g) {
    if (r.match.heir_of[g]) continue;
    std::string id = r.new_groups.at(g);
    for (std::uint32_t k = 0; r.old_summaries.contains(id) || taken.contains(id); ++k) {
      id = "pp-" + base::hex_u64(agg::fnv1a64(product + "\x1ereplay\x1e" + r.new_groups.at(g) +
                                              "\x1e" + std::to_string(k)));
    }
    taken.insert(id);
    r.final_id[g] = id;
  }
  r.live = std::set<std::string>(taken.begin(), taken.end());
}

// Pairs kept apart: both alive, they stay apart; one merged into the other again, it is split
// again later (reapply_splits); otherwise the record is dropped.
void Rebuilder::plan_splits(ProductRebuild& r, Report& report) {
  for (const auto& [a, b] : r.curation.apart) {
    const auto ga = r.group_holding(a), gb = r.group_holding(b);
    if (ga && gb) {
      r.succession.keep_apart.emplace_back(a, b);
      ++report.curation_applied;
      line("curation: " + a + " and " + b + " kept apart");
      continue;
    }
    const std::string& kept = ga ? a : b;
    const std::string& gone = ga ? b : a;
    const auto og = r.old_index(gone);
    if ((ga || gb) && og && r.match.old_fates[*og].kind == OldFate::Kind::kMerged &&
        r.match.old_fates[*og].new_group == *(ga ? ga : gb) && !r.resplit_groups.contains(*og)) {
      r.resplits.push_back({kept, gone, *og});
      r.resplit_groups.insert(*og);
      continue;
    }
    ++report.curation_dropped;
    line("curation: split " + a + " / " + b +
         " not re-applied (neither side survives as a pain point)");
  }
}

// Renames of new groups to their final ids, and the final record (merged or retired) of every
// old id without heir.
void Rebuilder::plan_succession(ProductRebuild& r, Report& report) {
  for (std::uint32_t g = 0; g < r.new_groups.size(); ++g) {
    if (!r.match.heir_of[g] && r.final_id[g] == r.new_groups.at(g)) continue;
    std::int64_t min_version = 0;
    if (const auto it = r.old_summaries.find(r.final_id[g]); it != r.old_summaries.end()) {
      min_version = it->second.version();
    }
    r.succession.renames.push_back({r.new_groups.at(g), r.final_id[g], min_version});
  }
  for (std::uint32_t o = 0; o < r.old_groups.size(); ++o) {
    const OldFate& fate = r.match.old_fates[o];
    const std::string& id = r.old_groups.at(o);
    if (fate.kind == OldFate::Kind::kInherited) {
      if (r.old_group_info[o].published) {
        ++report.kept;
        char j[16];
        std::snprintf(j, sizeof j, "%.2f", fate.jaccard);
        if (fate.jaccard < 1.0) line("kept    " + id + " (jaccard " + j + ")");
      }
      continue;
    }
    if (fate.kind == OldFate::Kind::kDropped || r.resplit_groups.contains(o)) continue;
    v1::PainPointSummary fin = r.old_summaries.at(id);
    fin.set_version(fin.version() + 1);
    if (fate.kind == OldFate::Kind::kMerged) {
      const std::string& into = r.final_id[fate.new_group];
      fin.set_status(v1::STATUS_MERGED);
      fin.set_merged_into(into);
      r.succession.merged_into.emplace_back(id, into);
      ++report.merged;
      char share[16];
      std::snprintf(share, sizeof share, "%.0f%%", 100 * fate.jaccard);
      line("merged  " + id + " -> " + into + " (" + share + " of its events)");
    } else {
      fin.set_status(v1::STATUS_RETIRED);
      r.succession.retired.push_back(id);
      ++report.retired;
      line("retired " + id);
    }
    r.finals.push_back(std::move(fin));
  }
}

// Human merges whose sides the fresh clustering put apart again: merged again later
// (reapply_merges) when the survivor lives on and the events sit in a published pain point.
void Rebuilder::plan_remerges(const ProductRun& run, ProductRebuild& r, Report& report) {
  r.succession.human_merges = r.curation.merges;
  for (const auto& [from, into] : r.curation.merges) {
    // Where do the events that went through `from` sit now?
    std::map<std::uint32_t, std::int64_t> where;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < r.n; ++i) {
      if (run.old_member[i] == kNoGroup) continue;
      std::string id = run.old_ids.at(run.old_member[i]);
      bool through = false;
      for (int hops = 0; hops < agg::Aggregator::kMaxMergeHops && !through; ++hops) {
        through = id == from;
        const auto it = r.old_summaries.find(id);
        if (it == r.old_summaries.end() || it->second.status() != v1::STATUS_MERGED) break;
        id = it->second.merged_into();
      }
      if (!through) continue;
      ++where[r.new_final[i]];
      ++total;
    }
    const std::string survivor = r.old_resolve(into);
    if (total == 0 || !r.live.contains(survivor) || !r.group_holding(survivor)) {
      ++report.curation_dropped;
      line("curation: merge " + from + " -> " + into + " not re-applied (" +
           (total == 0 ? "no replayed events" : into + " did not survive") + ")");
      continue;
    }
    const auto best =
        std::max_element(where.begin(), where.end(),
                         [](const auto& x, const auto& y) { return x.second < y.second; });
    const std::string& now = r.final_id[best->first];
    if (now == survivor) continue;  // still together: nothing to do
    if (!r.new_group_info[best->first].published) {
      ++report.curation_dropped;
      line("curation: merge " + from + " -> " + into + " not re-applied (its events are emerging)");
      continue;
    }
    r.remerges.push_back({best->first, from, survivor});
  }
}

bool Rebuilder::reapply_splits(const std::string& product, const ProductRun& run,
                               agg::Aggregator& aggregator, ProductRebuild& r, Report& report) {
  for (const Resplit& split : r.resplits) {
    std::vector<v1::FeedbackEvent> events;
    std::vector<float> embeddings;  // semantic mode: each event's stored vector, in order
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < r.n; ++i) {
      if (r.old_final[i] != split.old_group || r.event_final[i] != split.origin) continue;
      std::optional<v1::StoredEvent> stored;
      if (store::Status s = store_.get_event(run.event_ids[i], &stored); !s.ok()) {
        return fail("reading an event to split", s);
      }
      if (!stored) continue;
      events.push_back(stored->event());
      const std::span<const float> v = vectors_.vector_of(*stored);
      embeddings.insert(embeddings.end(), v.begin(), v.end());
      which.push_back(i);
    }
    const auto out = aggregator.split(product, split.origin, events, embeddings);
    if (!out.ok()) {
      ++report.curation_dropped;
      line("curation: split of " + split.id + " from " + split.origin +
           " not re-applied: " + out.message);
      continue;
    }
    agg::Succession rename;
    rename.renames.push_back({out.id, split.id, r.old_summaries.at(split.id).version()});
    if (const auto o2 = aggregator.succeed(product, nullptr, rename); !o2.ok()) {
      std::cerr << "painpoint replay rebuild: " << product << ": " << o2.message << "\n";
      return false;
    }
    for (std::size_t i : which) r.event_final[i] = split.id;
    r.live.insert(split.id);
    ++report.kept;
    ++report.curation_applied;
    line("curation: split of " + split.id + " from " + split.origin + " re-applied (" +
         std::to_string(which.size()) + " events)");
  }
  return true;
}

// What a re-merged event's membership names: the merged-away id, as after the human merge
// (memberships name the pain point at assignment; the merge record resolves it), so that the
// next rebuild still finds the events that went through it.
void Rebuilder::reapply_merges(const std::string& product, agg::Aggregator& aggregator,
                               ProductRebuild& r, Report& report) {
  r.member_override.resize(r.n);
  for (const Remerge& m : r.remerges) {
    std::string moving = r.final_id[m.group];
    if (!r.match.heir_of[m.group] && !r.live.contains(m.from)) {
      // A fresh cluster: it takes the merged-away id back, so the merge repeats as recorded.
      agg::Succession rename;
      const auto old = r.old_summaries.find(m.from);
      rename.renames.push_back(
          {moving, m.from, old != r.old_summaries.end() ? old->second.version() : 0});
      if (aggregator.succeed(product, nullptr, rename).ok()) {
        for (auto& id : r.event_final) {
          if (id == moving) id = m.from;
        }
        r.live.erase(moving);
        r.live.insert(m.from);
        moving = m.from;
      }
    }
    const auto out = aggregator.merge(product, moving, m.into);
    if (!out.ok()) {
      ++report.curation_dropped;
      line("curation: merge " + m.from + " -> " + m.into + " not re-applied: " + out.message);
      continue;
    }
    for (std::size_t i = 0; i < r.n; ++i) {
      if (r.event_final[i] != moving) continue;
      r.member_override[i] = moving;
      r.event_final[i] = m.into;
    }
    r.live.erase(moving);
    ++report.curation_applied;
    line("curation: merge " + m.from + " -> " + m.into + " re-applied");
  }
}

void Rebuilder::reapply_labels(const std::string& product, agg::Aggregator& aggregator,
                               ProductRebuild& r, Report& report) {
  for (const auto& [id, label] : r.curation.labels) {
    if (r.live.contains(id)) {
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
}

// The product's state is replaced: what the replay and the succession wrote, and a delete of
// every other stored key under its prefix.
bool Rebuilder::add_state_writes(const std::string& product, ProductRebuild& r,
                                 store::CommitBatch& batch) {
  std::map<std::string, std::optional<std::string>> state;
  for (auto& w : r.first.state) state[std::move(w.key)] = std::move(w.value);
  for (auto& w : r.second.state) state[std::move(w.key)] = std::move(w.value);
  const std::string prefix = agg::product_state_prefix(product);
  if (store::Status s = store_.scan_state(prefix,
                                          [&](std::string_view key, std::string_view) {
                                            state.try_emplace(std::string(key), std::nullopt);
                                            return true;
                                          });
      !s.ok()) {
    return fail("reading the state of " + product, s);
  }
  // One aggregator per product replays it, so each of these keys is the product's.
  batch.aggregator_state.reserve(state.size());
  for (auto& [k, v] : state) batch.aggregator_state.push_back({k, std::move(v), product});
  return true;
}

// The summaries that changed, published. Returns how many pain points are new.
std::size_t Rebuilder::add_summary_writes(ProductRebuild& r, store::CommitBatch& batch) {
  std::map<std::string, v1::PainPointSummary> summaries;
  for (auto& s : r.first.summaries) {
    if (s.status() == v1::STATUS_ACTIVE) summaries[s.id()] = std::move(s);
  }
  for (auto& s : r.second.summaries) summaries[s.id()] = std::move(s);
  for (auto& s : r.finals) summaries[s.id()] = std::move(s);
  std::size_t fresh = 0;
  for (auto& [id, s] : summaries) {
    const auto old = r.old_summaries.find(id);
    const bool known = old != r.old_summaries.end();
    if (s.status() == v1::STATUS_ACTIVE && !r.live.contains(id)) continue;  // renamed away
    if (s.status() != v1::STATUS_ACTIVE && !known) continue;  // never published: nothing to end
    if (s.status() == v1::STATUS_ACTIVE && (!known || old->second.status() != v1::STATUS_ACTIVE)) {
      ++fresh;
      line("new     " + id + " (" + std::to_string(s.event_count()) + " events)");
    }
    if (known && same_content(s, old->second)) continue;
    batch.summaries.push_back(s);
  }
  batch.publish_summaries = true;
  return fresh;
}

// Memberships: every replayed event names its final pain point (or candidate). Returns how
// many events changed group.
std::size_t Rebuilder::add_membership_writes(const std::string& product, const ProductRun& run,
                                             const ProductRebuild& r, store::CommitBatch& batch) {
  std::size_t moved = 0;
  for (std::size_t i = 0; i < r.n; ++i) {
    const std::string before =
        r.old_final[i] == kNoGroup ? std::string() : r.old_groups.at(r.old_final[i]);
    if (r.event_final[i] != before) ++moved;
    const std::string& now = r.member_override[i] ? *r.member_override[i] : r.event_final[i];
    std::optional<std::string> stored;
    if (run.old_member[i] != kNoGroup) stored = run.old_ids.at(run.old_member[i]);
    if (stored != now) {
      batch.memberships.push_back({run.event_ids[i], product, now});
      batch.memberships_known.emplace_back(
          store::KnownMembership{run.occurred_micros[i], std::move(stored)});
    }
  }
  return moved;
}

// Events of the product outside the replayed range leave their pain points.
bool Rebuilder::add_left_out(const std::string& product, store::CommitBatch& batch,
                             std::size_t* left_out) {
  if (!options_.since && !options_.until) return true;
  auto collect = [&](TimePoint from, TimePoint to) {
    auto this_product = [&](std::string_view p) { return p == product; };
    return store_.scan_events_by_time(from, to, this_product, [&](const v1::StoredEvent& e) {
      if (e.event().product_id() == product) {
        batch.removed_memberships.push_back(e.event().event_id());
        ++*left_out;
      }
      return true;
    });
  };
  if (options_.since) {
    if (store::Status s = collect(TimePoint::min(), *options_.since); !s.ok()) {
      return fail("reading events before --since", s);
    }
  }
  if (options_.until) {
    if (store::Status s = collect(*options_.until, TimePoint::max()); !s.ok()) {
      return fail("reading events after --until", s);
    }
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
  if (store::Status s = store.clustering(&recorded); !s.ok()) {
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

// The configuration to rebuild with, with the encoder and word vectors it names loaded. False
// (reported): the rebuild cannot start.
bool load_rebuild_clustering(const RebuildOptions& options, ServiceConfig* config,
                             aggregator::LoadedEncoder* encoder,
                             aggregator::LoadedVectors* vectors) {
  auto loaded = load_service_config(options.config_file, options.config_overrides);
  if (!loaded.config) {
    std::cerr << "painpoint replay rebuild: config " << loaded.error << "\n";
    return false;
  }
  *config = std::move(*loaded.config);
  if (config->cluster.encoder == aggregator::EncoderMode::kSemantic) {
    *encoder = load_encoder_for(options.encoder);
    if (!encoder->encoder) {
      std::cerr << "painpoint replay rebuild: sentence encoder: " << encoder->detail << "\n";
      return false;
    }
    config->cluster.embedding_dims = aggregator::SentenceEncoder::kDims;
  }
  *vectors = load_vectors_for(options.word_vectors);
  if (vectors->vectors) {
    config->cluster.word_vectors = vectors->vectors.get();
  } else if (!options.word_vectors.empty()) {
    std::cerr << "painpoint replay rebuild: word vectors " << options.word_vectors.string() << ": "
              << vectors->detail << "\n";
    return false;
  }
  return true;
}

// Events committed after serve's last aggregator checkpoint (it crashed, or stopped on a damaged
// state record) are replayed into the stored state by the next serve; a rebuild of their product
// would count them twice, so serve's recovery comes first. Other products' unsaved events are
// no obstacle: their state is not rewritten, and serve replays them as before. `products` empty:
// every product. False (reported): there are such events, or the store could not tell.
bool no_unsaved_events(const store::Store& store, const std::vector<std::string>& products) {
  std::size_t unsaved = 0;
  if (store::Status s = store.scan_unsaved_events([&](const v1::StoredEvent& stored) {
        if (products.empty() || std::find(products.begin(), products.end(),
                                          stored.event().product_id()) != products.end()) {
          ++unsaved;
        }
        return true;
      });
      !s.ok()) {
    std::cerr << "painpoint replay rebuild: " << s.to_string() << "\n";
    return false;
  }
  if (unsaved > 0) {
    std::cerr << "painpoint replay rebuild: " << unsaved
              << " stored events of the products to rebuild are not in the saved aggregator "
                 "state yet (serve stopped without its final checkpoint); start `painpoint "
                 "serve` on this directory once and stop it with SIGTERM, then rebuild\n";
    return false;
  }
  return true;
}

}  // namespace

base::ExitCode run_replay_rebuild(const RebuildOptions& options) {
  ServiceConfig config;
  aggregator::LoadedEncoder encoder;
  aggregator::LoadedVectors vectors;
  if (!load_rebuild_clustering(options, &config, &encoder, &vectors)) {
    return base::ExitCode::kBadUsage;
  }

  std::unique_ptr<store::Store> store;
  store::StoreOptions store_options;
  store_options.create_if_missing = false;
  store_options.upgrade_rule = store_upgrade_rule(std::nullopt);  // a schema 2 directory
  if (store::Status s = store::Store::open(options.data_dir, store_options, &store); !s.ok()) {
    if (s.code == store::StoreErrc::kLocked) {
      std::cerr << "painpoint replay rebuild: " << options.data_dir.string()
                << " is in use by a running painpoint process (stop `painpoint serve` first; a "
                   "rebuild replaces state that serve holds in memory)\n";
      return base::ExitCode::kStoreLocked;
    }
    std::cerr << "painpoint replay rebuild: cannot open " << options.data_dir.string() << ": "
              << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }

  if (!no_unsaved_events(*store, options.products)) return base::ExitCode::kCannotProceed;

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
    if (store::Status s = store->record_clustering(clustering); !s.ok()) {
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

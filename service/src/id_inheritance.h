#pragma once

// Which pain-point ids survive a rebuild (`painpoint replay rebuild`): a pure function of the old
// and new grouping of the replayed events, kept apart from the store and the aggregator so that
// the rule can be tested on its own.
//
// The rule. Groups are compared by member Jaccard, |A ∩ B| / |A ∪ B|, over the replayed events.
// Every new cluster inherits the id of the old group it overlaps most, one-to-one, when the
// Jaccard is at least `threshold` (default 0.5). Pairs are taken greedily by descending Jaccard,
// then descending intersection, then the pair whose old and new groups hold the earliest replayed
// event (so the older part of a split keeps the id, as maintenance merges keep the older id).
// Any two groups' earliest events differ, so the order is total and the result deterministic.
//
// Why 0.5: above it, matching cannot be ambiguous in the common cases: an old group shares more
// than half of the union with its heir, so a second new cluster can overlap it by at most the
// rest. At exactly 0.5 (an even split, or two equal pain points merged) the tie-break decides, and
// one side keeps the id instead of both losing it. Lower thresholds let a pain point that lost
// most of its events keep its name, which is what misleads subscribers.
//
// Publication constraint: an old pain point that subscribers know (published) only passes its id
// to a new pain point (promoted), never to an emerging candidate: the id would vanish from the
// API without a final record. Unpublished old candidates may pass their ids to anything.
//
// Old published groups without an heir get a final fate: MERGED into the new pain point holding
// more than half of their replayed events, if that is a (promoted) pain point; RETIRED otherwise.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace painpoint::service {

struct InheritanceGroup {
  bool published = false;  // old: an active pain point; new: a promoted pain point
};

struct InheritanceInput {
  std::vector<InheritanceGroup> old_groups;
  std::vector<InheritanceGroup> new_groups;
  // Per replayed event, in replay order: its old and new group (indices), nullopt for none
  // (an event the old state never assigned; every replayed event has a new group).
  struct Event {
    std::optional<std::uint32_t> old_group;
    std::uint32_t new_group = 0;
  };
  std::vector<Event> events;
  double threshold = 0.5;
};

struct OldFate {
  enum class Kind { kInherited, kMerged, kRetired, kDropped };
  // kInherited: new group `new_group` carries the id on. kMerged: a published group whose events
  // mostly went to new group `new_group` (which has another id). kRetired: a published group
  // without heir or majority. kDropped: an unpublished candidate without heir (nothing to tell).
  Kind kind = Kind::kRetired;
  std::uint32_t new_group = 0;
  double jaccard = 0;  // kInherited: the pair's Jaccard; kMerged: the share that went there
};

struct InheritanceResult {
  std::vector<OldFate> old_fates;                     // by old group
  std::vector<std::optional<std::uint32_t>> heir_of;  // by new group: the old group it inherits
};

[[nodiscard]] InheritanceResult match_inheritance(const InheritanceInput& input);

}  // namespace painpoint::service

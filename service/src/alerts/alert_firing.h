#pragma once

// Which alerts a commit fires: the aggregator's rules over the batch's summaries, by episode
// (aggregator::AlertEpisodes: an alert when a condition becomes true, re-armed once it is seen
// false), with spikes judged against their product's volume (aggregator::ProductVolumes, fed
// from the store's summaries the first time a product comes up), minus the ids that fired
// before. The store records an alert as fired, and the episodes
// it opened or closed, in the WriteBatch of the change that caused it, so a crash before that
// commit re-derives the alert from the re-read batch and a crash after it never fires it again.
//
// Thread safety: used by the aggregator stage's thread only.

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "painpoint/aggregator/alerts.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class AlertFiring {
 public:
  AlertFiring(std::vector<aggregator::AlertRule> rules, const store::Store& store);

  // Sets batch->alerts to the new alerts of batch->summaries and adds the episode changes to
  // batch->aggregator_state. Ids handed out and episodes changed earlier count even before
  // their commit is done (the stage commits one batch while aggregating the next); a failed
  // commit stops the stage, whose restart starts with an empty memory.
  store::Status add_to(store::CommitBatch* batch);

 private:
  // Reads the open episodes from the store, once.
  store::Status load_episodes();
  // Feeds `product`'s stored summaries to volumes_, the first time it comes up.
  store::Status load_product(std::string_view product_id);

  std::vector<aggregator::AlertRule> rules_;
  const store::Store& store_;
  bool episodes_loaded_ = false;
  aggregator::AlertEpisodes episodes_;
  // Only kept when a spike rule needs it.
  bool track_volumes_ = false;
  aggregator::ProductVolumes volumes_;
  std::unordered_set<std::string> loaded_products_;
  // Ids known to have fired (in this process or, as the store said, before); alerts are rare,
  // and remembering them saves a store read per opened episode.
  std::unordered_set<std::string> fired_;
};

}  // namespace painpoint::service

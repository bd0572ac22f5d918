#pragma once

// Which alerts a commit fires: the aggregator's rules over the batch's summaries
// (aggregator::evaluate_alerts), minus the ids that fired before. The store records an alert as
// fired in the WriteBatch of the change that caused it, so a crash before that commit re-derives
// the alert from the re-read batch and a crash after it never fires it again.
//
// Thread safety: used by the aggregator stage's thread only.

#include <string>
#include <unordered_set>
#include <vector>

#include "painpoint/aggregator/alerts.h"
#include "painpoint/store/store.h"

namespace painpoint::service {

class AlertFiring {
 public:
  AlertFiring(std::vector<aggregator::AlertRule> rules, const store::Store& store)
      : rules_(std::move(rules)), store_(store) {}

  // Sets batch->alerts to the new alerts of batch->summaries. Ids handed out earlier count as
  // fired even before their commit is done (the stage commits one batch while aggregating the
  // next); a failed commit stops the stage, whose restart starts with an empty memory.
  store::Status add_to(store::CommitBatch* batch);

 private:
  std::vector<aggregator::AlertRule> rules_;
  const store::Store& store_;
  // Ids known to have fired (in this process or, as the store said, before); alerts are rare,
  // and remembering them saves a store read per matching summary and batch.
  std::unordered_set<std::string> fired_;
};

}  // namespace painpoint::service

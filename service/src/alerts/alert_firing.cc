#include "alerts/alert_firing.h"

namespace painpoint::service {

store::Status AlertFiring::add_to(store::CommitBatch* batch) {
  batch->alerts.clear();
  if (rules_.empty()) return store::Status::ok();
  for (const v1::PainPointSummary& summary : batch->summaries) {
    for (v1::AlertEvent& alert : aggregator::evaluate_alerts(rules_, summary)) {
      if (fired_.contains(alert.alert_id())) continue;
      bool stored = false;
      if (store::Status s = store_.alert_fired(alert.alert_id(), &stored); !s.is_ok()) return s;
      fired_.insert(alert.alert_id());
      if (!stored) batch->alerts.push_back(std::move(alert));
    }
  }
  return store::Status::ok();
}

}  // namespace painpoint::service

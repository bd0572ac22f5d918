#include "alerts/alert_firing.h"

#include <spdlog/spdlog.h>

namespace painpoint::service {

AlertFiring::AlertFiring(std::vector<aggregator::AlertRule> rules, const store::Store& store)
    : rules_(std::move(rules)), store_(store) {
  for (const aggregator::AlertRule& rule : rules_) {
    if (std::holds_alternative<aggregator::SpikeRule>(rule.condition)) track_volumes_ = true;
  }
}

store::Status AlertFiring::load_product(std::string_view product_id) {
  if (!track_volumes_ || loaded_products_.contains(std::string(product_id))) {
    return store::Status::Ok();
  }
  // The store holds every summary committed before this batch (a product this stage already
  // saw in a batch still in flight was loaded then, and is kept up to date in memory).
  store::Status s = store_.scan_summaries(product_id, [this](const v1::PainPointSummary& stored) {
    volumes_.update(stored);
    return true;
  });
  if (!s.ok()) return s;
  loaded_products_.emplace(product_id);
  return store::Status::Ok();
}

store::Status AlertFiring::load_episodes() {
  if (episodes_loaded_) return store::Status::Ok();
  const std::string prefix(aggregator::AlertEpisodes::kEpisodeStatePrefix);
  std::size_t undecodable = 0;
  store::Status s = store_.scan_state(prefix, [&](std::string_view key, std::string_view value) {
    if (!episodes_.restore(key, value)) ++undecodable;
    return true;
  });
  if (!s.ok()) return s;
  if (undecodable > 0) {
    // Such an entry counts as closed: at worst its rule fires once more.
    spdlog::warn("alerts: {} undecodable alert episode entries ignored", undecodable);
  }
  episodes_loaded_ = true;
  return store::Status::Ok();
}

store::Status AlertFiring::add_to(store::CommitBatch* batch) {
  batch->alerts.clear();
  if (rules_.empty()) return store::Status::Ok();
  if (store::Status s = load_episodes(); !s.ok()) return s;
  std::vector<aggregator::StateWrite> writes;
  if (track_volumes_) {
    // The whole batch first: a spike is judged against its product as this commit leaves it.
    for (const v1::PainPointSummary& summary : batch->summaries) {
      if (store::Status s = load_product(summary.product_id()); !s.ok()) return s;
      volumes_.update(summary);
    }
  }
  const aggregator::ProductVolumes* volumes = track_volumes_ ? &volumes_ : nullptr;
  for (const v1::PainPointSummary& summary : batch->summaries) {
    for (v1::AlertEvent& alert : episodes_.evaluate(rules_, summary, volumes, &writes)) {
      if (fired_.contains(alert.alert_id())) continue;
      bool stored = false;
      if (store::Status s = store_.alert_fired(alert.alert_id(), &stored); !s.ok()) return s;
      fired_.insert(alert.alert_id());
      if (!stored) batch->alerts.push_back(std::move(alert));
    }
  }
  for (aggregator::StateWrite& write : writes) {
    batch->aggregator_state.push_back(
        {std::move(write.key), std::move(write.value), std::move(write.product_id)});
  }
  return store::Status::Ok();
}

}  // namespace painpoint::service

// The curation queue: commands submitted by the HTTP threads, run on the stage's thread.
#include <spdlog/spdlog.h>

#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "aggregator_stage_impl.h"

namespace painpoint::service {

namespace {

// Bounds what a flood of curation requests can hold in memory; humans curate far slower.
constexpr std::size_t kMaxQueuedCommands = 64;
// A split reads each event from the store on the stage's thread, delaying the next batch.
constexpr std::size_t kMaxSplitEvents = 1'000;

CurationResult curation_error(CurationResult::Code code, std::string message) {
  CurationResult r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

CurationResult::Code code_of(aggregator::CurationOutcome::Code code) {
  switch (code) {
    case aggregator::CurationOutcome::Code::kOk:
      return CurationResult::Code::kOk;
    case aggregator::CurationOutcome::Code::kNotFound:
      return CurationResult::Code::kNotFound;
    case aggregator::CurationOutcome::Code::kConflict:
      return CurationResult::Code::kConflict;
    case aggregator::CurationOutcome::Code::kInvalid:
      return CurationResult::Code::kInvalid;
  }
  return CurationResult::Code::kInvalid;
}

}  // namespace

// Active (not merged) summary of `id`, or the error to answer with.
std::variant<v1::PainPointSummary, CurationResult> AggregatorStage::Impl::active_summary(
    const std::string& id) {
  std::optional<v1::PainPointSummary> summary;
  if (store::Status s = store.get_summary(id, &summary); !s.ok()) {
    return store_read_failed("summary lookup: " + s.to_string());
  }
  if (!summary) return curation_error(CurationResult::Code::kNotFound, "no pain point " + id);
  if (summary->status() == v1::STATUS_MERGED) {
    return curation_error(CurationResult::Code::kConflict,
                          "pain point " + id + " was merged into " + summary->merged_into());
  }
  if (summary->status() != v1::STATUS_ACTIVE) {
    return curation_error(CurationResult::Code::kConflict, "pain point " + id + " is retired");
  }
  return *std::move(summary);
}

// Applies one command to the aggregator. A store read error stops the stage (error: kUnavailable).
aggregator::CurationOutcome AggregatorStage::Impl::apply(const CurationCommand& command,
                                                         const std::string& product,
                                                         CurationResult& error) {
  using Kind = CurationCommand::Kind;
  switch (command.kind) {
    case Kind::kRename:
      return aggregator->rename(product, command.id, command.label);
    case Kind::kMerge: {
      if (command.into == command.id) {
        error = curation_error(CurationResult::Code::kConflict,
                               "cannot merge a pain point into itself");
        return {};
      }
      auto into = active_summary(command.into);
      if (auto* e = std::get_if<CurationResult>(&into)) {
        error = std::move(*e);
        return {};
      }
      if (std::get<v1::PainPointSummary>(into).product_id() != product) {
        error = curation_error(CurationResult::Code::kConflict,
                               "cannot merge pain points of different products");
        return {};
      }
      return aggregator->merge(product, command.id, command.into);
    }
    case Kind::kSplit: {
      if (command.event_ids.empty() || command.event_ids.size() > kMaxSplitEvents) {
        error =
            curation_error(CurationResult::Code::kInvalid,
                           "eventIds must list 1.." + std::to_string(kMaxSplitEvents) + " events");
        return {};
      }
      std::vector<v1::FeedbackEvent> events;
      std::vector<float> embeddings;  // semantic mode: each event's stored vector, in order
      std::set<std::string_view> seen;
      for (const std::string& event_id : command.event_ids) {
        std::optional<std::string> member_of;
        if (store::Status s = store.get_membership(event_id, &member_of); !s.ok()) {
          error = store_read_failed("membership lookup: " + s.to_string());
          return {};
        }
        // Memberships name the pain point at assignment; merges since are followed.
        if (!member_of || aggregator->resolve(product, *member_of) != command.id) {
          error = curation_error(CurationResult::Code::kInvalid,
                                 "event " + event_id + " is not a member of " + command.id);
          return {};
        }
        if (!seen.insert(event_id).second) {
          error = curation_error(CurationResult::Code::kInvalid,
                                 "event " + event_id + " is listed twice");
          return {};
        }
        std::optional<v1::StoredEvent> stored;
        if (store::Status s = store.get_event(event_id, &stored); !s.ok()) {
          error = store_read_failed("event lookup: " + s.to_string());
          return {};
        }
        if (!stored) {
          error = curation_error(CurationResult::Code::kInvalid,
                                 "event " + event_id + " is not stored");
          return {};
        }
        events.push_back(stored->event());
        const std::span<const float> v = vectors.vector_of(*stored);
        embeddings.insert(embeddings.end(), v.begin(), v.end());
      }
      return aggregator->split(product, command.id, events, embeddings);
    }
  }
  return {};
}

// A read the curation needs failed: the stage stops, as after a batch's (the aggregator may have
// loaded state halfway), and the command is answered kUnavailable.
CurationResult AggregatorStage::Impl::store_read_failed(std::string detail) {
  (void)fail(detail);
  return curation_error(CurationResult::Code::kUnavailable, std::move(detail));
}

// Runs on the stage's thread. Returns false when the stage must stop (store failure).
bool AggregatorStage::Impl::execute(QueuedCommand& queued) {
  if (Clock::now() > queued.deadline) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "timed out waiting for the aggregator"));
    return true;
  }
  const CurationCommand& command = queued.command;
  CurationResult result;
  auto target = active_summary(command.id);
  if (auto* e = std::get_if<CurationResult>(&target)) {
    queued.promise.set_value(std::move(*e));
    return !failed.load();
  }
  const std::string product = std::get<v1::PainPointSummary>(target).product_id();
  if (changelogs) {
    // A product whose partition is restoring, or is another instance's, is not curated here.
    const std::optional<std::int32_t> p = product_partitions.partition_of(product);
    if (!p || !active.contains(*p)) {
      queued.promise.set_value(curation_error(
          CurationResult::Code::kUnavailable,
          "the partition of product " + product + " is restoring or not held by this instance"));
      return true;
    }
  }
  CurationResult error;
  const aggregator::CurationOutcome outcome = apply(command, product, error);
  // A state read the store refused left the aggregator with state loaded halfway: as for a batch.
  if (const auto& read_error = state_reader.read_error(); read_error && !failed.load()) {
    queued.promise.set_value(curation_error(CurationResult::Code::kUnavailable, *read_error));
    return fail(*read_error);
  }
  if (error.code != CurationResult::Code::kOk) {
    queued.promise.set_value(std::move(error));
    return !failed.load();
  }
  if (!outcome.ok()) {
    queued.promise.set_value(curation_error(code_of(outcome.code), outcome.message));
    return true;
  }
  // Curation is not in the arrival log, so its state is written out at once.
  const std::optional<store::CommitBatch> commit = commit_checkpoint("curation");
  if (!commit) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "store commit failed"));
    return false;
  }
  for (const auto& summary : commit->summaries) {
    if (summary.id() == outcome.id) result.summary = summary;
  }
  active_pain_points.set(static_cast<double>(aggregator->active_pain_points()));
  spdlog::info("curation: {} {} applied",
               command.kind == CurationCommand::Kind::kMerge    ? "merge"
               : command.kind == CurationCommand::Kind::kRename ? "rename"
                                                                : "split",
               command.id);
  queued.promise.set_value(std::move(result));
  return true;
}

// Runs the queued curation commands. Returns false when the stage must stop.
bool AggregatorStage::Impl::run_commands() {
  std::deque<QueuedCommand> todo;
  {
    std::lock_guard lock(commands_mutex);
    todo.swap(commands);
  }
  // Commands read the store: let it catch up with the aggregator first.
  if (!todo.empty()) (void)finish_commit();
  for (auto& queued : todo) {
    if (failed.load()) {
      queued.promise.set_value(
          curation_error(CurationResult::Code::kUnavailable, "aggregator stage failed"));
      continue;
    }
    execute(queued);
  }
  return !failed.load();
}

// Stops accepting commands and answers the queued ones: nobody will run them.
void AggregatorStage::Impl::close_commands() {
  std::deque<QueuedCommand> left;
  {
    std::lock_guard lock(commands_mutex);
    accepting = false;
    left.swap(commands);
  }
  for (auto& queued : left) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "aggregator stage stopped"));
  }
}

std::future<CurationResult> AggregatorStage::submit(
    CurationCommand command, std::chrono::steady_clock::time_point deadline) {
  QueuedCommand queued{std::move(command), deadline, {}};
  std::future<CurationResult> future = queued.promise.get_future();
  std::lock_guard lock(impl_->commands_mutex);
  if (!impl_->accepting) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "aggregator stage not running"));
  } else if (impl_->commands.size() >= kMaxQueuedCommands) {
    queued.promise.set_value(
        curation_error(CurationResult::Code::kUnavailable, "too many curation requests queued"));
  } else {
    impl_->commands.push_back(std::move(queued));
  }
  return future;
}

}  // namespace painpoint::service

#include "painpoint/aggregator/aggregator_shards.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "painpoint/aggregator/text.h"

namespace painpoint::aggregator {

// Runs task(i) for every shard i at once: shard 0 on the calling thread, the others on threads
// kept for the shards' lifetime, and returns when all are done. An exception of a task is
// rethrown on the calling thread (the first one, by shard).
class AggregatorShards::Workers {
 public:
  explicit Workers(std::size_t shards) : errors_(shards) {
    threads_.reserve(shards - 1);
    for (std::size_t i = 1; i < shards; ++i) threads_.emplace_back([this, i] { serve(i); });
  }

  ~Workers() {
    {
      const std::lock_guard lock(mu_);
      stopping_ = true;
    }
    start_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void run(const std::function<void(std::size_t)>& task) {
    {
      const std::lock_guard lock(mu_);
      task_ = &task;
      pending_ = threads_.size();
      ++round_;
    }
    start_.notify_all();
    run_one(0, task);
    std::unique_lock lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    for (std::exception_ptr& e : errors_) {
      if (e) std::rethrow_exception(std::exchange(e, nullptr));
    }
  }

 private:
  void serve(std::size_t shard) {
    char name[16];
    std::snprintf(name, sizeof name, "pp-aggregate-%zu", shard);
    pthread_setname_np(pthread_self(), name);
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(std::size_t)>* task = nullptr;
      {
        std::unique_lock lock(mu_);
        start_.wait(lock, [&] { return stopping_ || round_ != seen; });
        if (stopping_) return;
        seen = round_;
        task = task_;
      }
      run_one(shard, *task);
      {
        const std::lock_guard lock(mu_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  void run_one(std::size_t shard, const std::function<void(std::size_t)>& task) {
    try {
      task(shard);
    } catch (...) {
      errors_[shard] = std::current_exception();  // read by run() only after pending_ drops
    }
  }

  std::mutex mu_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* task_ = nullptr;  // guarded by mu_
  std::uint64_t round_ = 0;                                 // guarded by mu_
  std::size_t pending_ = 0;                                 // guarded by mu_
  bool stopping_ = false;                                   // guarded by mu_
  std::vector<std::exception_ptr> errors_;  // one slot per shard, each written by its thread
  std::vector<std::thread> threads_;        // last: started once the members above exist
};

// Analyses the texts of one chunk of events at a time on a thread of its own, into one of two
// slots, so that the caller can add one chunk while the next is analysed.
class AggregatorShards::Lookahead {
 public:
  explicit Lookahead(const ClusterConfig& config)
      : analyzer_(config), thread_([this] { serve(); }) {}

  ~Lookahead() {
    {
      const std::lock_guard lock(mu_);
      stopping_ = true;
    }
    start_.notify_one();
    thread_.join();
  }

  // Starts analysing `events` into `slot` (0 or 1). The previous request must have been waited for.
  void start(std::span<const Event> events, std::size_t slot) {
    {
      const std::lock_guard lock(mu_);
      request_ = events;
      slot_ = slot;
      requested_ = true;
      busy_ = true;
    }
    start_.notify_one();
  }

  // The analyses of the last request, once done; rethrows its exception.
  std::span<const AnalyzedText> wait() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [this] { return !busy_; });
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return std::span<const AnalyzedText>(slots_[slot_]).first(request_.size());
  }

  // Waits for the last request without its result (the caller is unwinding).
  void settle() noexcept {
    std::unique_lock lock(mu_);
    done_.wait(lock, [this] { return !busy_; });
    error_ = nullptr;
  }

 private:
  void serve() {
    pthread_setname_np(pthread_self(), "pp-analyze");
    for (;;) {
      std::span<const Event> events;
      std::vector<AnalyzedText>* out = nullptr;
      {
        std::unique_lock lock(mu_);
        start_.wait(lock, [this] { return stopping_ || requested_; });
        if (stopping_) return;
        requested_ = false;
        events = request_;
        out = &slots_[slot_];
      }
      std::exception_ptr error;
      try {
        if (out->size() < events.size()) out->resize(events.size());
        for (std::size_t i = 0; i < events.size(); ++i) {
          analyzer_.analyze(events[i].event->text(), (*out)[i]);
        }
      } catch (...) {
        error = std::current_exception();
      }
      {
        const std::lock_guard lock(mu_);
        error_ = error;
        busy_ = false;
      }
      done_.notify_one();
    }
  }

  TextAnalyzer analyzer_;  // used by the thread only
  std::array<std::vector<AnalyzedText>, 2> slots_;
  std::mutex mu_;
  std::condition_variable start_;
  std::condition_variable done_;
  std::span<const Event> request_;  // guarded by mu_
  std::size_t slot_ = 0;            // guarded by mu_
  bool requested_ = false;          // guarded by mu_: a request not yet taken by the thread
  bool busy_ = false;               // guarded by mu_: a request not yet done
  bool stopping_ = false;           // guarded by mu_
  std::exception_ptr error_;        // guarded by mu_
  std::thread thread_;              // last: started once the members above exist
};

AggregatorShards::AggregatorShards(const ClusterConfig& config, const StateReader* state,
                                   unsigned shards, bool analyze_ahead) {
  if (shards == 0) throw std::invalid_argument("AggregatorShards: at least one shard");
  shards_.reserve(shards);
  for (unsigned i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Aggregator>(config, state));
  }
  batch_.resize(shards);
  if (shards > 1) workers_ = std::make_unique<Workers>(shards);
  if (analyze_ahead) lookahead_ = std::make_unique<Lookahead>(config);
}

AggregatorShards::~AggregatorShards() = default;

std::size_t AggregatorShards::shard_of(std::string_view product_id) const {
  if (shards_.size() == 1) return 0;
  return static_cast<std::size_t>(fnv1a64(product_id) % shards_.size());
}

std::string AggregatorShards::add(const v1::FeedbackEvent& event,
                                  std::span<const float> embedding) {
  const std::size_t shard = shard_of(event.product_id());
  if (workers_) added_on_.push_back(static_cast<std::uint32_t>(shard));
  return shards_[shard]->add(event, embedding);
}

void AggregatorShards::add_all(std::span<const Event> events) {
  if (!lookahead_ || events.size() <= kAnalysisChunk) {
    add_chunk(events, {});
    return;
  }
  // Chunk k + 1 is analysed while chunk k is added; the first has no analysis to wait for.
  struct Settle {
    Lookahead& lookahead;
    ~Settle() { lookahead.settle(); }  // the thread may read `events` until it is done
  } settle{*lookahead_};
  auto chunk_at = [&](std::size_t from) {
    return events.subspan(from, std::min(kAnalysisChunk, events.size() - from));
  };
  std::size_t slot = 0;
  lookahead_->start(chunk_at(kAnalysisChunk), slot);
  add_chunk(chunk_at(0), {});
  for (std::size_t from = kAnalysisChunk; from < events.size(); from += kAnalysisChunk) {
    const std::span<const AnalyzedText> analyses = lookahead_->wait();
    const std::size_t next = from + kAnalysisChunk;
    if (next < events.size()) lookahead_->start(chunk_at(next), slot ^ 1);
    add_chunk(chunk_at(from), analyses);
    slot ^= 1;
  }
}

void AggregatorShards::add_chunk(std::span<const Event> events,
                                 std::span<const AnalyzedText> analyses) {
  auto analysis = [&](std::size_t i) { return analyses.empty() ? nullptr : &analyses[i]; };
  if (!workers_) {
    for (std::size_t i = 0; i < events.size(); ++i) {
      shards_[0]->add(*events[i].event, events[i].embedding, analysis(i));
    }
    return;
  }
  for (auto& indices : batch_) indices.clear();
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::size_t shard = shard_of(events[i].event->product_id());
    batch_[shard].push_back(i);
    added_on_.push_back(static_cast<std::uint32_t>(shard));
  }
  workers_->run([&](std::size_t shard) {
    Aggregator& aggregator = *shards_[shard];
    for (const std::size_t i : batch_[shard]) {
      aggregator.add(*events[i].event, events[i].embedding, analysis(i));
    }
  });
}

Changes AggregatorShards::take_changes(Aggregator::StateOutput state) {
  const bool include = state == Aggregator::StateOutput::kInclude;
  return take_from_all([include](std::string_view) { return include; });
}

Changes AggregatorShards::take_changes(const Aggregator::ProductFilter& save_state) {
  return take_from_all(save_state);
}

namespace {

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
  if (to.empty()) {
    to = std::move(from);
    return;
  }
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

Changes AggregatorShards::take_from_all(const Aggregator::ProductFilter& save_state) {
  if (!workers_) return shards_[0]->take_changes(save_state);
  std::vector<Changes> taken(shards_.size());
  workers_->run(
      [&](std::size_t shard) { taken[shard] = shards_[shard]->take_changes(save_state); });
  Changes out;
  for (Changes& c : taken) {
    append(out.state, c.state);
    append(out.summaries, c.summaries);
  }
  out.memberships = interleave_memberships(taken);
  return out;
}

// Every add hands out one membership, so taking one from the event's shard per event added gives
// them in the order of the events (which the store's commit looks events up by); what else a
// shard handed out (moves, splits) keeps its place among that shard's own.
std::vector<Membership> AggregatorShards::interleave_memberships(std::vector<Changes>& taken) {
  std::size_t total = 0;
  for (const Changes& c : taken) total += c.memberships.size();
  std::vector<Membership> out;
  out.reserve(total);
  std::vector<std::size_t> next(taken.size(), 0);
  for (const std::uint32_t shard : added_on_) {
    std::vector<Membership>& from = taken[shard].memberships;
    if (next[shard] < from.size()) out.push_back(std::move(from[next[shard]++]));
  }
  added_on_.clear();
  for (std::size_t shard = 0; shard < taken.size(); ++shard) {
    std::vector<Membership>& from = taken[shard].memberships;
    for (std::size_t i = next[shard]; i < from.size(); ++i) out.push_back(std::move(from[i]));
  }
  return out;
}

CurationOutcome AggregatorShards::merge(std::string_view product_id, std::string_view from,
                                        std::string_view into) {
  return shards_[shard_of(product_id)]->merge(product_id, from, into);
}

CurationOutcome AggregatorShards::rename(std::string_view product_id, std::string_view id,
                                         std::string_view label) {
  return shards_[shard_of(product_id)]->rename(product_id, id, label);
}

CurationOutcome AggregatorShards::split(std::string_view product_id, std::string_view id,
                                        std::span<const v1::FeedbackEvent> events,
                                        std::span<const float> embeddings) {
  return shards_[shard_of(product_id)]->split(product_id, id, events, embeddings);
}

std::string AggregatorShards::resolve(std::string_view product_id, std::string_view id) const {
  return shards_[shard_of(product_id)]->resolve(id);
}

void AggregatorShards::evict_idle() {
  for (auto& shard : shards_) shard->evict_idle();
}

std::size_t AggregatorShards::active_pain_points() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) n += shard->active_pain_points();
  return n;
}

const std::optional<std::string>& AggregatorShards::state_error() const {
  for (const auto& shard : shards_) {
    if (shard->state_error()) return shard->state_error();
  }
  return shards_.front()->state_error();
}

Aggregator::MemoryStats AggregatorShards::memory_stats() const {
  Aggregator::MemoryStats total;
  for (const auto& shard : shards_) {
    const Aggregator::MemoryStats m = shard->memory_stats();
    total.products += m.products;
    total.clusters += m.clusters;
    total.bytes += m.bytes;
  }
  return total;
}

}  // namespace painpoint::aggregator

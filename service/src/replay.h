#pragma once

// `painpoint replay`: operate on the stored feedback history.
//
//  - rebuild: recompute the pain points of some products from their stored events with a
//    (possibly new) configuration; ids survive by member overlap (id_inheritance.h), vanished
//    ids get final MERGED/RETIRED summaries, human curation is re-applied, and the changed
//    summaries leave through the outbox. Offline: refuses a data directory a live serve holds.
//  - emit: re-publish stored FeedbackEvents in occurred_at order to a topic, rate-limited.
//  - rewind: move the aggregator's stored input offsets back to a point in time, so that a
//    restarted serve re-reads from there (stored events are no-ops, new ones are added).
//
// Each run function blocks until done and returns the process exit code.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "painpoint/base/exit_code.h"
#include "painpoint/ingest/client_settings.h"

namespace painpoint::service {

using TimePoint = std::chrono::system_clock::time_point;

// Parses an RFC 3339 timestamp ("2026-10-01T12:00:00Z", fractional seconds and offsets allowed).
[[nodiscard]] std::optional<TimePoint> parse_timestamp(const std::string& text);

// The order a rebuild feeds each product's events to the clustering, which is online and so
// order-dependent.
enum class ReplayOrder {
  // The order serve's aggregator added them in (the store's arrival numbers; events stored
  // before those existed first, by occurred_at): with an unchanged configuration the rebuild
  // reproduces serve's pain points exactly, however out of time order the input was.
  kArrival,
  // (occurred_at, event id): what a clustering of the history in time order makes of it,
  // independent of how the events happened to arrive.
  kOccurredAt,
};

struct RebuildOptions {
  std::filesystem::path data_dir = "painpoint-data";
  std::optional<std::filesystem::path> config_file;  // the configuration to rebuild with
  std::vector<std::string> config_overrides;         // --set "key=value" over the file's
  std::filesystem::path word_vectors;                // empty: the default file if present
  std::filesystem::path encoder;  // semantic mode; empty: the default file
  // Events with since <= occurred_at < until are replayed. The rebuilt products' pain points are
  // built from those events only; their events outside the range stay stored but leave every
  // pain point (their memberships are removed).
  std::optional<TimePoint> since;
  std::optional<TimePoint> until;
  std::vector<std::string> products;  // empty: every product in the store
  ReplayOrder order = ReplayOrder::kArrival;
  bool dry_run = false;
  double inherit_threshold = 0.5;  // minimum member Jaccard to inherit an id
  bool verbose = true;             // one line per changed id in the report
};

[[nodiscard]] base::ExitCode run_replay_rebuild(const RebuildOptions& options);

struct EmitOptions {
  std::filesystem::path data_dir = "painpoint-data";
  std::string brokers;
  ingest::ClientSettings kafka;  // the config file's `kafka.*` properties
  std::string topic;
  std::optional<TimePoint> since;
  std::optional<TimePoint> until;
  std::vector<std::string> products;  // empty: all
  double rate_per_second = 0;         // 0: as fast as the broker takes them
};

[[nodiscard]] base::ExitCode run_replay_emit(const EmitOptions& options);

// A token bucket: take() blocks until one token is available. Tokens accrue at `rate` per
// second up to `burst`. The clock and sleep are injectable for tests. Not thread-safe.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double rate_per_second, double burst,
              std::function<Clock::time_point()> now = &Clock::now,
              std::function<void(Clock::duration)> sleep = nullptr);
  void take();

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::function<Clock::time_point()> now_;
  std::function<void(Clock::duration)> sleep_;
  Clock::time_point last_;
};

// --- rewind -----------------------------------------------------------------------------------

enum class OffsetLookup {
  kBroker,  // trust the broker's offsets_for_times answer
  kScan,    // read the partition's message timestamps (exact; costs reading the partition)
  kAuto,    // the broker's answer; a "none" (-1) on a non-empty partition is checked by a scan,
            // because some brokers (librdkafka's mock) answer -1 for every timestamp
};

struct RewindOptions {
  std::filesystem::path data_dir = "painpoint-data";
  std::string brokers;
  ingest::ClientSettings kafka;  // the config file's `kafka.*` properties
  std::string topic = "painpoint.feedback-by-product";
  TimePoint to;
  OffsetLookup lookup = OffsetLookup::kAuto;
  bool dry_run = false;
};

// What the broker (or a scan) says for one partition.
struct PartitionTimeOffset {
  std::int32_t partition = 0;
  std::int64_t low = 0;   // low watermark
  std::int64_t high = 0;  // high watermark (offset of the next message)
  // First offset whose timestamp is >= the target time; nullopt: no such message (the target is
  // after the partition's last message).
  std::optional<std::int64_t> first_at_or_after;
};

struct RewindStep {
  std::int32_t partition = 0;
  std::optional<std::int64_t> stored;  // the stored next offset (nullopt: none stored)
  std::int64_t target = 0;             // where serve will resume
  bool changed = false;
};

// Pure: the new stored offsets. A partition moves back to the first offset at or after the time
// (the high watermark when there is none), never forward: a stored offset already before it
// stays, so a rewind cannot skip unprocessed events. A partition without a stored offset is
// left alone (serve reads it from the earliest offset anyway).
[[nodiscard]] std::vector<RewindStep> plan_rewind(
    const std::vector<std::pair<std::int32_t, std::int64_t>>& stored,
    const std::vector<PartitionTimeOffset>& lookup);

[[nodiscard]] base::ExitCode run_replay_rewind(const RewindOptions& options);

}  // namespace painpoint::service

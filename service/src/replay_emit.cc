// `painpoint replay emit`: stored FeedbackEvents, in (occurred_at, event id) order, to a topic.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "painpoint/ingest/producer.h"
#include "painpoint/store/store.h"
#include "progress.h"
#include "replay.h"

namespace painpoint::service {

TokenBucket::TokenBucket(double rate_per_second, double burst,
                         std::function<Clock::time_point()> now,
                         std::function<void(Clock::duration)> sleep)
    : rate_(rate_per_second),
      burst_(std::max(burst, 1.0)),
      tokens_(std::max(burst, 1.0)),
      now_(std::move(now)),
      sleep_(sleep ? std::move(sleep) : std::function<void(Clock::duration)>([](Clock::duration d) {
        std::this_thread::sleep_for(d);
      })),
      last_(now_()) {}

void TokenBucket::take() {
  if (rate_ <= 0) return;  // unlimited
  for (;;) {
    const auto t = now_();
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(t - last_).count() * rate_);
    last_ = t;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return;
    }
    sleep_(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>((1.0 - tokens_) / rate_)));
  }
}

base::ExitCode run_replay_emit(const EmitOptions& options) {
  std::unique_ptr<store::Store> store;
  store::StoreOptions store_options;
  // Reading only: a live serve may hold the directory; emit sees what was committed when it
  // opened it.
  store_options.read_only = true;
  if (store::Status s = store::Store::open(options.data_dir, store_options, &store); !s.ok()) {
    std::cerr << "painpoint replay emit: cannot open " << options.data_dir.string() << ": "
              << s.to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }
  std::uint64_t total = 0;
  for (const auto& p : store->product_stats()) {
    if (options.products.empty() || std::find(options.products.begin(), options.products.end(),
                                              p.product_id()) != options.products.end()) {
      total += static_cast<std::uint64_t>(p.event_count());
    }
  }
  if (options.since || options.until) total = 0;  // unknown up front

  std::atomic<std::uint64_t> delivered{0}, failed{0};
  std::string first_error;
  ingest::ProducerConfig config;
  config.brokers = options.brokers;
  config.client_id = "painpoint-replay-emit";
  config.extra = options.kafka.for_role(ingest::ClientRole::kProducer);
  auto producer = ingest::Producer::create(config, [&](const ingest::DeliveryReport& r) {
    if (r.status.ok()) {
      delivered.fetch_add(1);
    } else {
      if (failed.fetch_add(1) == 0) first_error = r.status.to_string();
    }
  });
  if (!producer.ok()) {
    std::cerr << "painpoint replay emit: producer: " << producer.status().to_string() << "\n";
    return base::ExitCode::kCannotProceed;
  }

  // A tenth of a second of burst: smooth at the requested rate, without a sleep per event.
  TokenBucket bucket(options.rate_per_second, options.rate_per_second / 10);
  Progress progress("emit", total);
  std::uint64_t sent = 0;
  ingest::Status produce_error;
  std::string payload;
  const auto t0 = std::chrono::steady_clock::now();
  std::function<bool(std::string_view)> wanted;
  if (!options.products.empty()) {
    wanted = [&](std::string_view product) {
      return std::find(options.products.begin(), options.products.end(), product) !=
             options.products.end();
    };
  }
  store::Status s = store->scan_events_by_time(
      options.since.value_or(TimePoint::min()), options.until.value_or(TimePoint::max()), wanted,
      [&](const v1::StoredEvent& stored) {
        const v1::FeedbackEvent& e = stored.event();
        if (!options.products.empty() && std::find(options.products.begin(), options.products.end(),
                                                   e.product_id()) == options.products.end()) {
          return true;
        }
        bucket.take();
        payload.clear();
        e.SerializeToString(&payload);
        if (auto st = producer->produce(options.topic, e.product_id(), payload); !st.ok()) {
          produce_error = st;
          return false;
        }
        ++sent;
        progress.advance();
        return true;
      });
  const ingest::Status flushed = producer->flush(std::chrono::seconds(120));
  progress.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("emit: %llu events sent, %llu delivered, %llu failed to %s, %.3f s (%.0f events/s)\n",
              static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(delivered.load()),
              static_cast<unsigned long long>(failed.load()), options.topic.c_str(), secs,
              secs > 0 ? static_cast<double>(delivered.load()) / secs : 0.0);
  std::fflush(stdout);
  if (!s.ok()) {
    std::cerr << "painpoint replay emit: reading events: " << s.to_string() << "\n";
    return base::ExitCode::kFailed;
  }
  if (!produce_error.ok()) {
    std::cerr << "painpoint replay emit: produce: " << produce_error.to_string() << "\n";
    return base::ExitCode::kFailed;
  }
  if (!flushed.ok()) {
    std::cerr << "painpoint replay emit: " << flushed.to_string() << "\n";
    return base::ExitCode::kFailed;
  }
  if (failed.load() > 0) {
    std::cerr << "painpoint replay emit: " << failed.load()
              << " events were not acknowledged, first: " << first_error << "\n";
    return base::ExitCode::kFailed;
  }
  return base::ExitCode::kOk;
}

}  // namespace painpoint::service

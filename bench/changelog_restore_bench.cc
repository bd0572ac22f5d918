// Restore throughput of the aggregator changelog (changelog/): writes N events' worth of records
// to one changelog partition through a ChangelogWriter, then times a ChangelogRestorer reading them
// back from the beginning. Prints figures; asserts nothing but that every record came back.
//
//   changelog_restore_bench [--brokers HOST:PORT] [--events N] [--batch-events B]
//                           [--records-per-event R] [--text-bytes T]
//
// Without --brokers it starts the embedded broker (librdkafka's mock cluster; it keeps about
// 5 MiB per partition, so keep N small there). With --brokers (Apache Kafka, scripts/kafka.sh) it
// creates a fresh compacted topic for the run.
//
// One event costs R changelog records: Store::commit writes five keys per event today
// (events, by_time, the arrival log, members, members_by_pain_point), plus per batch a few keys
// (product stats, event count, offsets, summaries, outbox) that this benchmark leaves out.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "painpoint/changelog/changelog.h"
#include "painpoint/ingest/admin.h"
#include "painpoint/ingest/embedded_broker.h"

namespace {

using namespace painpoint;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string brokers;
  long events = 10'000;
  long batch_events = 500;
  long records_per_event = 5;
  long text_bytes = 200;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--brokers") {
      o.brokers = value;
    } else if (flag == "--events") {
      o.events = std::atol(value);
    } else if (flag == "--batch-events") {
      o.batch_events = std::atol(value);
    } else if (flag == "--records-per-event") {
      o.records_per_event = std::atol(value);
    } else if (flag == "--text-bytes") {
      o.text_bytes = std::atol(value);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

// Records shaped like one stored event's writes: the event with its text, the time index, the
// arrival log, the membership and the pain point's member index.
void event_records(long n, const Options& o, std::vector<changelog::Record>* out) {
  const std::string id = "evt-" + std::to_string(n);
  const std::string pp = "pp-" + std::to_string(n % 997);
  const std::string families[] = {"events", "by_time", "unsaved", "members", "members_by_pp"};
  for (long r = 0; r < o.records_per_event; ++r) {
    changelog::Record record;
    record.family = families[r % 5];
    record.key = r == 0 ? id : r == 1 ? "00000001" + id : r == 2 ? std::to_string(n) : r == 3 ? id
                                                                                           : pp + id;
    if (r == 0) {
      record.value = std::string(static_cast<std::size_t>(o.text_bytes), 'a' + static_cast<char>(n % 26));
    } else {
      record.value = r == 4 ? std::string() : pp;
    }
    out->push_back(std::move(record));
  }
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int run(const Options& o, changelog::ChangelogConfig config) {
  std::int64_t restored_records = 0;
  std::int64_t restored_bytes = 0;
  auto count = [&](std::span<const changelog::Record> records) {
    restored_records += static_cast<std::int64_t>(records.size());
    for (const auto& r : records) restored_bytes += static_cast<std::int64_t>(r.key.size() + (r.value ? r.value->size() : 0));
    return changelog::Status::Ok();
  };
  auto first = changelog::ChangelogRestorer::create(config, 0, {});
  if (!first.ok()) return std::fprintf(stderr, "%s\n", first.status().to_string().c_str()), 1;
  if (auto r = first->run(count); !r.ok()) return std::fprintf(stderr, "%s\n", r.status().to_string().c_str()), 1;
  auto writer = std::move(first).value().into_writer();
  if (!writer.ok()) return std::fprintf(stderr, "%s\n", writer.status().to_string().c_str()), 1;

  const auto write_start = Clock::now();
  std::vector<changelog::Record> batch;
  std::int64_t written = 0;
  for (long n = 0; n < o.events;) {
    batch.clear();
    for (long i = 0; i < o.batch_events && n < o.events; ++i, ++n) event_records(n, o, &batch);
    changelog::PartitionState state{n, "bench", {{"arrival", n}}};
    if (auto s = writer->append_batch(batch, state); !s.ok()) {
      return std::fprintf(stderr, "append: %s\n", s.to_string().c_str()), 1;
    }
    written += static_cast<std::int64_t>(batch.size());
  }
  const double write_s = seconds_since(write_start);
  std::printf("write: %ld events, %lld records in %.2f s: %.0f records/s (%.0f events/s)\n",
              o.events, static_cast<long long>(written), write_s, written / write_s,
              o.events / write_s);

  restored_records = 0;
  restored_bytes = 0;
  const auto restore_start = Clock::now();
  auto restorer = changelog::ChangelogRestorer::create(config, 0, {});
  if (!restorer.ok()) return std::fprintf(stderr, "%s\n", restorer.status().to_string().c_str()), 1;
  // Stepping as a caller with a group consumer would, timing the read of the records apart from
  // the fence and markers that end every restore.
  double read_s = 0;
  while (true) {
    auto done = restorer->step(count, 10'000);
    if (!done.ok()) return std::fprintf(stderr, "%s\n", done.status().to_string().c_str()), 1;
    if (read_s == 0 && restored_records == written) read_s = seconds_since(restore_start);
    if (*done) break;
  }
  const double restore_s = seconds_since(restore_start);
  std::printf(
      "restore: %lld records (%.1f MB of keys and values) read and applied in %.2f s: "
      "%.0f records/s, %.0f events/s at %ld records per event; with fence and markers %.2f s\n",
      static_cast<long long>(restored_records), restored_bytes / 1e6, read_s,
      restored_records / read_s, restored_records / read_s / o.records_per_event,
      o.records_per_event, restore_s);
  if (restored_records != written) {
    std::fprintf(stderr, "restored %lld records of %lld written (the embedded broker drops old "
                 "messages past about 5 MiB per partition)\n",
                 static_cast<long long>(restored_records), static_cast<long long>(written));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  changelog::ChangelogConfig config;
  std::unique_ptr<ingest::EmbeddedBroker> broker;
  if (o.brokers.empty()) {
    ingest::EmbeddedBrokerConfig broker_config;
    broker_config.partitions = 1;
    auto started = ingest::EmbeddedBroker::start(broker_config);
    if (!started.ok()) return std::fprintf(stderr, "%s\n", started.status().to_string().c_str()), 1;
    broker = std::move(started).value();
    config.brokers = broker->bootstrap();
    std::printf("broker: embedded (librdkafka %s mock cluster)\n", ingest::librdkafka_version().c_str());
  } else {
    config.brokers = o.brokers;
    config.topic = "bench.changelog-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    ingest::AdminConfig admin_config;
    admin_config.brokers = o.brokers;
    auto admin = ingest::Admin::create(admin_config);
    if (!admin.ok()) return std::fprintf(stderr, "%s\n", admin.status().to_string().c_str()), 1;
    auto created = changelog::ensure_changelog_topic(*admin, config.topic, 1, 30'000ms);
    if (!created.ok()) {
      return std::fprintf(stderr, "create topic: %s\n", created.status().to_string().c_str()), 1;
    }
    std::printf("broker: %s, topic %s\n", o.brokers.c_str(), config.topic.c_str());
  }
  return run(o, config);
}

#include "painpoint/ingest/produce.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <istream>

#include "painpoint/ingest/producer.h"

namespace painpoint::ingest {
namespace {

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

}  // namespace

ProduceReport produce_jsonl(std::istream& in, const ProduceOptions& options) {
  ProduceReport report;
  if (options.topic.empty()) {
    report.status = Status::Error(KafkaErrc::kInvalidArgument, "no topic");
    return report;
  }
  ProducerConfig config;
  config.brokers = options.brokers;
  config.client_id = "painpoint-produce";
  config.delivery_timeout = options.delivery_timeout;
  config.extra = options.producer_extra;

  {
    // Delivery reports arrive on this thread, inside produce()/flush(): no locking needed.
    auto producer = Producer::create(config, [&report](const DeliveryReport& delivery) {
      if (delivery.status.ok()) {
        ++report.sent;
      } else {
        ++report.failed;
        report.errors.push_back(
            {static_cast<std::size_t>(delivery.tag), "delivery_failed", delivery.status.message});
      }
    });
    if (!producer.ok()) {
      report.status = producer.status();
      return report;
    }

    const v1::Source topic_source = source_for_topic(options.topic);
    v1::FeedbackEvent event;
    std::string line;
    std::string payload;
    std::size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (is_blank(line)) continue;
      ++report.lines;
      auto rejection = parse_json_event(line, &event);
      if (!rejection) {
        rejection = validate_and_normalize(event, topic_source, options.validation,
                                           std::chrono::system_clock::now());
      }
      if (rejection) {
        ++report.rejected;
        report.errors.push_back(
            {line_no, std::string(reason_code(rejection->reason)), rejection->detail});
        continue;
      }
      event.SerializeToString(&payload);
      auto status = producer->produce(options.topic, event.product_id(), payload, {}, line_no);
      if (!status.ok()) {
        ++report.failed;
        report.errors.push_back({line_no, "produce_failed", status.message});
        if (status.code == KafkaErrc::kFatal) {
          report.status = status;
          break;
        }
      }
    }
    if (auto status = producer->flush(options.delivery_timeout); !status.ok()) {
      spdlog::error("produce: {}", status.to_string());
      if (report.status.ok()) report.status = status;
    }
    // Leaving the scope destroys the producer; anything still in flight is purged and reported
    // as failed through the callback, so every line is accounted for.
  }
  std::stable_sort(report.errors.begin(), report.errors.end(),
                   [](const LineError& a, const LineError& b) { return a.line < b.line; });
  return report;
}

}  // namespace painpoint::ingest

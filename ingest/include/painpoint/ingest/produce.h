#pragma once

// `painpoint produce`: proto3-JSON lines in, validated protobuf FeedbackEvents out.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "painpoint/ingest/status.h"
#include "painpoint/ingest/validate.h"

namespace painpoint::ingest {

struct ProduceOptions {
  std::string brokers;
  std::string topic;
  ValidationConfig validation;
  // Upper bound on waiting for the broker's acknowledgement of everything sent.
  std::chrono::milliseconds delivery_timeout{60'000};
  std::map<std::string, std::string> producer_extra;  // extra librdkafka properties
};

struct LineError {
  std::size_t line = 0;  // 1-based line number in the input
  std::string code;      // reason_code() of a rejection, or "delivery_failed"
  std::string detail;
};

struct ProduceReport {
  std::size_t lines = 0;          // non-blank lines read
  std::size_t sent = 0;           // acknowledged by the broker
  std::size_t rejected = 0;       // failed parsing or validation (not sent)
  std::size_t failed = 0;         // valid, but not acknowledged
  std::vector<LineError> errors;  // in line order
  Status status;  // not ok() when the producer could not be created or flush timed out
  bool ok() const { return status.ok() && rejected == 0 && failed == 0; }
};

// Reads one event per line (blank lines are skipped), validates and normalizes each exactly as
// `painpoint serve` does (with the source `options.topic` implies), and produces the valid ones
// keyed by product_id with the idempotent producer. Blocks until all are acknowledged or failed.
// A bad line never stops the rest from being sent.
ProduceReport produce_jsonl(std::istream& in, const ProduceOptions& options);

}  // namespace painpoint::ingest

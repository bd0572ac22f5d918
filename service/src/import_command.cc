#include "import_command.h"

#include <fcntl.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>

#include "config_file.h"
#include "connectors/json_value.h"
#include "import_csv.h"
#include "painpoint/ingest/producer.h"
#include "painpoint/ingest/topics.h"
#include "progress.h"
#include "replay.h"
#include "signals.h"
#include "text_trim.h"

namespace painpoint::service {

namespace {

constexpr const char* kFieldNames[] = {"id",  "text", "product", "account",
                                       "arr", "time", "url",     "channel"};
// How often the acknowledged position is made durable: a kill re-sends at most this much
// (acknowledged but not yet recorded rows; their event ids make them no-ops in the store).
constexpr auto kStateInterval = std::chrono::milliseconds(200);

bool is_field(std::string_view name) {
  for (std::string_view field : kFieldNames) {
    if (field == name) return true;
  }
  return false;
}

// Sets one mapped field from its text; an empty value leaves the field unset.
bool apply_field(v1::FeedbackEvent* event, const ImportMap& map, std::string_view name,
                 const std::string& value, std::string* error) {
  if (value.empty()) return true;
  if (name == "id") {
    event->set_event_id(map.id_prefix + value);
  } else if (name == "text") {
    event->set_text(value);
  } else if (name == "product") {
    event->set_product_id(value);
  } else if (name == "account") {
    event->set_account_id(value);
  } else if (name == "url") {
    event->set_external_url(value);
  } else if (name == "channel") {
    event->set_channel(value);
  } else if (name == "arr") {
    std::int64_t cents = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), cents);
    if (ec != std::errc() || ptr != value.data() + value.size() || cents < 0) {
      *error = "arr '" + value + "' is not a whole number of cents";
      return false;
    }
    event->set_account_arr_cents(cents);
  } else if (name == "time") {
    std::int64_t seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && ptr == value.data() + value.size()) {
      event->mutable_occurred_at()->set_seconds(seconds);
    } else if (!google::protobuf::util::TimeUtil::FromString(value, event->mutable_occurred_at())) {
      *error = "time '" + value + "' is neither RFC 3339 nor unix seconds";
      return false;
    }
  }
  return true;
}

std::string_view topic_of(v1::Source source) {
  switch (source) {
    case v1::SOURCE_SALES:
      return ingest::kTopicSales;
    case v1::SOURCE_CUSTOMER:
      return ingest::kTopicCustomer;
    default:
      return ingest::kTopicSupport;
  }
}

void finish_event(const ImportMap& map, v1::FeedbackEvent* event) {
  if (event->product_id().empty()) event->set_product_id(map.default_product);
  event->set_source(map.source);
}

// The acknowledged position: how many leading rows of `input` are done (sent and acknowledged,
// or rejected). Written to a temporary file, fsync'd, renamed over the old one and the directory
// fsync'd, so a kill at any moment leaves the old or the new position, never a torn one.
struct ImportState {
  std::filesystem::path path;
  std::string input;

  std::optional<std::uint64_t> load(std::string* error) const {
    std::ifstream in(path);
    if (!in) return 0;
    std::string magic, key, recorded;
    std::uint64_t rows = 0;
    if (!(in >> magic) || magic != "painpoint-import-state-v1" || !(in >> key >> std::ws) ||
        key != "input" || !std::getline(in, recorded) || !(in >> key >> rows) || key != "rows") {
      *error = "unreadable state file " + path.string();
      return std::nullopt;
    }
    if (recorded != input) {
      *error = "state file " + path.string() + " belongs to " + recorded + ", not " + input;
      return std::nullopt;
    }
    return rows;
  }

  bool save(std::uint64_t rows) const {
    const std::string tmp = path.string() + ".tmp";
    const std::string text =
        "painpoint-import-state-v1\ninput " + input + "\nrows " + std::to_string(rows) + "\n";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const bool written =
        ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
        ::fsync(fd) == 0;
    ::close(fd);
    if (!written || std::rename(tmp.c_str(), path.c_str()) != 0) return false;
    const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return false;
    const bool synced = ::fsync(dir_fd) == 0;
    ::close(dir_fd);
    return synced;
  }
};

// Rows done out of order (acknowledgements from different partitions interleave) until the
// contiguous prefix reaches them.
class DonePrefix {
 public:
  explicit DonePrefix(std::uint64_t done) : prefix_(done) {}
  void mark(std::uint64_t row) {  // rows are 1-based
    if (row != prefix_ + 1) {
      ahead_.insert(row);
      return;
    }
    ++prefix_;
    for (auto it = ahead_.begin(); it != ahead_.end() && *it == prefix_ + 1;
         it = ahead_.erase(it)) {
      ++prefix_;
    }
  }
  std::uint64_t prefix() const { return prefix_; }

 private:
  std::uint64_t prefix_;
  std::set<std::uint64_t> ahead_;
};

struct Counts {
  std::uint64_t rows = 0, skipped = 0, sent = 0, acknowledged = 0, rejected = 0, failed = 0;
};

}  // namespace

ImportMapLoad parse_import_map(std::istream& in) {
  ImportMap map;
  std::string error =
      read_key_value_lines(in, [&map](std::string_view key, std::string_view value) {
        if (is_field(key)) {
          map.fields[std::string(key)] = std::string(value);
        } else if (key == "default_product") {
          map.default_product = value;
        } else if (key == "id_prefix") {
          map.id_prefix = value;
        } else if (key == "source") {
          if (value == "support")
            map.source = v1::SOURCE_SUPPORT;
          else if (value == "sales")
            map.source = v1::SOURCE_SALES;
          else if (value == "customer")
            map.source = v1::SOURCE_CUSTOMER;
          else
            return std::string("source must be support, sales or customer");
        } else {
          return "unknown key '" + std::string(key) + "'";
        }
        return std::string();
      });
  if (!error.empty()) return {std::nullopt, std::move(error)};
  if (!map.fields.contains("id") || !map.fields.contains("text")) {
    return {std::nullopt, "the map needs at least `id = ...` and `text = ...`"};
  }
  return {std::move(map), {}};
}

std::optional<CsvColumns> csv_columns(const ImportMap& map, const std::vector<std::string>& header,
                                      std::string* error) {
  CsvColumns columns;
  for (const auto& [field, column] : map.fields) {
    std::size_t i = 0;
    while (i < header.size() && trim(header[i]) != column) ++i;
    if (i == header.size()) {
      *error = "the header has no column '" + column + "' (for " + field + ")";
      return std::nullopt;
    }
    columns.index[field] = i;
  }
  return columns;
}

std::optional<v1::FeedbackEvent> map_csv_row(const ImportMap& map, const CsvColumns& columns,
                                             const std::vector<std::string>& row,
                                             std::string* error) {
  v1::FeedbackEvent event;
  for (const auto& [field, index] : columns.index) {
    if (index >= row.size()) {
      *error = "the row has " + std::to_string(row.size()) + " fields, " + field +
               " is in column " + std::to_string(index + 1);
      return std::nullopt;
    }
    if (!apply_field(&event, map, field, row[index], error)) return std::nullopt;
  }
  finish_event(map, &event);
  return event;
}

std::optional<v1::FeedbackEvent> map_json_row(const ImportMap& map, std::string_view line,
                                              std::string* error) {
  json::Value root;
  if (auto parse_error = json::parse(line, &root)) {
    *error = "not JSON: " + *parse_error;
    return std::nullopt;
  }
  v1::FeedbackEvent event;
  for (const auto& [field, pointer] : map.fields) {
    const auto value = json::scalar_text(json::at_pointer(&root, pointer));
    if (value && !apply_field(&event, map, field, *value, error)) return std::nullopt;
  }
  finish_event(map, &event);
  return event;
}

namespace {

base::ExitCode usage_error(const std::string& message) {
  std::cerr << "painpoint import: " << message << "\n";
  return base::ExitCode::kBadUsage;
}

// One run of `painpoint import` over files that opened: rows are handled in order on this
// thread, which also serves the producer's delivery reports (inside produce/poll/flush).
class ImportRun {
 public:
  ImportRun(const ImportOptions& options, const ImportMap& map, ImportState state,
            std::uint64_t resume_at, std::filesystem::path errors_path)
      : options_(options),
        map_(map),
        state_(std::move(state)),
        resume_at_(resume_at),
        saved_(resume_at),
        done_(resume_at),
        errors_path_(std::move(errors_path)),
        topic_(topic_of(map.source)),
        bucket_(options.rate_per_second, options.rate_per_second / 10),
        progress_("import", input_size(options.input), "bytes"),
        stop_(install_stop_signal_handlers()) {}
  ImportRun(const ImportRun&) = delete;
  ImportRun& operator=(const ImportRun&) = delete;

  base::ExitCode run() {
    in_.open(options_.input, std::ios::binary);
    errors_.open(errors_path_, std::ios::app);
    if (!in_) return usage_error("cannot open " + options_.input.string());
    if (!errors_) return usage_error("cannot open " + errors_path_.string());
    ingest::ProducerConfig config;
    config.brokers = options_.brokers;
    config.client_id = "painpoint-import";
    config.extra = options_.producer_extra;
    auto producer = ingest::Producer::create(
        config, [this](const ingest::DeliveryReport& report) { delivered(report); });
    if (!producer.ok()) return usage_error("producer: " + producer.status().to_string());
    producer_.emplace(std::move(producer).value());
    std::string parse_error;
    if (options_.format == ImportFormat::kCsv) {
      CsvReader reader(in_);
      std::vector<std::string> record;
      std::optional<CsvColumns> columns;
      if (!reader.next(&record) || !(columns = csv_columns(map_, record, &parse_error))) {
        return usage_error(options_.input.string() + ": " +
                           (parse_error.empty() ? "no header row " + reader.error() : parse_error));
      }
      for (std::uint64_t row = 1; reader.next(&record); ++row) {
        std::string error;
        auto event = row <= resume_at_ ? std::nullopt : map_csv_row(map_, *columns, record, &error);
        if (!handle(row, std::move(event), error)) break;
      }
      parse_error = reader.error();
    } else {
      std::string line;
      for (std::uint64_t row = 1; std::getline(in_, line); ++row) {
        std::string error;
        auto event = row <= resume_at_ ? std::nullopt : map_json_row(map_, line, &error);
        if (!handle(row, std::move(event), error)) break;
      }
    }
    return finish(parse_error);
  }

 private:
  static std::uint64_t input_size(const std::filesystem::path& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    return ec ? 0 : size;
  }

  void delivered(const ingest::DeliveryReport& report) {
    if (report.status.ok()) {
      ++counts_.acknowledged;
      done_.mark(report.tag);
    } else if (counts_.failed++ == 0) {
      first_failure_ = report.status.to_string();
    }
  }

  // One mapped row (or the reason it has none): validated, then produced tagged with its number.
  // false: stop reading (produce failed, or a stop signal).
  bool handle(std::uint64_t row, std::optional<v1::FeedbackEvent> event, const std::string& error) {
    ++counts_.rows;
    if (row <= resume_at_) {
      ++counts_.skipped;
      return true;
    }
    std::string reason = error;
    if (event) {
      if (auto rejected =
              ingest::validate_and_normalize(*event, map_.source, options_.validation, now_)) {
        reason = std::string(ingest::reason_code(rejected->reason)) + ": " + rejected->detail;
        event.reset();
      }
    }
    if (!event) {
      ++counts_.rejected;
      // One line per row, whatever the parser's message looks like.
      std::replace(reason.begin(), reason.end(), '\n', ' ');
      errors_ << "row " << row << ": " << reason << "\n";
      done_.mark(row);
      return true;
    }
    bucket_.take();
    event->SerializeToString(&payload_);
    if (auto s = producer_->produce(topic_, event->product_id(), payload_, {}, row); !s.ok()) {
      if (counts_.failed++ == 0) first_failure_ = s.to_string();
      return false;
    }
    ++counts_.sent;
    if (const auto t = std::chrono::steady_clock::now(); t - last_save_ >= kStateInterval) {
      checkpoint();
      last_save_ = t;
    }
    return !stop_.load();
  }

  void checkpoint() {
    producer_->poll(std::chrono::milliseconds(0));
    if (done_.prefix() != saved_) state_ok_ = state_ok_ && state_.save(saved_ = done_.prefix());
    if (const auto at = in_.tellg(); at >= 0) {
      progress_.advance(static_cast<std::uint64_t>(at) - progress_.done());
    }
  }

  base::ExitCode finish(const std::string& parse_error) {
    const ingest::Status flushed = producer_->flush(std::chrono::seconds(60));
    state_ok_ = state_ok_ && state_.save(done_.prefix());
    errors_.flush();
    progress_.finish();
    const double seconds = progress_.elapsed_seconds();
    std::printf(
        "import: %llu rows read, %llu skipped (done before), %llu sent, %llu acknowledged, "
        "%llu rejected, %llu failed, %.3f s (%.0f rows/s) to %s\n",
        static_cast<unsigned long long>(counts_.rows),
        static_cast<unsigned long long>(counts_.skipped),
        static_cast<unsigned long long>(counts_.sent),
        static_cast<unsigned long long>(counts_.acknowledged),
        static_cast<unsigned long long>(counts_.rejected),
        static_cast<unsigned long long>(counts_.failed), seconds,
        static_cast<double>(counts_.acknowledged) / std::max(seconds, 1e-9), topic_.c_str());
    std::fflush(stdout);
    if (!parse_error.empty()) std::cerr << "painpoint import: " << parse_error << "\n";
    if (!state_ok_) std::cerr << "painpoint import: cannot write " << state_.path.string() << "\n";
    if (!flushed.ok() && first_failure_.empty()) first_failure_ = flushed.to_string();
    if (counts_.failed > 0 || !flushed.ok() || !parse_error.empty() || !state_ok_ || stop_.load()) {
      if (!first_failure_.empty()) {
        std::cerr << "painpoint import: first failure: " << first_failure_ << "\n";
      }
      return base::ExitCode::kImportIncomplete;
    }
    if (counts_.rejected > 0) {
      std::cerr << "painpoint import: " << counts_.rejected << " rows rejected, listed in "
                << errors_path_.string() << "\n";
      return base::ExitCode::kInputRejected;
    }
    return base::ExitCode::kOk;
  }

  const ImportOptions& options_;
  const ImportMap& map_;
  ImportState state_;
  const std::uint64_t resume_at_;
  std::uint64_t saved_;
  bool state_ok_ = true;
  DonePrefix done_;
  Counts counts_;
  std::string first_failure_;
  std::filesystem::path errors_path_;
  std::ifstream in_;
  std::ofstream errors_;
  const std::string topic_;
  TokenBucket bucket_;
  Progress progress_;
  const std::atomic<bool>& stop_;
  const std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point last_save_ = std::chrono::steady_clock::now();
  std::string payload_;
  std::optional<ingest::Producer> producer_;  // last: destroyed (flushed) first
};

}  // namespace

base::ExitCode run_import(const ImportOptions& options) {
  std::ifstream map_in(options.map_file);
  if (!map_in) return usage_error("cannot open the map file " + options.map_file.string());
  const ImportMapLoad loaded = parse_import_map(map_in);
  if (!loaded.map) return usage_error(options.map_file.string() + ": " + loaded.error);
  ImportState state{options.state_file.empty()
                        ? std::filesystem::path(options.input.string() + ".import-state")
                        : options.state_file,
                    std::filesystem::absolute(options.input).lexically_normal().string()};
  std::string state_error;
  const auto resume_at = state.load(&state_error);
  if (!resume_at) return usage_error(state_error);
  ImportRun run(options, *loaded.map, std::move(state), *resume_at,
                options.errors_file.empty()
                    ? std::filesystem::path(options.input.string() + ".import-errors")
                    : options.errors_file);
  return run.run();
}

CLI::App* add_import_subcommand(CLI::App& app, ImportOptions* options) {
  auto* command = app.add_subcommand(
      "import", "Import history (a CSV or JSONL export) into Kafka as FeedbackEvents, resumably");
  command->add_option("--format", options->format, "csv or jsonl")
      ->required()
      ->transform(CLI::CheckedTransformer(std::map<std::string, ImportFormat>{
          {"csv", ImportFormat::kCsv}, {"jsonl", ImportFormat::kJsonl}}));
  command->add_option("--input", options->input, "The export to import")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--map", options->map_file, "Which column / JSON pointer is which field")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--brokers", options->brokers, "Kafka bootstrap servers")->required();
  command->add_option("--rate", options->rate_per_second, "Rows per second (0: unlimited)")
      ->check(CLI::Range(0.0, 1e9));
  command->add_option("--state", options->state_file,
                      "Acknowledged-position file (default: INPUT.import-state)");
  command
      ->add_option("--config", options->config_path,
                   "Configuration file; its kafka.* keys set the Kafka client properties")
      ->check(CLI::ExistingFile);
  command->add_option("--errors", options->errors_file,
                      "Rejected rows are appended here (default: INPUT.import-errors)");
  return command;
}

}  // namespace painpoint::service

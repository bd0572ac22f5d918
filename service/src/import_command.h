#pragma once

// `painpoint import`: history from a CSV or JSONL export into Kafka as FeedbackEvents, validated
// like `painpoint produce`, rate-limited, resumable after a kill (see docs/import.md).

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "painpoint/base/exit_code.h"
#include "painpoint/ingest/validate.h"
#include "painpoint/v1/feedback.pb.h"

namespace CLI {
class App;
}

namespace painpoint::service {

enum class ImportFormat { kCsv, kJsonl };

// The map file: which column (CSV) or JSON pointer (JSONL) holds each field, in `key = value`
// lines: id, text (required), product, account, arr (whole cents), time (RFC 3339 or unix
// seconds), url, channel; default_product; id_prefix (prepended to every id); source
// (support | sales | customer: the topic).
struct ImportMap {
  std::map<std::string, std::string> fields;
  std::string default_product;
  std::string id_prefix;
  v1::Source source = v1::SOURCE_SUPPORT;
};

struct ImportMapLoad {
  std::optional<ImportMap> map;
  std::string error;
};
ImportMapLoad parse_import_map(std::istream& in);

// Where each mapped field sits in a CSV record, from its header row. nullopt + error when a
// mapped column is missing.
struct CsvColumns {
  std::map<std::string, std::size_t> index;  // field -> column
};
std::optional<CsvColumns> csv_columns(const ImportMap& map, const std::vector<std::string>& header,
                                      std::string* error);

// One row to an event (not yet validated). nullopt + error names the problem.
std::optional<v1::FeedbackEvent> map_csv_row(const ImportMap& map, const CsvColumns& columns,
                                             const std::vector<std::string>& row,
                                             std::string* error);
std::optional<v1::FeedbackEvent> map_json_row(const ImportMap& map, std::string_view line,
                                              std::string* error);

struct ImportOptions {
  ImportFormat format = ImportFormat::kCsv;
  std::filesystem::path input;
  std::filesystem::path map_file;
  std::string brokers;
  double rate_per_second = 0;         // 0: unlimited
  std::filesystem::path state_file;   // empty: <input>.import-state
  std::filesystem::path errors_file;  // empty: <input>.import-errors
  ingest::ValidationConfig validation;
  std::string config_path;                            // --config: its kafka.* keys
  std::map<std::string, std::string> producer_extra;  // librdkafka properties from those keys
};

// kOk every row sent; kInputRejected some rows rejected (listed in the errors file), the rest
// sent; kImportIncomplete rows not acknowledged by Kafka (rerun to resume); kBadUsage unusable
// arguments or files.
[[nodiscard]] base::ExitCode run_import(const ImportOptions& options);

// Adds `painpoint import` and its options (filled into `*options` on parse) to `app`.
CLI::App* add_import_subcommand(CLI::App& app, ImportOptions* options);

}  // namespace painpoint::service

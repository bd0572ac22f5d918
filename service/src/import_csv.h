#pragma once

// An RFC 4180 CSV reader for `painpoint import`: comma-separated fields, double-quoted fields
// with "" for a quote and line breaks inside quotes, CRLF or LF line ends, a UTF-8 byte order
// mark ignored at the start. Bytes pass through unchanged (UTF-8 is checked by validation).

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace painpoint::service {

class CsvReader {
 public:
  explicit CsvReader(std::istream& in) : in_(in) {}

  // Reads the next record into `fields`. false at the end of input or on a malformed record
  // (then error() says why; the reader stops). A blank line is a record with one empty field.
  bool next(std::vector<std::string>* fields);
  const std::string& error() const { return error_; }
  // 1-based line on which the last record returned began.
  std::uint64_t line() const { return record_line_; }

 private:
  int get();

  std::istream& in_;
  std::string error_;
  std::uint64_t line_ = 1;
  std::uint64_t record_line_ = 0;
  bool started_ = false;
};

}  // namespace painpoint::service

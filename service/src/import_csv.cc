#include "import_csv.h"

namespace painpoint::service {

int CsvReader::get() {
  const int c = in_.get();
  if (c == '\n') ++line_;
  return c;
}

bool CsvReader::next(std::vector<std::string>* fields) {
  fields->clear();
  if (!error_.empty()) return false;
  if (!started_) {
    started_ = true;
    // A UTF-8 byte order mark (spreadsheet exports write one) is not part of the first field.
    if (in_.peek() == 0xEF) {
      char bom[3];
      in_.read(bom, 3);
      if (!(in_.gcount() == 3 && bom[1] == '\xBB' && bom[2] == '\xBF')) {
        in_.clear();
        in_.seekg(0);
      }
    }
  }
  if (in_.peek() == std::char_traits<char>::eof()) return false;
  record_line_ = line_;
  std::string field;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // this field was quoted (only a separator may follow its end)
  for (;;) {
    const int c = get();
    if (quoted) {
      if (c == std::char_traits<char>::eof()) {
        error_ = "line " + std::to_string(record_line_) + ": unterminated quoted field";
        return false;
      }
      if (c == '"') {
        if (in_.peek() == '"') {
          get();
          field.push_back('"');
        } else {
          quoted = false;
        }
      } else {
        field.push_back(static_cast<char>(c));
      }
      continue;
    }
    if (c == ',') {
      fields->push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == std::char_traits<char>::eof()) {
      if (!was_quoted && !field.empty() && field.back() == '\r') field.pop_back();
      fields->push_back(std::move(field));
      return true;
    } else if (c == '\r' && in_.peek() == '\n') {
      continue;  // CRLF: the '\n' ends the record
    } else if (c == '"' && field.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (was_quoted) {
      error_ = "line " + std::to_string(line_) + ": text after a closing quote";
      return false;
    } else {
      field.push_back(static_cast<char>(c));
    }
  }
}

}  // namespace painpoint::service

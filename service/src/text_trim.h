#pragma once

// Trimming of the service's line- and header-oriented text (config files, import maps, HTTP
// header parameters): one helper, each caller saying which characters are blanks to it.

#include <string_view>

namespace painpoint::service {

// `text` without the leading and trailing characters of `blanks`.
inline std::string_view trim(std::string_view text, std::string_view blanks = " \t\r") {
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(blanks) - first + 1);
}

}  // namespace painpoint::service

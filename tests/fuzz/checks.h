#pragma once

// Shared by the fuzz targets. A violated invariant aborts, which libFuzzer reports as a crash
// and saves the input that caused it.

#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace painpoint::fuzz {

[[noreturn]] inline void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s %s\n", what, detail.c_str());
  std::abort();
}

inline void check(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) fail(what, detail);
}

inline void quiet_protobuf() {
  // Protobuf logs every string field with invalid UTF-8; at fuzzing speed that is pure noise.
  google::protobuf::SetLogHandler(nullptr);
}

}  // namespace painpoint::fuzz

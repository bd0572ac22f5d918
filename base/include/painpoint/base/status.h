#pragma once

// The one Status of every module (docs/adr-006-errors.md). A module has its own error enum, whose
// first value kOk = 0 means success, and names its Status as an alias:
//   using Status = base::Status<KafkaErrc>;
// Next to the enum it declares, found by argument-dependent lookup:
//   std::string_view to_string(KafkaErrc);            // stable lowercase name, e.g. "timed_out"
//   KafkaErrc result_without_value_code(KafkaErrc);   // the code of base::Result's misuse status

#include <string>
#include <string_view>
#include <utility>

namespace painpoint::base {

namespace detail {
// Outside the struct, so that the module's to_string(Errc) is found by argument-dependent lookup
// rather than hidden by Status::to_string.
template <class Errc>
std::string_view errc_name(Errc code) {
  return to_string(code);
}
}  // namespace detail

// Outcome of an operation: a value the caller must look at, never an exception.
template <class Errc>
struct [[nodiscard]] Status {
  Errc code{};
  std::string message;
  // The code of the library the failure came from (librdkafka's rd_kafka_resp_err_t), 0
  // otherwise, so logs can name the precise cause.
  int native_error = 0;

  static Status Ok() { return {}; }
  static Status Error(Errc code, std::string message, int native_error = 0) {
    return Status{code, std::move(message), native_error};
  }
  // What a base::Result built from an OK status holds instead: a programming error that must
  // not pass for success.
  static Status result_without_value() {
    return Error(result_without_value_code(Errc{}), "Result built from an OK status");
  }

  [[nodiscard]] bool ok() const { return code == Errc{}; }
  // "timed_out: flush: 3 messages still in flight"; "ok" for success. For logs and operators.
  [[nodiscard]] std::string to_string() const {
    std::string out(detail::errc_name(code));
    if (!message.empty()) {
      out += ": ";
      out += message;
    }
    return out;
  }
};

}  // namespace painpoint::base

#pragma once

// Reading arbitrary JSON through protobuf's JSON mapping (google.protobuf.Value), the project's
// one JSON parser.

#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace painpoint::service::json {

using google::protobuf::Value;

// nullopt on success, else the parser's reason.
std::optional<std::string> parse(std::string_view text, Value* out);

// The member `name` of an object; null when `value` is null, not an object or lacks it.
const Value* member(const Value* value, std::string_view name);
// RFC 6901 JSON pointer ("" is the whole document; "~1" is '/', "~0" is '~').
const Value* at_pointer(const Value* value, std::string_view pointer);

// A string as is, a number as its decimal text (integers without a fraction), a bool as
// true/false; nullopt for null, absent, objects and arrays. Ids arrive as either.
std::optional<std::string> scalar_text(const Value* value);
// A number, or a string holding a whole number.
std::optional<std::int64_t> integer(const Value* value);

}  // namespace painpoint::service::json

#include "json_value.h"

#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace painpoint::service::json {

namespace {

// Doubles hold integers exactly up to 2^53; larger ids are kept in their JSON string form by the
// vendors whose payloads have them.
constexpr double kMaxExactInteger = 9007199254740992.0;

}  // namespace

std::optional<std::string> parse(std::string_view text, Value* out) {
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), out);
  if (!status.ok()) return std::string(status.message());
  return std::nullopt;
}

const Value* member(const Value* value, std::string_view name) {
  if (value == nullptr || !value->has_struct_value()) return nullptr;
  const auto& fields = value->struct_value().fields();
  auto it = fields.find(std::string(name));
  return it == fields.end() ? nullptr : &it->second;
}

const Value* at_pointer(const Value* value, std::string_view pointer) {
  while (value != nullptr && !pointer.empty()) {
    if (pointer.front() != '/') return nullptr;
    pointer.remove_prefix(1);
    const auto end = pointer.find('/');
    const std::string_view raw = pointer.substr(0, end);
    pointer = end == std::string_view::npos ? std::string_view{} : pointer.substr(end);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        token.push_back(raw[i]);
      }
    }
    if (value->has_list_value()) {
      std::size_t index = 0;
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), index);
      const auto& list = value->list_value().values();
      if (token.empty() || ec != std::errc() || ptr != token.data() + token.size() ||
          index >= static_cast<std::size_t>(list.size())) {
        return nullptr;
      }
      value = &list[static_cast<int>(index)];
    } else {
      value = member(value, token);
    }
  }
  return value;
}

std::optional<std::string> scalar_text(const Value* value) {
  if (value == nullptr) return std::nullopt;
  switch (value->kind_case()) {
    case Value::kStringValue:
      return value->string_value();
    case Value::kBoolValue:
      return value->bool_value() ? "true" : "false";
    case Value::kNumberValue: {
      const double number = value->number_value();
      char buffer[32];
      if (std::trunc(number) == number && std::fabs(number) <= kMaxExactInteger) {
        std::snprintf(buffer, sizeof buffer, "%.0f", number);
      } else {
        std::snprintf(buffer, sizeof buffer, "%.17g", number);
      }
      return std::string(buffer);
    }
    default:
      return std::nullopt;
  }
}

std::optional<std::int64_t> integer(const Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->has_number_value()) {
    const double number = value->number_value();
    if (std::trunc(number) != number || std::fabs(number) > kMaxExactInteger) return std::nullopt;
    return static_cast<std::int64_t>(number);
  }
  if (value->kind_case() == Value::kStringValue) {
    const std::string& text = value->string_value();
    std::int64_t parsed = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (!text.empty() && ec == std::errc() && ptr == text.data() + text.size()) return parsed;
  }
  return std::nullopt;
}

}  // namespace painpoint::service::json

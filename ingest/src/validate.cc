#include "painpoint/ingest/validate.h"

#include <google/protobuf/empty.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <array>
#include <cstdint>
#include <string>

#include "painpoint/base/hex.h"
#include "painpoint/base/time.h"
#include "painpoint/base/utf8.h"
#include "painpoint/ingest/topics.h"

namespace painpoint::ingest {
namespace {

using google::protobuf::util::TimeUtil;

Rejection reject(RejectReason reason, std::string detail) {
  return Rejection{reason, std::move(detail)};
}

bool is_unicode_space(char32_t cp) {
  switch (cp) {
    case U' ':
    case U'\t':
    case U'\n':
    case U'\r':
    case U'\v':
    case U'\f':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Control and invisible format characters that carry no meaning in feedback text.
bool is_droppable(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x200B || cp == 0xFEFF || cp == 0x00AD;
}

bool is_ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_email_local(char c) {
  return is_ascii_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool is_email_domain(char c) { return is_ascii_alnum(c) || c == '.' || c == '-'; }

// Length of an email address whose '@' is at `at`, scanning from `start` (the earliest byte not
// yet emitted). Returns {begin, end} or {npos, npos}.
std::pair<std::size_t, std::size_t> email_around(std::string_view s, std::size_t start,
                                                 std::size_t at) {
  constexpr auto npos = std::string_view::npos;
  std::size_t b = at;
  while (b > start && is_email_local(s[b - 1])) --b;
  while (b < at && s[b] == '.') ++b;  // a sentence dot is not part of the address
  if (b == at) return {npos, npos};
  std::size_t e = at + 1;
  while (e < s.size() && is_email_domain(s[e])) ++e;
  while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;  // trailing punctuation
  const std::string_view domain = s.substr(at + 1, e - at - 1);
  const std::size_t dot = domain.rfind('.');
  if (dot == npos || dot == 0 || domain.size() - dot - 1 < 2) return {npos, npos};
  for (std::size_t k = dot + 1; k < domain.size(); ++k) {
    if (is_digit(domain[k]) || domain[k] == '-') return {npos, npos};  // TLDs are alphabetic
  }
  return {b, e};
}

// A run of digits with phone-style separators starting at `b` (a digit, '+' or '(').
// Returns the end of the run and the number of digits in it.
std::pair<std::size_t, int> number_run(std::string_view s, std::size_t b) {
  std::size_t i = b;
  int digits = 0;
  std::size_t end = b;
  if (s[i] == '+' || s[i] == '(') ++i;
  while (i < s.size()) {
    const char c = s[i];
    if (is_digit(c)) {
      ++digits;
      ++i;
      end = i;
      if (i < s.size() && s[i] == ')') {
        ++i;
        end = i;
      }
      continue;
    }
    // One separator between digit groups: "555-123 4567", "(030) 1234", "4111 1111 ...".
    if ((c == ' ' || c == '-' || c == '.' || c == '(') && i + 1 < s.size() &&
        (is_digit(s[i + 1]) || (s[i + 1] == '(' && c == ' '))) {
      ++i;
      continue;
    }
    break;
  }
  return {end, digits};
}

// Dates, times, versions and IP addresses look like digit runs but are not personal data.
bool looks_like_date_or_version(std::string_view run) {
  int dots = 0;
  int dashes = 0;
  int spaces = 0;
  std::array<int, 8> groups{};
  std::size_t n_groups = 0;
  int current = 0;
  for (char c : run) {
    if (is_digit(c)) {
      ++current;
      continue;
    }
    dots += c == '.';
    dashes += c == '-';
    spaces += c == ' ';
    if (current > 0 && n_groups < groups.size()) groups[n_groups++] = current;
    current = 0;
  }
  if (current > 0 && n_groups < groups.size()) groups[n_groups++] = current;
  if (dots > 0 && dashes == 0 && spaces == 0) return true;  // 1.2.3, 10.0.0.1, 3.14
  // ISO dates: 2026-10-01 (dd-mm-yyyy is rarer and ambiguous with phone formats).
  return dashes == 2 && n_groups == 3 && groups[0] == 4 && groups[1] <= 2 && groups[2] <= 2;
}

// Replaces emails, phone numbers and card-like numbers by placeholders; `replaced` tells whether
// it did (then the result differs from `s`: a placeholder has neither '@' nor digits).
std::string scrub_pii(std::string_view s, bool& replaced) {
  replaced = false;
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  std::size_t emitted_until = 0;  // bytes before this were copied to `out`
  while (i < s.size()) {
    const char c = s[i];
    if (c == '@') {
      auto [b, e] = email_around(s, emitted_until, i);
      if (b != std::string_view::npos) {
        out.append(s.substr(emitted_until, b - emitted_until));
        out.append("<email>");
        replaced = true;
        i = emitted_until = e;
        continue;
      }
    }
    const bool at_token_start = i == 0 || !is_ascii_alnum(s[i - 1]);
    if (at_token_start &&
        (is_digit(c) || ((c == '+' || c == '(') && i + 1 < s.size() && is_digit(s[i + 1])))) {
      auto [e, digits] = number_run(s, i);
      const bool at_token_end = e >= s.size() || !is_ascii_alnum(s[e]);
      const std::string_view run = s.substr(i, e - i);
      const char* placeholder = nullptr;
      if (at_token_end && digits >= 7 && !looks_like_date_or_version(run)) {
        if (digits >= 13 && c != '+') {
          placeholder = "<number>";
        } else if (digits <= 15) {
          placeholder = "<phone>";
        } else {
          placeholder = "<number>";
        }
      }
      if (placeholder != nullptr) {
        out.append(s.substr(emitted_until, i - emitted_until));
        out.append(placeholder);
        replaced = true;
        i = emitted_until = e;
        continue;
      }
      // Skip the whole run so that its tail is not re-examined as a new token.
      i = e > i ? e : i + 1;
      continue;
    }
    ++i;
  }
  out.append(s.substr(emitted_until));
  return out;
}

// Drops control characters and collapses whitespace runs to one space; trims both ends.
std::string clean_whitespace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  std::size_t i = 0;
  while (i < s.size()) {
    // Printable ASCII other than the space is kept as is: copy such runs whole (most feedback is
    // mostly that, and one append per character was most of the cost of this function).
    std::size_t run_end = i;
    while (run_end < s.size() && s[run_end] > ' ' && s[run_end] < 0x7F) ++run_end;
    if (run_end > i) {
      if (pending_space) out.push_back(' ');
      pending_space = false;
      out.append(s.substr(i, run_end - i));
      i = run_end;
      continue;
    }
    const std::size_t start = i;
    const char32_t cp = base::decode_utf8(s, i);
    if (is_unicode_space(cp)) {
      pending_space = !out.empty();
      continue;
    }
    if (is_droppable(cp)) continue;
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.append(s.substr(start, i - start));
  }
  return out;
}

// Whether clean_whitespace(s) would return s unchanged: printable ASCII with single spaces
// between words and none at either end. Most feedback is like that, and this pass does not copy.
bool is_clean_ascii(std::string_view s) {
  if (!s.empty() && (s.front() == ' ' || s.back() == ' ')) return false;
  bool after_space = false;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ') {
      if (after_space) return false;
      after_space = true;
    } else if (c < ' ' || c >= 0x7F) {  // controls, DEL and every byte of non-ASCII text
      return false;
    } else {
      after_space = false;
    }
  }
  return true;
}

// Whether scrub_pii(s) can replace anything: every address has an '@' and every number a digit.
bool may_hold_pii(std::string_view s) {
  for (const char c : s) {
    if (c == '@' || (c >= '0' && c <= '9')) return true;
  }
  return false;
}

bool has_control_chars(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const char32_t cp = base::decode_utf8(s, i);
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return true;
  }
  return false;
}

bool is_product_id_char(char c) {
  return is_ascii_alnum(c) || c == '.' || c == '_' || c == ':' || c == '-';
}

std::optional<Rejection> check_utf8(std::string_view value, const char* field) {
  if (!base::is_valid_utf8(value)) {
    return reject(RejectReason::kInvalidUtf8, std::string(field) + " is not valid UTF-8");
  }
  return std::nullopt;
}

std::optional<Rejection> check_optional_string(std::string_view value, const char* field,
                                               std::size_t max_bytes) {
  if (auto r = check_utf8(value, field)) return r;
  if (value.size() > max_bytes) {
    return reject(RejectReason::kBadField,
                  std::string(field) + " longer than " + std::to_string(max_bytes) + " bytes");
  }
  return std::nullopt;
}

// Field numbers of FeedbackEvent's string fields, for telling "not protobuf" from "bad UTF-8".
constexpr std::array<int, 6> kStringFields{1, 3, 4, 6, 8, 9};

}  // namespace

std::string_view reason_code(RejectReason reason) {
  switch (reason) {
    case RejectReason::kUndecodable:
      return "undecodable";
    case RejectReason::kMissingEventId:
      return "missing_event_id";
    case RejectReason::kBadEventId:
      return "bad_event_id";
    case RejectReason::kMissingProductId:
      return "missing_product_id";
    case RejectReason::kBadProductId:
      return "bad_product_id";
    case RejectReason::kMissingText:
      return "missing_text";
    case RejectReason::kTextTooLong:
      return "text_too_long";
    case RejectReason::kInvalidUtf8:
      return "invalid_utf8";
    case RejectReason::kBadTimestamp:
      return "bad_timestamp";
    case RejectReason::kBadField:
      return "bad_field";
  }
  return "unknown";
}

v1::Source source_for_topic(std::string_view topic) {
  if (topic == kTopicSupport) return v1::SOURCE_SUPPORT;
  if (topic == kTopicSales) return v1::SOURCE_SALES;
  if (topic == kTopicCustomer) return v1::SOURCE_CUSTOMER;
  return v1::SOURCE_UNSPECIFIED;
}

// Whitespace and control characters go first: an invisible character inside an address or number
// ("jo@exam\u200Bple.com") would otherwise hide it from the scrubber and then be dropped, leaving
// the PII in the text.
//
// A placeholder can expose what its neighbour hid (a phone number glued to an address's domain, a
// number whose last group ran into an address), so scrubbing repeats until nothing changes: a
// second normalization, as when `produce` and then `serve` validate, must not change the text.
// Every change removes an '@' or at least 7 digits, so this ends. No fixed cap: crafted text can
// chain one exposure per pass (the fuzzer built 17), and a 16 KiB text allows at most a few
// hundred links, each pass linear.
std::string normalize_text(std::string_view text) {
  std::string out = is_clean_ascii(text) ? std::string(text) : clean_whitespace(text);
  while (may_hold_pii(out)) {
    bool replaced = false;
    std::string again = scrub_pii(out, replaced);
    if (!replaced) break;
    out = std::move(again);
  }
  return out;
}

std::optional<Rejection> validate_and_normalize(v1::FeedbackEvent& event, v1::Source topic_source,
                                                const ValidationConfig& config,
                                                std::chrono::system_clock::time_point now) {
  // event_id: an idempotency key, so it is checked but never rewritten.
  if (event.event_id().empty()) return reject(RejectReason::kMissingEventId, "event_id is empty");
  if (auto r = check_utf8(event.event_id(), "event_id")) return r;
  if (event.event_id().size() > config.max_id_bytes) {
    return reject(RejectReason::kBadEventId,
                  "event_id longer than " + std::to_string(config.max_id_bytes) + " bytes");
  }
  if (has_control_chars(event.event_id())) {
    return reject(RejectReason::kBadEventId, "event_id contains control characters");
  }

  if (event.product_id().empty()) {
    return reject(RejectReason::kMissingProductId, "product_id is empty");
  }
  if (auto r = check_utf8(event.product_id(), "product_id")) return r;
  if (event.product_id().size() > config.max_id_bytes) {
    return reject(RejectReason::kBadProductId,
                  "product_id longer than " + std::to_string(config.max_id_bytes) + " bytes");
  }
  for (char c : event.product_id()) {
    if (!is_product_id_char(c)) {
      return reject(RejectReason::kBadProductId,
                    "product_id has characters outside [A-Za-z0-9._:-]");
    }
  }

  if (auto r = check_utf8(event.text(), "text")) return r;
  // Checked on the raw text so that the cost of normalizing stays bounded.
  if (event.text().size() > config.max_text_bytes) {
    return reject(RejectReason::kTextTooLong, "text is " + std::to_string(event.text().size()) +
                                                  " bytes, limit " +
                                                  std::to_string(config.max_text_bytes));
  }

  if (auto r = check_optional_string(event.account_id(), "account_id", config.max_id_bytes)) {
    return r;
  }
  if (auto r = check_optional_string(event.channel(), "channel", config.max_id_bytes)) return r;
  if (auto r =
          check_optional_string(event.external_url(), "external_url", config.max_attribute_bytes)) {
    return r;
  }
  if (static_cast<std::size_t>(event.attributes_size()) > config.max_attributes) {
    return reject(RejectReason::kBadField,
                  "more than " + std::to_string(config.max_attributes) + " attributes");
  }
  for (const auto& [key, value] : event.attributes()) {
    if (auto r = check_optional_string(key, "attributes key", config.max_attribute_bytes)) {
      return r;
    }
    if (auto r = check_optional_string(value, "attributes value", config.max_attribute_bytes)) {
      return r;
    }
  }
  if (event.account_arr_cents() < 0) {
    return reject(RejectReason::kBadField, "account_arr_cents is negative");
  }
  if (!v1::Source_IsValid(event.source())) {
    return reject(RejectReason::kBadField,
                  "source has unknown value " + std::to_string(event.source()));
  }

  if (event.has_occurred_at()) {
    const auto& ts = event.occurred_at();
    if (ts.seconds() < TimeUtil::kTimestampMinSeconds ||
        ts.seconds() > TimeUtil::kTimestampMaxSeconds || ts.nanos() < 0 ||
        ts.nanos() > 999'999'999) {
      return reject(RejectReason::kBadTimestamp, "occurred_at is out of range");
    }
    const std::chrono::sys_seconds when{std::chrono::seconds{ts.seconds()}};
    if (when < config.min_occurred_at) {
      return reject(RejectReason::kBadTimestamp,
                    "occurred_at " + TimeUtil::ToString(ts) + " is before the accepted minimum");
    }
    // In seconds: converting `when` to the clock's nanoseconds overflows after the year 2262.
    if (when > std::chrono::floor<std::chrono::seconds>(now) + config.max_future_skew) {
      return reject(RejectReason::kBadTimestamp,
                    "occurred_at " + TimeUtil::ToString(ts) + " is in the future");
    }
  }

  std::string text = normalize_text(event.text());
  if (text.empty()) return reject(RejectReason::kMissingText, "text is empty or whitespace only");
  // Placeholders can be longer than what they replace ("a@b.cc" -> "<email>"); an accepted text
  // must pass again when the next stage re-validates it.
  if (text.size() > config.max_text_bytes) {
    return reject(RejectReason::kTextTooLong, "text is " + std::to_string(text.size()) +
                                                  " bytes after scrubbing, limit " +
                                                  std::to_string(config.max_text_bytes));
  }

  // All checks passed: only now mutate, so a rejected event is left as it came.
  event.set_text(std::move(text));
  if (event.source() == v1::SOURCE_UNSPECIFIED) event.set_source(topic_source);
  if (!event.has_occurred_at()) {
    *event.mutable_occurred_at() = base::timestamp_of(now);
  }
  return std::nullopt;
}

namespace {

// A parser for the common shape of a FeedbackEvent line: one flat object with the camelCase
// names of the scalar fields, each at most once, plain strings, enum names, integer ARR (bare or
// quoted) and
// `YYYY-MM-DDTHH:MM:SSZ` timestamps. protobuf's JSON parser costs about as much per event as
// the clustering; this handles the usual line in a fraction of that. Anything else (other
// names, duplicates, attributes, null, other numbers in strings, fractions, offsets, surrogates,
// control characters, ...) returns false and goes to protobuf's parser, so results and
// rejections stay protobuf's by construction: this only ever accepts what protobuf accepts, with
// the same result.
class FastJson {
 public:
  explicit FastJson(std::string_view s) : s_(s) {}

  bool parse(v1::FeedbackEvent* out) {
    ws();
    if (!eat('{')) return false;
    ws();
    if (eat('}')) return at_end();
    unsigned seen = 0;
    for (;;) {
      if (!string(key_)) return false;
      ws();
      if (!eat(':')) return false;
      ws();
      const int field = field_of(key_);
      if (field < 0 || (seen & (1u << field)) != 0) return false;
      seen |= 1u << field;
      if (!value(field, out)) return false;
      ws();
      if (eat('}')) return at_end();
      if (!eat(',')) return false;
      ws();
    }
  }

 private:
  enum Field {
    kEventId,
    kSource,
    kProductId,
    kText,
    kOccurredAt,
    kAccountId,
    kArr,
    kChannel,
    kUrl
  };

  static int field_of(std::string_view k) {
    static constexpr std::array<std::string_view, 9> kNames = {
        "eventId",   "source",          "productId", "text",       "occurredAt",
        "accountId", "accountArrCents", "channel",   "externalUrl"};
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      if (kNames[i] == k) return static_cast<int>(i);
    }
    return -1;
  }

  bool value(int field, v1::FeedbackEvent* out) {
    // proto3 JSON writes an int64 as a string ("480000"); both forms are the usual line.
    if (field == kArr) return eat('"') ? integer(out) && eat('"') : integer(out);
    if (!string(val_)) return false;
    switch (field) {
      case kEventId:
        out->set_event_id(val_);
        return true;
      case kProductId:
        out->set_product_id(val_);
        return true;
      case kText:
        out->set_text(val_);
        return true;
      case kAccountId:
        out->set_account_id(val_);
        return true;
      case kChannel:
        out->set_channel(val_);
        return true;
      case kUrl:
        out->set_external_url(val_);
        return true;
      case kSource:
        return source(out);
      case kOccurredAt:
        return timestamp(out);
      default:
        return false;
    }
  }

  bool source(v1::FeedbackEvent* out) const {
    for (v1::Source src :
         {v1::SOURCE_UNSPECIFIED, v1::SOURCE_CUSTOMER, v1::SOURCE_SALES, v1::SOURCE_SUPPORT}) {
      if (v1::Source_Name(src) == val_) {
        out->set_source(src);
        return true;
      }
    }
    return false;
  }

  // -?(0|[1-9][0-9]{0,17}) only: no overflow to think about; "-0", fractions, exponents and
  // longer numbers go to protobuf.
  bool integer(v1::FeedbackEvent* out) {
    const bool neg = eat('-');
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return false;
    if (s_[pos_] == '0') {
      ++pos_;
      if (neg || (pos_ < s_.size() &&
                  (is_digit(s_[pos_]) || s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))) {
        return false;
      }
      out->set_account_arr_cents(0);
      return true;
    }
    std::int64_t v = 0;
    std::size_t digits = 0;
    while (pos_ < s_.size() && is_digit(s_[pos_])) {
      if (++digits > 18) return false;
      v = v * 10 + (s_[pos_++] - '0');
    }
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) return false;
    out->set_account_arr_cents(neg ? -v : v);
    return true;
  }

  // Exactly YYYY-MM-DDTHH:MM:SSZ with a valid calendar date, year 1970..9999.
  bool timestamp(v1::FeedbackEvent* out) const {
    const std::string& t = val_;
    if (t.size() != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':' || t[19] != 'Z') {
      return false;
    }
    for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
      if (!is_digit(t[i])) return false;
    }
    auto num = [&](std::size_t at, std::size_t n) {
      int v = 0;
      for (std::size_t i = 0; i < n; ++i) v = v * 10 + (t[at + i] - '0');
      return v;
    };
    const int y = num(0, 4);
    const int mo = num(5, 2);
    const int d = num(8, 2);
    const int h = num(11, 2);
    const int mi = num(14, 2);
    const int sec = num(17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59) return false;
    static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > kDays[static_cast<std::size_t>(mo - 1)] + (mo == 2 && leap ? 1 : 0)) return false;
    // Days since 1970-01-01 (H. Hinnant's days_from_civil).
    const int yy = mo <= 2 ? y - 1 : y;
    const int era = yy / 400;
    const int yoe = yy - era * 400;
    const int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
    out->mutable_occurred_at()->set_seconds(days * 86400 + h * 3600 + mi * 60 + sec);
    return true;
  }

  bool string(std::string& out) {
    if (!eat('"')) return false;
    out.clear();
    for (;;) {
      const std::size_t start = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
             static_cast<unsigned char>(s_[pos_]) >= 0x20) {
        ++pos_;
      }
      out.append(s_.data() + start, pos_ - start);
      if (pos_ >= s_.size()) return false;
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\' || pos_ >= s_.size()) return false;  // raw control character
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return false;
          std::uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            const int digit = base::hex_digit_value(s_[pos_++]);
            if (digit < 0) return false;
            cp = (cp << 4) | static_cast<std::uint32_t>(digit);
          }
          if (cp < 0x20 || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
          base::append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool at_end() {
    ws();
    return pos_ == s_.size();
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string key_;
  std::string val_;
};

}  // namespace

std::optional<Rejection> parse_json_event(std::string_view line, v1::FeedbackEvent* out) {
  if (!base::is_valid_utf8(line)) {
    return reject(RejectReason::kInvalidUtf8, "line is not valid UTF-8");
  }
  out->Clear();
  if (FastJson(line).parse(out)) return std::nullopt;
  out->Clear();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  options.case_insensitive_enum_parsing = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(line.data(), line.size()), out, options);
  if (!status.ok()) {
    out->Clear();
    return reject(RejectReason::kUndecodable,
                  "not a FeedbackEvent in proto3 JSON: " + std::string(status.message()));
  }
  return std::nullopt;
}

std::optional<Rejection> parse_wire_event(std::string_view bytes, v1::FeedbackEvent* out) {
  out->Clear();
  if (out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  out->Clear();
  // Protobuf refuses proto3 strings with invalid UTF-8 like any other malformed input; tell the
  // two apart so the dead letter says what is actually wrong.
  google::protobuf::Empty shell;
  if (shell.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    const auto& fields = shell.GetReflection()->GetUnknownFields(shell);
    for (int k = 0; k < fields.field_count(); ++k) {
      const auto& field = fields.field(k);
      if (field.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
      for (int number : kStringFields) {
        if (field.number() == number && !base::is_valid_utf8(field.length_delimited())) {
          const auto* desc = v1::FeedbackEvent::descriptor()->FindFieldByNumber(number);
          return reject(RejectReason::kInvalidUtf8, desc->name() + " is not valid UTF-8");
        }
      }
    }
  }
  return reject(RejectReason::kUndecodable, "bytes are not a protobuf FeedbackEvent");
}

}  // namespace painpoint::ingest

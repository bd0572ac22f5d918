#include "painpoint/ingest/validate.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

namespace painpoint::ingest {
namespace {

using google::protobuf::util::TimeUtil;
using namespace std::chrono_literals;

const auto kNow = std::chrono::sys_days{std::chrono::year{2026} / 10 / 2} + 12h;

v1::FeedbackEvent good_event() {
  v1::FeedbackEvent e;
  e.set_event_id("e-1");
  e.set_product_id("mobile-app");
  e.set_text("The app crashes when I upload a photo");
  *e.mutable_occurred_at() = TimeUtil::SecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::seconds>((kNow - 24h).time_since_epoch()).count());
  return e;
}

struct Case {
  const char* name;
  std::function<void(v1::FeedbackEvent&)> mutate;
  std::optional<RejectReason> expected;
};

class ValidationTable : public ::testing::TestWithParam<Case> {};

TEST_P(ValidationTable, AcceptsOrRejectsWithReason) {
  auto event = good_event();
  GetParam().mutate(event);
  const auto result = validate_and_normalize(event, v1::SOURCE_SUPPORT, ValidationConfig{}, kNow);
  if (GetParam().expected) {
    ASSERT_TRUE(result.has_value()) << "expected rejection " << reason_code(*GetParam().expected);
    EXPECT_EQ(reason_code(result->reason), reason_code(*GetParam().expected)) << result->detail;
    EXPECT_FALSE(result->detail.empty());
  } else {
    EXPECT_FALSE(result.has_value()) << result->detail;
  }
}

const std::string kOverlong = "\xC0\xAF";         // overlong '/'
const std::string kOverlong3 = "\xE0\x80\xAF";    // overlong '/' in 3 bytes
const std::string kSurrogate = "\xED\xA0\x80";    // U+D800
const std::string kTooHigh = "\xF4\x90\x80\x80";  // U+110000
const std::string kTruncated = "caf\xC3";         // half of 'é'

INSTANTIATE_TEST_SUITE_P(
    Events, ValidationTable,
    ::testing::Values(
        Case{"good", [](auto&) {}, std::nullopt},
        Case{"good_unicode", [](auto& e) { e.set_text("Заказ не приходит 🙁 — où est-il?"); },
             std::nullopt},
        Case{"good_no_timestamp", [](auto& e) { e.clear_occurred_at(); }, std::nullopt},
        Case{"good_product_charset", [](auto& e) { e.set_product_id("Acme_app:v2.1-beta"); },
             std::nullopt},
        Case{"good_attributes", [](auto& e) { (*e.mutable_attributes())["plan"] = "pro"; },
             std::nullopt},
        Case{"missing_event_id", [](auto& e) { e.clear_event_id(); },
             RejectReason::kMissingEventId},
        Case{"event_id_too_long", [](auto& e) { e.set_event_id(std::string(129, 'x')); },
             RejectReason::kBadEventId},
        Case{"event_id_control", [](auto& e) { e.set_event_id("e\n1"); },
             RejectReason::kBadEventId},
        Case{"missing_product", [](auto& e) { e.clear_product_id(); },
             RejectReason::kMissingProductId},
        Case{"product_space", [](auto& e) { e.set_product_id("mobile app"); },
             RejectReason::kBadProductId},
        Case{"product_slash", [](auto& e) { e.set_product_id("a/b"); },
             RejectReason::kBadProductId},
        Case{"product_unicode", [](auto& e) { e.set_product_id("appé"); },
             RejectReason::kBadProductId},
        Case{"product_too_long", [](auto& e) { e.set_product_id(std::string(200, 'p')); },
             RejectReason::kBadProductId},
        Case{"missing_text", [](auto& e) { e.clear_text(); }, RejectReason::kMissingText},
        Case{"whitespace_text", [](auto& e) { e.set_text(" \t\n\u00a0\u3000 "); },
             RejectReason::kMissingText},
        Case{"text_too_long", [](auto& e) { e.set_text(std::string(16 * 1024 + 1, 'a')); },
             RejectReason::kTextTooLong},
        Case{"text_at_limit", [](auto& e) { e.set_text(std::string(16 * 1024, 'a')); },
             std::nullopt},
        Case{"overlong_utf8", [](auto& e) { e.set_text("a" + kOverlong); },
             RejectReason::kInvalidUtf8},
        Case{"overlong3_utf8", [](auto& e) { e.set_text("a" + kOverlong3); },
             RejectReason::kInvalidUtf8},
        Case{"surrogate_utf8", [](auto& e) { e.set_text("a" + kSurrogate); },
             RejectReason::kInvalidUtf8},
        Case{"above_max_utf8", [](auto& e) { e.set_text(kTooHigh); },
             RejectReason::kInvalidUtf8},
        Case{"truncated_utf8", [](auto& e) { e.set_text(kTruncated); },
             RejectReason::kInvalidUtf8},
        Case{"bad_utf8_in_account", [](auto& e) { e.set_account_id(kSurrogate); },
             RejectReason::kInvalidUtf8},
        Case{"bad_utf8_in_attribute",
             [](auto& e) { (*e.mutable_attributes())["k"] = "\xFF"; },
             RejectReason::kInvalidUtf8},
        Case{"too_old", [](auto& e) { e.mutable_occurred_at()->set_seconds(100); },
             RejectReason::kBadTimestamp},
        Case{"future",
             [](auto& e) {
               e.mutable_occurred_at()->set_seconds(
                   std::chrono::duration_cast<std::chrono::seconds>(
                       (kNow + 48h).time_since_epoch())
                       .count());
             },
             RejectReason::kBadTimestamp},
        Case{"bad_nanos", [](auto& e) { e.mutable_occurred_at()->set_nanos(-1); },
             RejectReason::kBadTimestamp},
        Case{"negative_arr", [](auto& e) { e.set_account_arr_cents(-5); },
             RejectReason::kBadField},
        Case{"unknown_source", [](auto& e) { e.set_source(static_cast<v1::Source>(42)); },
             RejectReason::kBadField},
        Case{"too_many_attributes",
             [](auto& e) {
               for (int i = 0; i < 65; ++i) (*e.mutable_attributes())[std::to_string(i)] = "v";
             },
             RejectReason::kBadField},
        Case{"oversize_attribute",
             [](auto& e) { (*e.mutable_attributes())["k"] = std::string(2000, 'v'); },
             RejectReason::kBadField}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Validate, EveryReasonHasADistinctCode) {
  std::set<std::string_view> codes;
  for (int r = 0; r <= static_cast<int>(RejectReason::kBadField); ++r) {
    codes.insert(reason_code(static_cast<RejectReason>(r)));
  }
  EXPECT_EQ(codes.size(), static_cast<std::size_t>(RejectReason::kBadField) + 1);
  EXPECT_EQ(reason_code(RejectReason::kMissingEventId), "missing_event_id");
}

TEST(Validate, FillsSourceFromTopicAndTimestampFromNow) {
  auto e = good_event();
  e.clear_occurred_at();
  ASSERT_FALSE(validate_and_normalize(e, source_for_topic("feedback.sales"), {}, kNow));
  EXPECT_EQ(e.source(), v1::SOURCE_SALES);
  EXPECT_EQ(e.occurred_at().seconds(),
            std::chrono::duration_cast<std::chrono::seconds>(kNow.time_since_epoch()).count());

  auto explicit_source = good_event();
  explicit_source.set_source(v1::SOURCE_CUSTOMER);
  ASSERT_FALSE(validate_and_normalize(explicit_source, v1::SOURCE_SALES, {}, kNow));
  EXPECT_EQ(explicit_source.source(), v1::SOURCE_CUSTOMER);
}

TEST(Validate, SourceForTopic) {
  EXPECT_EQ(source_for_topic("feedback.support"), v1::SOURCE_SUPPORT);
  EXPECT_EQ(source_for_topic("feedback.sales"), v1::SOURCE_SALES);
  EXPECT_EQ(source_for_topic("feedback.customer"), v1::SOURCE_CUSTOMER);
  EXPECT_EQ(source_for_topic("other"), v1::SOURCE_UNSPECIFIED);
}

TEST(Validate, RejectedEventIsLeftUntouched) {
  auto e = good_event();
  e.set_text("  mail me at a@b.com  ");
  e.set_product_id("bad id");
  const auto before = e.SerializeAsString();
  ASSERT_TRUE(validate_and_normalize(e, v1::SOURCE_SUPPORT, {}, kNow));
  EXPECT_EQ(e.SerializeAsString(), before);
}

struct TextCase {
  const char* in;
  const char* out;
};

class NormalizeText : public ::testing::TestWithParam<TextCase> {};

TEST_P(NormalizeText, Scrubs) { EXPECT_EQ(normalize_text(GetParam().in), GetParam().out); }

INSTANTIATE_TEST_SUITE_P(
    Texts, NormalizeText,
    ::testing::Values(
        TextCase{"  hello \t\n  world  ", "hello world"},
        TextCase{"a\u00a0\u2003b\u3000c", "a b c"},
        TextCase{"tab\x01\x7f"
                 "bed",
                 "tabbed"},
        TextCase{"zero\u200bwidth", "zerowidth"},
        TextCase{"end.\u200b\u00a0Next\t \x7f token~", "end. Next token~"},
        TextCase{"write to john.doe+x@example.co.uk please", "write to <email> please"},
        TextCase{"mail: a@b.io.", "mail: <email>."},
        TextCase{"not an email: @home or user@localhost", "not an email: @home or user@localhost"},
        TextCase{"call +1 (555) 123-4567 now", "call <phone> now"},
        TextCase{"call 555-123-4567", "call <phone>"},
        TextCase{"ring 030 1234567.", "ring <phone>."},
        TextCase{"card 4111 1111 1111 1111 declined", "card <number> declined"},
        TextCase{"card 4111111111111111", "card <number>"},
        TextCase{"error 404 on page 3", "error 404 on page 3"},
        TextCase{"since 2026-10-01 on v1.2.3 at 10.0.0.1",
                 "since 2026-10-01 on v1.2.3 at 10.0.0.1"},
        TextCase{"order ABC1234567 failed", "order ABC1234567 failed"},
        TextCase{"Ünïcödé stays", "Ünïcödé stays"},
        // Texts that are already clean ASCII, and the ones just outside that.
        TextCase{"", ""},
        TextCase{"plain words stay as they are.", "plain words stay as they are."},
        TextCase{" leading", "leading"},
        TextCase{"trailing ", "trailing"},
        TextCase{"double  space", "double space"},
        TextCase{"ends in DEL\x7f", "ends in DEL"},
        TextCase{"clean but call 5551234567", "clean but call <phone>"},
        TextCase{"clean but x@y.com", "clean but <email>"},
        TextCase{"  dirty and a@b.io  ", "dirty and <email>"}),
    [](const auto& param_info) { return "case" + std::to_string(param_info.index); });

TEST(ParseJson, GoodLine) {
  v1::FeedbackEvent e;
  ASSERT_FALSE(parse_json_event(
      R"({"eventId":"e-1","source":"SOURCE_SUPPORT","productId":"mobile-app","text":"crash","occurredAt":"2026-10-01T12:00:00Z","accountId":"acct-9","accountArrCents":"1200","attributes":{"plan":"pro"}})",
      &e));
  EXPECT_EQ(e.event_id(), "e-1");
  EXPECT_EQ(e.source(), v1::SOURCE_SUPPORT);
  EXPECT_EQ(e.account_arr_cents(), 1200);
  EXPECT_EQ(e.attributes().at("plan"), "pro");
  EXPECT_EQ(TimeUtil::ToString(e.occurred_at()), "2026-10-01T12:00:00Z");
}

TEST(ParseJson, Rejections) {
  v1::FeedbackEvent e;
  auto r = parse_json_event(R"({"eventId":"e-1","bogus":1})", &e);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kUndecodable);
  EXPECT_TRUE(parse_json_event("not json", &e));
  EXPECT_TRUE(parse_json_event(R"({"eventId":"e-1",)", &e));
  EXPECT_TRUE(parse_json_event(R"({"source":"SOURCE_NOPE"})", &e));
  EXPECT_TRUE(parse_json_event(R"({"occurredAt":"yesterday"})", &e));
  r = parse_json_event("{\"text\":\"\xED\xA0\x80\"}", &e);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kInvalidUtf8);
}

// The hand-written fast path must agree with protobuf's JSON parser, which it falls back to,
// on acceptance and on the message: here for the ARR, bare and quoted (proto3 JSON's int64 form).
TEST(ParseJson, ArrAgreesWithProtobuf) {
  for (const std::string arr :
       {"1200", "\"1200\"", "0", "\"0\"", "-5", "\"-5\"", "\"-0\"", "\"007\"", "\"1e3\"", "\"1.0\"",
        "\" 12\"", "\"12 \"", "\"\"", "\"12", "\"999999999999999999\"", "\"9223372036854775807\"",
        "\"9223372036854775808\"", "\"+3\"", "\"0x10\""}) {
    const std::string line =
        R"({"eventId":"e-1","productId":"p","text":"crash","accountArrCents":)" + arr + "}";
    v1::FeedbackEvent fast;
    const bool fast_ok = !parse_json_event(line, &fast);
    v1::FeedbackEvent reference;
    const bool reference_ok = google::protobuf::util::JsonStringToMessage(line, &reference).ok();
    EXPECT_EQ(fast_ok, reference_ok) << arr;
    if (fast_ok && reference_ok) {
      EXPECT_EQ(fast.SerializeAsString(), reference.SerializeAsString()) << arr;
    }
  }
  v1::FeedbackEvent e;
  ASSERT_FALSE(parse_json_event(R"({"eventId":"e-1","accountArrCents":"480000"})", &e));
  EXPECT_EQ(e.account_arr_cents(), 480000);
}

TEST(ParseWire, RoundTripAndGarbage) {
  const auto original = good_event();
  v1::FeedbackEvent e;
  ASSERT_FALSE(parse_wire_event(original.SerializeAsString(), &e));
  EXPECT_EQ(e.event_id(), "e-1");
  EXPECT_FALSE(parse_wire_event("", &e));  // empty bytes are an empty event; validation rejects it

  auto r = parse_wire_event("\xFF\xFF\xFF garbage", &e);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kUndecodable);

  // Field 4 (text), length 3: an encoded surrogate (U+D800).
  const std::string bad_text("\x22\x03\xED\xA0\x80", 5);
  r = parse_wire_event(bad_text, &e);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->reason, RejectReason::kInvalidUtf8);
  EXPECT_NE(r->detail.find("text"), std::string::npos);
}

}  // namespace
}  // namespace painpoint::ingest

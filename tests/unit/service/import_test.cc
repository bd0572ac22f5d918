// `painpoint import`'s pure parts: the RFC 4180 CSV reader, the map file, and rows to events.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "import_command.h"
#include "import_csv.h"

namespace painpoint::service {
namespace {

std::vector<std::vector<std::string>> read_all(const std::string& text,
                                               std::string* error = nullptr) {
  std::istringstream in(text);
  CsvReader reader(in);
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  while (reader.next(&record)) records.push_back(record);
  if (error != nullptr) *error = reader.error();
  return records;
}

using Records = std::vector<std::vector<std::string>>;

TEST(CsvReader, Rfc4180QuotingLineBreaksAndLineEnds) {
  EXPECT_EQ(read_all("a,b,c\n1,2,3\n"), (Records{{"a", "b", "c"}, {"1", "2", "3"}}));
  EXPECT_EQ(read_all("a,b\r\n1,2\r\n"), (Records{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(read_all("a,b\n1,2"), (Records{{"a", "b"}, {"1", "2"}}));  // no final line break
  EXPECT_EQ(read_all("\"x, y\",\"say \"\"hi\"\"\",\"\"\n"), (Records{{"x, y", "say \"hi\"", ""}}));
  EXPECT_EQ(read_all("\"line one\r\nline two\",z\n"), (Records{{"line one\r\nline two", "z"}}));
  EXPECT_EQ(read_all(",,\n"), (Records{{"", "", ""}}));
  EXPECT_EQ(read_all("a\n\nb\n"), (Records{{"a"}, {""}, {"b"}}));
}

TEST(CsvReader, Utf8PassesThroughAndTheByteOrderMarkIsDropped) {
  EXPECT_EQ(read_all("\xEF\xBB\xBFid,text\n1,\"Ümlaut — 日本語 😀\"\n"),
            (Records{{"id", "text"}, {"1", "Ümlaut — 日本語 😀"}}));
}

TEST(CsvReader, MalformedRecordsStopWithTheirLine) {
  std::string error;
  EXPECT_EQ(read_all("a,b\n\"open,2\n3,4\n", &error), (Records{{"a", "b"}}));
  EXPECT_EQ(error, "line 2: unterminated quoted field");
  EXPECT_EQ(read_all("a\n\"x\"y,1\n", &error), (Records{{"a"}}));
  EXPECT_EQ(error, "line 2: text after a closing quote");
}

ImportMap load_map(const std::string& text) {
  std::istringstream in(text);
  auto loaded = parse_import_map(in);
  EXPECT_TRUE(loaded.map) << loaded.error;
  return loaded.map.value_or(ImportMap{});
}

TEST(ImportMap, ParsesFieldsAndRefusesUnknownKeys) {
  const ImportMap map = load_map(
      "# a Zendesk export\nid = Ticket ID\ntext = Description\nproduct=Brand\n"
      "arr = ARR cents\ntime = Created\ndefault_product = web-app\nid_prefix = zd-\n"
      "source = sales\n");
  EXPECT_EQ(map.fields.at("id"), "Ticket ID");
  EXPECT_EQ(map.fields.at("product"), "Brand");
  EXPECT_EQ(map.default_product, "web-app");
  EXPECT_EQ(map.id_prefix, "zd-");
  EXPECT_EQ(map.source, v1::SOURCE_SALES);
  for (const char* bad : {"id = a\n", "id = a\ntext = b\nsubject = c\n",
                          "id = a\ntext = b\nsource = email\n", "id = a\ntext\n"}) {
    std::istringstream in(bad);
    EXPECT_FALSE(parse_import_map(in).map) << bad;
  }
}

TEST(ImportMap, CsvRowsBecomeEvents) {
  const ImportMap map = load_map(
      "id = Ticket ID\ntext = Description\nproduct = Brand\naccount = Org\narr = ARR\n"
      "time = Created\nurl = Link\ndefault_product = web-app\nid_prefix = zd-\n");
  std::string error;
  const auto columns = csv_columns(
      map, {"Link", "Ticket ID", "Org", "Description", "Brand", "ARR", "Created"}, &error);
  ASSERT_TRUE(columns) << error;
  auto event = map_csv_row(
      map, *columns,
      {"https://z/1", "4711", "acct-9", "Export fails", "", "125000", "2026-11-20T09:30:00Z"},
      &error);
  ASSERT_TRUE(event) << error;
  EXPECT_EQ(event->event_id(), "zd-4711");
  EXPECT_EQ(event->text(), "Export fails");
  EXPECT_EQ(event->product_id(), "web-app");  // empty Brand: the default
  EXPECT_EQ(event->account_id(), "acct-9");
  EXPECT_EQ(event->account_arr_cents(), 125000);
  EXPECT_EQ(event->occurred_at().seconds(), 1795167000);
  EXPECT_EQ(event->external_url(), "https://z/1");
  EXPECT_EQ(event->source(), v1::SOURCE_SUPPORT);

  EXPECT_FALSE(map_csv_row(map, *columns, {"l", "1", "a", "t", "p", "12.50", ""}, &error));
  EXPECT_NE(error.find("whole number of cents"), std::string::npos) << error;
  EXPECT_FALSE(map_csv_row(map, *columns, {"l", "1", "a", "t", "p", "1", "last tuesday"}, &error));
  EXPECT_NE(error.find("RFC 3339"), std::string::npos) << error;
  EXPECT_FALSE(map_csv_row(map, *columns, {"l", "1"}, &error));
  EXPECT_FALSE(csv_columns(map, {"Ticket ID", "Description"}, &error));
  EXPECT_NE(error.find("the header has no column 'Org' (for account)"), std::string::npos) << error;
}

TEST(ImportMap, JsonRowsFollowPointers) {
  const ImportMap map = load_map(
      "id = /id\ntext = /comment/body\nproduct = /brand\ntime = /at\ndefault_product = p0\n");
  std::string error;
  auto event =
      map_json_row(map, R"({"id":17,"comment":{"body":"slow search"},"at":1795167000})", &error);
  ASSERT_TRUE(event) << error;
  EXPECT_EQ(event->event_id(), "17");
  EXPECT_EQ(event->text(), "slow search");
  EXPECT_EQ(event->product_id(), "p0");
  EXPECT_EQ(event->occurred_at().seconds(), 1795167000);
  EXPECT_FALSE(map_json_row(map, "{oops", &error));
  EXPECT_NE(error.find("not JSON"), std::string::npos);
}

}  // namespace
}  // namespace painpoint::service

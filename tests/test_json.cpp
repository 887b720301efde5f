// JsonWriter and json_number (src/formats/json.cpp): what they write reads back through the strict
// reader, value for value, in the order written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sta/error.hpp"
#include "sta/json.hpp"

namespace sta {
namespace {

TEST(JsonNumber, ReadsBackExactlyAndIsShortWhereItCanBe) {
  // Python's repr (shortest round trip) of the same doubles.
  EXPECT_EQ(json_number(0.1), "0.1");
  EXPECT_EQ(json_number(2.5), "2.5");
  EXPECT_EQ(json_number(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(json_number(1e-05), "1e-05");
  std::mt19937_64 rng(11);
  int checked = 0;
  while (checked < 20000) {
    const uint64_t bits = rng();
    double x;
    std::memcpy(&x, &bits, sizeof x);
    if (!std::isfinite(x)) continue;
    const std::string t = json_number(x);
    ASSERT_EQ(std::strtod(t.c_str(), nullptr), x) << t << " (bits " << bits << ")";
    ASSERT_LE(t.size(), 24u) << t;
    ++checked;
  }
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()})
    EXPECT_THROW(json_number(bad), Error);
}

TEST(JsonWriter, DocumentReadsBackInOrderWithEscapes) {
  const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 end";
  JsonWriter j;
  j.begin_object(/*lines=*/true);
  j.field("name", tricky).field("flag", true).field("off", false);
  j.field("big", std::numeric_limits<uint64_t>::max()).field("neg", std::numeric_limits<int64_t>::min());
  j.field("x", 0.1).field("list", std::vector<int64_t>{3, -1, 0}).field("words", std::vector<std::string>{"a", "b\"c"});
  j.key("nested").begin_object().field("empty", std::vector<int64_t>{}).key("nothing").null().end_object();
  j.key("rows").begin_array(/*lines=*/true).value(1).begin_array().value(2.5).end_array().end_array();
  const std::string text = j.end_object().str();

  const JsonValue v = parse_json(text, "writer output");
  EXPECT_EQ(v.at("name", "t").as_string("t"), tricky);
  EXPECT_TRUE(v.at("flag", "t").boolean);
  EXPECT_FALSE(v.at("off", "t").boolean);
  EXPECT_EQ(v.at("big", "t").text, "18446744073709551615");  // exact beyond 2^53
  EXPECT_EQ(v.at("neg", "t").text, "-9223372036854775808");
  EXPECT_EQ(v.at("x", "t").number, 0.1);
  ASSERT_EQ(v.at("list", "t").array.size(), 3u);
  EXPECT_EQ(v.at("list", "t").array[1].as_int("t"), -1);
  EXPECT_EQ(v.at("words", "t").array[1].as_string("t"), "b\"c");
  EXPECT_TRUE(v.at("nested", "t").at("empty", "t").array.empty());
  EXPECT_EQ(v.at("nested", "t").at("nothing", "t").type, JsonValue::Type::kNull);
  EXPECT_EQ(v.at("rows", "t").array[1].array[0].number, 2.5);

  // Layout: members of a `lines` container one per line, indented by depth; others inline;
  // members in the order written.
  EXPECT_EQ(text.substr(0, 10), "{\n  \"name\"");
  EXPECT_NE(text.find("\"nested\": {\"empty\": [], \"nothing\": null}"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rows\": [\n    1,\n    [2.5]\n  ]"), std::string::npos) << text;
  EXPECT_LT(text.find("\"flag\""), text.find("\"off\""));
  EXPECT_EQ(text.back(), '\n');
}

TEST(JsonWriter, EmptyContainersAndScalarsAreWholeDocuments) {
  EXPECT_EQ(JsonWriter().begin_object(true).end_object().str(), "{}\n");
  EXPECT_EQ(JsonWriter().begin_array().end_array().str(), "[]\n");
  EXPECT_EQ(JsonWriter().value("x").str(), "\"x\"\n");
}

}  // namespace
}  // namespace sta

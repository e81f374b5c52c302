#include "server/json_writer.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

using json = nlohmann::json;

std::string literal(std::string_view s) {
  std::string out;
  append_json_string(&out, s);
  return out;
}

TEST(JsonWriter, PlacesCommasInNestedContainers) {
  std::string out;
  JsonWriter w(&out);
  w.begin_object();
  w.key("a").value(int64_t{1});
  w.key("b").begin_array().value("x").null().value(true).begin_object().end_object().end_array();
  w.key("c").begin_object().key("d").value(uint64_t{18446744073709551615u}).end_object();
  w.key("e").begin_array().end_array();
  w.end_object();
  EXPECT_EQ(out, R"({"a":1,"b":["x",null,true,{}],"c":{"d":18446744073709551615},"e":[]})");
  EXPECT_TRUE(json::accept(out));
}

TEST(JsonWriter, EscapesWhatJsonRequires) {
  EXPECT_EQ(literal("plain"), R"("plain")");
  EXPECT_EQ(literal("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(literal("l1\nl2\tx\r\b\f"), R"("l1\nl2\tx\r\b\f")");
  EXPECT_EQ(literal(std::string("nul\0x\x1f", 6)), R"("nul\u0000x\u001f")");
  EXPECT_EQ(literal("/"), R"("/")");  // no need to escape the solidus
  // Every escaped string reads back as the original.
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(json::parse(literal(all)).get<std::string>(), all);
}

TEST(JsonWriter, KeepsValidUtf8AndReplacesInvalidBytes) {
  const std::string valid = "S\xC3\xA3o Paulo \xE2\x82\xAC \xF0\x9F\x8C\x8D";  // ã € 🌍
  EXPECT_EQ(literal(valid), "\"" + valid + "\"");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(literal("a\xFF"
                    "b"),
            "\"a" + fffd + "b\"");                                       // never valid
  EXPECT_EQ(literal("\x80"), "\"" + fffd + "\"");                        // stray continuation
  EXPECT_EQ(literal("\xC0\xAF"), "\"" + fffd + fffd + "\"");             // overlong '/'
  EXPECT_EQ(literal("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // surrogate
  EXPECT_EQ(literal("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(literal("end\xE2\x82"), "\"end" + fffd + fffd + "\"");                  // truncated
  // Whatever the bytes, the result parses.
  std::string noise;
  for (int c = 0; c < 256; ++c) noise.push_back(static_cast<char>(c));
  EXPECT_TRUE(json::accept(literal(noise + noise)));
}

TEST(JsonWriter, NumbersAndNonFiniteDoubles) {
  std::string out;
  JsonWriter w(&out);
  w.begin_array().value(-42).value(2.5).value(0.1).value(std::nan("")).value(1.0 / 0.0).end_array();
  EXPECT_EQ(out, "[-42,2.5,0.1,null,null]");
}

TEST(JsonWriter, TimestampsAreRfc3339UtcMillisecondsOrNull) {
  std::string out;
  JsonWriter w(&out);
  w.begin_array().timestamp(1700000000123).timestamp(86400000).timestamp(0).end_array();
  EXPECT_EQ(out, R"(["2023-11-14T22:13:20.123Z","1970-01-02T00:00:00.000Z",null])");
}

TEST(JsonWriter, EmbedsJsonSubtrees) {
  std::string out;
  JsonWriter w(&out);
  w.begin_object().key("action").value(json{{"k", {1, 2}}}).key("n").value(1).end_object();
  EXPECT_EQ(json::parse(out), (json{{"action", {{"k", {1, 2}}}}, {"n", 1}}));
}

}  // namespace
}  // namespace kiln::server

// parse_json_strict on the inputs a hostile tenant sends: nesting at and
// past the limit (and 100,000 deep, which used to overflow the server's
// stack), repeated keys at any depth, numbers beyond a double or an int64,
// text over the size limit; and that ordinary documents read as they did.
#include "common/json_strict.h"

#include <string>

#include <gtest/gtest.h>

namespace kiln {
namespace {

using json = nlohmann::json;

JsonLimits limits() { return JsonLimits{1 << 20, kMaxJsonDepth}; }

// `depth` arrays nested: "[[...]]".
std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// `depth` objects nested: {"a":{"a":...{}}}.
std::string nested_objects(size_t depth) {
  std::string text;
  for (size_t i = 1; i < depth; ++i) text += "{\"a\":";
  text += "{}";
  text += std::string(depth - 1, '}');
  return text;
}

JsonError refused(const std::string& text, const JsonLimits& l = limits()) {
  JsonError error;
  auto r = parse_json_strict(text, l, &error);
  EXPECT_FALSE(r.is_ok()) << text.substr(0, 80);
  if (!r.is_ok()) {
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), error.message);
  }
  return error;
}

TEST(JsonStrictTest, ReadsOrdinaryDocumentsAsNlohmannDoes) {
  const std::string text =
      R"({"name": "n", "action": {"ingest": {"layer": "l", "sources": [{"uri": "/a.tif",
      "bands": [1, 2]}], "output": {"error_threshold": 0.125, "nodata": null,
      "pyramid": true}}}, "big": 9223372036854775807, "small": -9223372036854775808,
      "float": 1e308, "tiny": 1e-400, "text": "caf\u00e9"})";
  auto r = parse_json_strict(text, limits());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(*r, json::parse(text));
  EXPECT_EQ((*r)["big"].get<int64_t>(), INT64_MAX);
  EXPECT_EQ((*r)["small"].get<int64_t>(), INT64_MIN);
  EXPECT_TRUE((*r)["big"].is_number_integer());
  for (const char* scalar : {"3", "\"s\"", "null", "true", "-0.5"}) {
    auto s = parse_json_strict(scalar, limits());
    ASSERT_TRUE(s.is_ok()) << scalar;
    EXPECT_EQ(*s, json::parse(scalar));
  }
}

TEST(JsonStrictTest, DepthSixtyFourIsReadSixtyFiveIsRefused) {
  for (const std::string& ok : {nested_arrays(64), nested_objects(64)}) {
    auto r = parse_json_strict(ok, limits());
    EXPECT_TRUE(r.is_ok()) << ok << ": " << r.status().message();
  }
  JsonError a = refused(nested_arrays(65));
  EXPECT_EQ(a.kind, JsonErrorKind::kTooDeep);
  EXPECT_NE(a.message.find("nested deeper than 64 levels"), std::string::npos) << a.message;
  EXPECT_EQ(a.path,
            "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
            "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
            "[0][0][0][0][0][0][0][0][0][0][0][0][0][0]");
  JsonError o = refused(nested_objects(65));
  EXPECT_EQ(o.kind, JsonErrorKind::kTooDeep);
  EXPECT_EQ(o.path.size(), std::string("a").size() * 64 + 63);  // a.a. ... .a, 64 keys
}

TEST(JsonStrictTest, HundredThousandLevelsAreRefusedWithoutRecursion) {
  // The body of issue 14's crash: action.ingest nested 100,000 deep.
  std::string body = R"({"action": {"ingest": )" + nested_arrays(100000) + "}}";
  JsonError e = refused(body);
  EXPECT_EQ(e.kind, JsonErrorKind::kTooDeep);
  EXPECT_EQ(e.path.rfind("action.ingest[0][0]", 0), 0u) << e.path;
  // Unterminated, too: the limit strikes before the end is looked for.
  EXPECT_EQ(refused(std::string(100000, '{')).kind, JsonErrorKind::kSyntax);
  EXPECT_EQ(refused(std::string(100000, '[')).kind, JsonErrorKind::kTooDeep);
}

TEST(JsonStrictTest, DepthLimitIsTheCallers) {
  JsonLimits shallow = limits();
  shallow.max_depth = 2;
  EXPECT_TRUE(parse_json_strict("[[1]]", shallow).is_ok());
  EXPECT_EQ(refused("[[[1]]]", shallow).kind, JsonErrorKind::kTooDeep);
}

TEST(JsonStrictTest, DuplicateKeysAreRefusedAtAnyDepth) {
  struct Case {
    std::string text, path, key;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"layer": "a", "layer": "b"})", "", "layer"},
           {R"({"action": {"ingest": {"sources": [{"uri": "/a", "bands": [1], "uri": "/b"}]}}})",
            "action.ingest.sources[0]", "uri"},
           {R"([{}, {"x": 1}, [{"k": {"a": 1, "b": 2, "a": 3}}]])", "[2][0].k", "a"},
           {R"({"Steps": [{"Name": "a"}, {"Name": "b", "Name": "c"}]})", "Steps[1]", "Name"},
       }) {
    JsonError e = refused(c.text);
    EXPECT_EQ(e.kind, JsonErrorKind::kDuplicateKey) << c.text;
    EXPECT_EQ(e.path, c.path) << c.text;
    EXPECT_EQ(e.key, c.key) << c.text;
    EXPECT_NE(e.message.find("duplicate key \"" + c.key + "\""), std::string::npos) << e.message;
    if (!c.path.empty()) {
      EXPECT_EQ(e.message.rfind(c.path + ": ", 0), 0u) << e.message;
    }
  }
  // The same key in sibling objects, or as a value, is not a duplicate.
  auto r = parse_json_strict(R"([{"a": 1}, {"a": 2}, {"b": {"a": 3}, "a": "a"}])", limits());
  EXPECT_TRUE(r.is_ok()) << r.status().message();
}

TEST(JsonStrictTest, NumbersBeyondADoubleOrAnInt64NameTheirField) {
  struct Case {
    std::string text, path, shown;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"concurrency": 1e400})", "concurrency", "number 1e400"},
           {R"({"concurrency": -1e400})", "concurrency", "number -1e400"},
           {R"({"StepConcurrencyLevel": 9223372036854775808})", "StepConcurrencyLevel",
            "integer 9223372036854775808"},
           {R"({"a": [1, {"b": 18446744073709551616}]})", "a[1].b", "integer 18446744073709551616"},
           {R"({"n": -9223372036854775809})", "n", "integer -9223372036854775809"},
           {R"([1e999])", "[0]", "number 1e999"},
       }) {
    JsonError e = refused(c.text);
    EXPECT_EQ(e.kind, JsonErrorKind::kNumberOutOfRange) << c.text;
    EXPECT_EQ(e.path, c.path) << c.text;
    EXPECT_EQ(e.message.rfind(c.path + ": " + c.shown + " is out of range", 0), 0u) << e.message;
  }
}

TEST(JsonStrictTest, SizeIsCheckedBeforeParsing) {
  JsonLimits small = limits();
  small.max_bytes = 10;
  EXPECT_TRUE(parse_json_strict("[1,2,3,45]", small).is_ok());
  // Eleven bytes of text that is not even JSON: the size is what is refused.
  JsonError e = refused("[[[[[[[[[[[", small);
  EXPECT_EQ(e.kind, JsonErrorKind::kTooLarge);
  EXPECT_EQ(e.message, "JSON text of 11 bytes is over the limit of 10 bytes");
}

TEST(JsonStrictTest, SyntaxErrorsGiveLineColumnAndPath) {
  JsonError e = refused("{\"a\": [1,\n  2,,]}");
  EXPECT_EQ(e.kind, JsonErrorKind::kSyntax);
  EXPECT_EQ(e.message.rfind("invalid JSON at line 2, column 5: ", 0), 0u) << e.message;
  EXPECT_EQ(e.path, "a[2]");
  EXPECT_EQ(refused("").message.rfind("invalid JSON at line 1, column 1: ", 0), 0u);
  EXPECT_EQ(refused("{} {}").kind, JsonErrorKind::kSyntax);
  EXPECT_EQ(refused("\"\xff\"").kind, JsonErrorKind::kSyntax);  // not UTF-8
}

TEST(JsonStrictTest, LongKeysAreCutInMessages) {
  const std::string key(100000, 'k');
  JsonError e = refused("{\"" + key + "\": 1, \"" + key + "\": 2}");
  EXPECT_EQ(e.key, key);
  EXPECT_LT(e.message.size(), 200u);
}

}  // namespace
}  // namespace kiln

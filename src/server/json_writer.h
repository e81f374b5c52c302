// JsonWriter: appends JSON text to a string without building a document
// tree. The API's hot replies (a page of up to 1,000 steps) are written
// with it; building an nlohmann::json per step cost more in allocation than
// the store read behind it.
//
//   std::string out;
//   JsonWriter w(&out);
//   w.begin_object().key("id").value(id).key("version").null().end_object();
//
// Commas are placed by the writer. Strings are escaped as RFC 8259 asks, and
// bytes that are not valid UTF-8 are written as U+FFFD (as nlohmann's
// error_handler_t::replace does), so the output is always valid JSON.
// Nesting mistakes (a value without a key inside an object) are the
// caller's bug and are not checked.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::server {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);  // null when not finite
  JsonWriter& value(bool v);
  JsonWriter& value(const nlohmann::json& v);  // a subtree, dumped in place
  JsonWriter& null();
  // RFC 3339 UTC with milliseconds ("2026-11-24T08:41:25.123Z") for a
  // positive epoch-millisecond time; null for 0 or less ("not yet").
  JsonWriter& timestamp(int64_t epoch_ms);

 private:
  void separate();  // the comma before a member or element, when due

  std::string* out_;
  std::vector<bool> has_items_;  // per open container: written anything yet?
  bool after_key_ = false;
};

// Appends `s` to `out` as a JSON string literal, quotes included.
void append_json_string(std::string* out, std::string_view s);

}  // namespace kiln::server

// parse_json_strict: a SAX handler that builds the DOM itself and refuses
// as it goes, so nothing deeper than the limit, no repeated key and no
// number out of range is ever stored.
#include "common/json_strict.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

namespace kiln {
namespace {

using json = nlohmann::json;

// Keys are shown in messages up to this many bytes: a hostile key of a
// megabyte must not come back in every error.
constexpr size_t kMaxKeyShown = 64;

std::string shown_key(const std::string& key) {
  if (key.size() <= kMaxKeyShown) return key;
  return key.substr(0, kMaxKeyShown) + "...";
}

// "line L, column C" of the byte offset nlohmann reports (1-based, the
// character at which parsing stopped).
std::string line_and_column(std::string_view text, size_t byte) {
  const size_t at = std::min(byte > 0 ? byte - 1 : 0, text.size());
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(at - line_start + 1);
}

// nlohmann's message without its "[json.exception.parse_error.101] parse
// error at line 1, column 2: " prefix (the position is printed our way),
// and without its "; last read: '...'": that quotes the text, and the
// bytes of a file a tenant names are never echoed (docs/security.md).
std::string parse_error_reason(const std::string& what) {
  size_t at = what.find("column ");
  if (at != std::string::npos) at = what.find(": ", at);
  if (at == std::string::npos) at = what.find("] ");
  std::string reason = at == std::string::npos ? what : what.substr(at + 2);
  const size_t quoted = reason.find("; last read: '");
  if (quoted != std::string::npos) {
    const size_t expected = reason.rfind("'; expected ");
    reason =
        reason.substr(0, quoted) +
        (expected != std::string::npos && expected > quoted ? reason.substr(expected + 1) : "");
  }
  return reason;
}

// A number token that is an integer in the text ("-9223372036854775809")
// rather than a fraction or an exponent.
bool integer_text(const std::string& token) {
  return token.find_first_of(".eE") == std::string::npos;
}

class StrictBuilder final : public json::json_sax_t {
 public:
  StrictBuilder(std::string_view text, const JsonLimits& limits) : text_(text), limits_(limits) {}

  json& root() { return root_; }
  bool failed() const { return failed_; }
  const JsonError& error() const { return error_; }

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override {
    // Every integer Kiln reads is an int64 (or narrower); a larger one would
    // come back negative from get<int64_t>().
    if (v > static_cast<number_unsigned_t>(std::numeric_limits<int64_t>::max())) {
      return out_of_range(std::to_string(v));
    }
    return put(static_cast<number_integer_t>(v));
  }
  bool number_float(number_float_t v, const string_t& token) override {
    // nlohmann turns an integer beyond 64 bits into a double; refused as
    // the integer it was written as.
    if (integer_text(token)) return out_of_range(token);
    return put(v);
  }
  bool string(string_t& v) override { return put(std::move(v)); }
  bool binary(binary_t&) override { return put(nullptr); }  // not produced by JSON text

  bool start_object(std::size_t) override { return open(json::object(), false); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      const std::string path = container_path(frames_.size());
      return fail(JsonErrorKind::kDuplicateKey, path, k,
                  (path.empty() ? "" : path + ": ") + "duplicate key \"" + shown_key(k) +
                      "\" (each key may appear once per object)");
    }
    f.key = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array(), true); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t byte, const std::string&,
                   const nlohmann::detail::exception& e) override {
    if (failed_) return false;
    // 406: "number overflow parsing '1e400'" (a double's range).
    if (e.id == 406) {
      const std::string reason = parse_error_reason(e.what());
      const size_t q = reason.find('\'');
      const std::string token =
          q == std::string::npos ? reason : reason.substr(q + 1, reason.size() - q - 2);
      return out_of_range(token);
    }
    JsonError& err = error_;
    failed_ = true;
    err.kind = JsonErrorKind::kSyntax;
    err.byte = byte;
    err.path = frames_.empty() ? "" : child_path();
    err.message =
        "invalid JSON at " + line_and_column(text_, byte) + ": " + parse_error_reason(e.what());
    return false;
  }

 private:
  struct Frame {
    json* container = nullptr;
    bool array = false;
    size_t count = 0;  // arrays: elements so far
    std::string key;   // objects: the key whose value comes next
    std::set<std::string> keys;
  };

  // The path of the container at frames_[depth - 1] (depth 0: the top).
  std::string container_path(size_t depth) const {
    std::string path;
    for (size_t i = 1; i < depth; ++i) append_segment(frames_[i - 1], /*pending=*/false, &path);
    return path;
  }
  // The path of the value that comes next in the innermost container.
  std::string child_path() const {
    std::string path = container_path(frames_.size());
    if (!frames_.empty()) append_segment(frames_.back(), /*pending=*/true, &path);
    return path;
  }
  // The segment naming a child of `parent`: its current key, or its last
  // element's index (pending: the index of the element not yet added).
  static void append_segment(const Frame& parent, bool pending, std::string* path) {
    if (parent.array) {
      const size_t index = pending ? parent.count : parent.count - 1;
      *path += "[" + std::to_string(index) + "]";
    } else {
      if (!path->empty()) *path += '.';
      *path += shown_key(parent.key);
    }
  }

  // Stores `v` as the next value; returns where it now lives.
  json* place(json&& v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = frames_.back();
    if (f.array) {
      f.container->push_back(std::move(v));
      ++f.count;
      return &f.container->back();
    }
    json& slot = (*f.container)[f.key];
    slot = std::move(v);
    return &slot;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& empty, bool array) {
    if (frames_.size() >= limits_.max_depth) {
      const std::string path = child_path();
      return fail(JsonErrorKind::kTooDeep, path, "",
                  (path.empty() ? "" : path + ": ") + "JSON nested deeper than " +
                      std::to_string(limits_.max_depth) + " levels");
    }
    // The parent stops growing while this child is open, so the pointer
    // into it stays valid until close().
    json* at = place(std::move(empty));
    Frame f;
    f.container = at;
    f.array = array;
    frames_.push_back(std::move(f));
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }
  bool out_of_range(const std::string& token) {
    const std::string path = frames_.empty() ? "" : child_path();
    const std::string kind = integer_text(token) ? "integer" : "number";
    const std::string range = integer_text(token) ? "integers must fit in 64 bits, signed"
                                                  : "beyond a 64-bit float's range";
    std::string shown = token.size() > 40 ? token.substr(0, 40) + "..." : token;
    return fail(JsonErrorKind::kNumberOutOfRange, path, "",
                (path.empty() ? "" : path + ": ") + kind + " " + shown + " is out of range (" +
                    range + ")");
  }
  bool fail(JsonErrorKind kind, std::string path, std::string key, std::string message) {
    failed_ = true;
    error_.kind = kind;
    error_.path = std::move(path);
    error_.key = std::move(key);
    error_.message = std::move(message);
    return false;
  }

  std::string_view text_;
  const JsonLimits& limits_;
  json root_;
  std::vector<Frame> frames_;
  bool failed_ = false;
  JsonError error_;
};

}  // namespace

Result<json> parse_json_strict(std::string_view text, const JsonLimits& limits, JsonError* error) {
  JsonError local;
  JsonError& err = error ? *error : local;
  if (text.size() > limits.max_bytes) {
    err = JsonError{};
    err.kind = JsonErrorKind::kTooLarge;
    err.message = "JSON text of " + std::to_string(text.size()) + " bytes is over the limit of " +
                  std::to_string(limits.max_bytes) + " bytes";
    return invalid_argument(err.message);
  }
  StrictBuilder builder(text, limits);
  const bool ok = json::sax_parse(text.begin(), text.end(), &builder);
  if (ok && !builder.failed()) return std::move(builder.root());
  err = builder.error();
  if (!builder.failed()) {  // the parser stopped without telling why: cannot happen
    err.kind = JsonErrorKind::kSyntax;
    err.message = "invalid JSON";
  }
  return invalid_argument(err.message);
}

}  // namespace kiln

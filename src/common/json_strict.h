// The one JSON reader for text a tenant or a worker sends: request bodies of
// every door, inline and file definitions, EMR bodies. Everything is
// refused while parsing, before any DOM exists: text over a size limit
// (checked before the first byte is read), nesting deeper than a depth
// limit, a key repeated in one object, and numbers that do not fit (1e400,
// integers beyond int64). The parse never recurses (nlohmann's SAX parser
// is iterative), so no input can exhaust the stack, and the DOM it builds
// is at most `max_depth` deep, so copying or destroying it cannot either.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace kiln {

// Real documents (request bodies, definitions) nest about six levels; 64
// leaves room for any of them and bounds every reader's recursion.
inline constexpr size_t kMaxJsonDepth = 64;

struct JsonLimits {
  size_t max_bytes = 1 << 20;
  // Containers nested at most this deep; the top-level value is level 1.
  size_t max_depth = kMaxJsonDepth;
};

enum class JsonErrorKind {
  kTooLarge,          // the text is over max_bytes
  kSyntax,            // not JSON (or not UTF-8)
  kTooDeep,           // containers nested deeper than max_depth
  kDuplicateKey,      // a key appears twice in one object
  kNumberOutOfRange,  // 1e400, or an integer beyond int64's range
};

struct JsonError {
  JsonErrorKind kind = JsonErrorKind::kSyntax;
  // Where: "action.ingest.sources[0]"; "" for the top level. For a
  // duplicate key, the object's path (the key is in `key`); otherwise the
  // path of the offending value.
  std::string path;
  std::string key;      // kDuplicateKey: the repeated key
  size_t byte = 0;      // kSyntax: the offset where parsing stopped
  std::string message;  // names the path and key, e.g. "sources[0]: duplicate key \"uri\" ..."
};

// Parses `text` as one JSON value under `limits`. Errors are
// kInvalidArgument with JsonError::message; `error`, when given, receives
// the details (a caller maps kinds to its own error types). Thread-safe.
Result<nlohmann::json> parse_json_strict(std::string_view text, const JsonLimits& limits,
                                         JsonError* error = nullptr);

}  // namespace kiln

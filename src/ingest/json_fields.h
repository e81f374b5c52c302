// Typed reads of parsed JSON values, with errors that name the field path
// ("sources[0].bands[2]: must be an integer, got a number (1.5)"). Internal
// to ingest/: shared by Kiln's definition reader (definition.cc) and the
// Raster Foundry converter (raster_foundry.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace kiln::ingest::json_fields {

// How a type error shows the value it got. Kiln's reader names the kind as
// well ("got a string (\"3\")", "got an array"); the Raster Foundry
// converter shows the JSON text alone ("got \"3\"", "got [1,2,3]"). Both
// wordings are pinned by tests/definitions/bad/errors.tsv.
enum class Got { kKindAndValue, kValueOnly };

// "parent.key", or "key" when `parent` is empty (the document's top level).
std::string member_path(const std::string& parent, std::string_view key);

// "parent[i]".
std::string element_path(const std::string& parent, size_t i);

// kInvalidArgument "<path>: must be <expected>, got <v>", <v> shown as `got`
// says and cut to 40 characters.
Status wrong_type(const std::string& path, std::string_view expected, const nlohmann::json& v,
                  Got got);

// The member `key` of `object`, or nullptr when it is absent, null (null
// means "not set", as if left out) or `object` is not an object. The pointer
// lives as long as `object` is not modified.
const nlohmann::json* member(const nlohmann::json& object, std::string_view key);

// Each read_* stores `v` in *out if it has the named type, else returns
// wrong_type(path, ..., got) and leaves *out unchanged.

// Requires a JSON string.
Status read_string(const nlohmann::json& v, const std::string& path, std::string* out, Got got);

// Requires a JSON integer (1.5 and "3" are refused); values outside int's
// range are kInvalidArgument "<path>: <v> is out of range".
Status read_int(const nlohmann::json& v, const std::string& path, int* out, Got got);

// Requires a JSON number, integer or not. A json built in code may hold an
// infinity or NaN, which is stored as is.
Status read_number(const nlohmann::json& v, const std::string& path, double* out, Got got);

// As read_number, then kInvalidArgument "<path>: must be finite" for an
// infinity or NaN (*out has been set by then).
Status read_finite_number(const nlohmann::json& v, const std::string& path, double* out, Got got);

// Requires true or false ("must be true or false" otherwise).
Status read_bool(const nlohmann::json& v, const std::string& path, bool* out, Got got);

// A number for messages as a user would write it: "0.125", "300" (not
// "300.0"), "inf"/"-inf" for infinities, "null" for NaN (as JSON dumps it).
std::string number_text(double v);

}  // namespace kiln::ingest::json_fields

// Typed readers for TOML configuration tables, shared by kiln.toml's parser
// (server/config.cc) and the elastic tables it shares with `kiln simulate`
// scenarios (elastic/config.cc). Every reader leaves `out` alone when the
// key is absent, and its errors name the key as "<where>.<key>: ...".
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <toml++/toml.h>

#include "common/status.h"

namespace kiln::config {

// Refuses keys a table does not know, so a typo is an error, not a default.
// `where` is the table's path ("" for the document's root).
Status check_keys(const toml::table& t, const std::string& where,
                  const std::set<std::string>& known);

// An integer within [lo, hi].
Status get_int(const toml::table& t, const std::string& where, const char* key, int64_t lo,
               int64_t hi, int64_t* out);
Status get_int(const toml::table& t, const std::string& where, const char* key, int64_t lo,
               int64_t hi, int* out);
// A finite number (integer or float).
Status get_number(const toml::table& t, const std::string& where, const char* key, double* out);
// Seconds (integer or float) within [0, hi], into milliseconds.
Status get_seconds(const toml::table& t, const std::string& where, const char* key, double hi,
                   int64_t* out_ms);
Status get_string(const toml::table& t, const std::string& where, const char* key,
                  std::string* out);
Status get_bool(const toml::table& t, const std::string& where, const char* key, bool* out);

}  // namespace kiln::config

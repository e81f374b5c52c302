#include "config/toml_fields.h"

#include <cmath>

namespace kiln::config {

Status check_keys(const toml::table& t, const std::string& where,
                  const std::set<std::string>& known) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    if (!known.count(key)) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return invalid_argument(where + (where.empty() ? "" : ".") + key +
                              ": unknown setting (known: " + list + ")");
    }
  }
  return Status::ok();
}

Status get_int(const toml::table& t, const std::string& where, const char* key, int64_t lo,
               int64_t hi, int64_t* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::ok();
  if (!n->is_integer()) return invalid_argument(where + "." + key + ": must be an integer");
  const int64_t v = *n->value<int64_t>();
  if (v < lo || v > hi) {
    return invalid_argument(where + "." + key + ": must be " + std::to_string(lo) + "-" +
                            std::to_string(hi) + ", got " + std::to_string(v));
  }
  *out = v;
  return Status::ok();
}

Status get_int(const toml::table& t, const std::string& where, const char* key, int64_t lo,
               int64_t hi, int* out) {
  int64_t v = *out;
  KILN_RETURN_IF_ERROR(get_int(t, where, key, lo, hi, &v));
  *out = static_cast<int>(v);
  return Status::ok();
}

Status get_number(const toml::table& t, const std::string& where, const char* key, double* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::ok();
  auto v = n->value<double>();
  if (!v || !(n->is_integer() || n->is_floating_point()) || !std::isfinite(*v)) {
    return invalid_argument(where + "." + key + ": must be a number");
  }
  *out = *v;
  return Status::ok();
}

Status get_seconds(const toml::table& t, const std::string& where, const char* key, double hi,
                   int64_t* out_ms) {
  const toml::node* n = t.get(key);
  if (!n) return Status::ok();
  auto v = n->value<double>();
  if (!v || !(n->is_integer() || n->is_floating_point()) || !(*v >= 0) || *v > hi) {
    return invalid_argument(where + "." + key + ": must be a number of seconds 0-" +
                            std::to_string(static_cast<int64_t>(hi)));
  }
  *out_ms = static_cast<int64_t>(std::llround(*v * 1000));
  return Status::ok();
}

Status get_string(const toml::table& t, const std::string& where, const char* key,
                  std::string* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::ok();
  if (!n->is_string()) return invalid_argument(where + "." + key + ": must be a string");
  *out = *n->value<std::string>();
  return Status::ok();
}

Status get_bool(const toml::table& t, const std::string& where, const char* key, bool* out) {
  const toml::node* n = t.get(key);
  if (!n) return Status::ok();
  if (!n->is_boolean()) return invalid_argument(where + "." + key + ": must be true or false");
  *out = *n->value<bool>();
  return Status::ok();
}

}  // namespace kiln::config

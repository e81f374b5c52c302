#include "ingest/json_fields.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace kiln::ingest::json_fields {

using nlohmann::json;

namespace {

// Long values (a whole array, a pasted blob) would drown the message.
constexpr size_t kMaxShownChars = 40;

std::string shown_text(const json& v) {
  // Replace invalid UTF-8 rather than throw: the text goes into messages
  // that may end up in JSON.
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShownChars) {
    size_t cut = kMaxShownChars - 3;
    // Never split a UTF-8 sequence: back up over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut) + "...";
  }
  return text;
}

// What a JSON value is, for Got::kKindAndValue.
std::string describe(const json& v) {
  const std::string text = shown_text(v);
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean (" + text + ")";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer (" + text + ")";
    case json::value_t::number_float:
      return "a number (" + text + ")";
    case json::value_t::string:
      return "a string (" + text + ")";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a value of another kind";
  }
}

Status out_of_range(const json& v, const std::string& path) {
  return invalid_argument(path + ": " + v.dump() + " is out of range");
}

}  // namespace

std::string member_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

std::string element_path(const std::string& parent, size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

Status wrong_type(const std::string& path, std::string_view expected, const json& v, Got got) {
  const std::string value = got == Got::kKindAndValue ? describe(v) : shown_text(v);
  return invalid_argument(path + ": must be " + std::string(expected) + ", got " + value);
}

const json* member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

Status read_string(const json& v, const std::string& path, std::string* out, Got got) {
  if (!v.is_string()) return wrong_type(path, "a string", v, got);
  *out = v.get<std::string>();
  return Status::ok();
}

Status read_int(const json& v, const std::string& path, int* out, Got got) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int>::max())) return out_of_range(v, path);
    *out = static_cast<int>(u);
    return Status::ok();
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max()) {
      return out_of_range(v, path);
    }
    *out = static_cast<int>(i);
    return Status::ok();
  }
  return wrong_type(path, "an integer", v, got);
}

Status read_number(const json& v, const std::string& path, double* out, Got got) {
  if (!v.is_number()) return wrong_type(path, "a number", v, got);
  *out = v.get<double>();
  return Status::ok();
}

Status read_finite_number(const json& v, const std::string& path, double* out, Got got) {
  KILN_RETURN_IF_ERROR(read_number(v, path, out, got));
  if (!std::isfinite(*out)) return invalid_argument(path + ": must be finite");
  return Status::ok();
}

Status read_bool(const json& v, const std::string& path, bool* out, Got got) {
  if (!v.is_boolean()) return wrong_type(path, "true or false", v, got);
  *out = v.get<bool>();
  return Status::ok();
}

std::string number_text(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text = json(v).dump();
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text;
}

}  // namespace kiln::ingest::json_fields

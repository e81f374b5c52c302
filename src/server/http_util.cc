#include "server/http_util.h"

#include <cstdlib>

#include "common/json_strict.h"
#include "common/time_format.h"
#include "server/http_errors.h"

namespace kiln::server {

using json = nlohmann::json;

void send_json(http::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_json_text(http::Response& res, int status, std::string&& text) {
  res.status = status;
  res.set_content(std::move(text), "application/json");
}

void send_error(http::Response& res, int status, const std::string& code,
                const std::string& message) {
  send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

void send_status(http::Response& res, const Status& s) {
  const HttpError& e = http_error(s.code());
  send_error(res, e.http_status, e.native_code, s.message());
}

bool parse_body(const http::Request& req, http::Response& res, json* out, size_t max_bytes) {
  auto parsed = parse_json_strict(req.body, JsonLimits{max_bytes, kMaxJsonDepth});
  if (!parsed.is_ok()) {
    send_error(res, 400, "bad_request", "request body: " + parsed.status().message());
    return false;
  }
  *out = std::move(parsed).value();
  if (!out->is_object()) {
    send_error(res, 400, "bad_request", "body must be a JSON object");
    return false;
  }
  return true;
}

bool only_known(http::Response& res, const json& obj, const std::set<std::string>& known,
                const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!known.count(it.key())) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      send_error(res, 400, "bad_request",
                 where + "unknown field '" + it.key() + "' (known: " + list + ")");
      return false;
    }
  }
  return true;
}

bool parse_int(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

json rfc3339(int64_t ms) {
  if (ms <= 0) return nullptr;
  std::string text;
  append_rfc3339(&text, ms);
  return text;
}

}  // namespace kiln::server

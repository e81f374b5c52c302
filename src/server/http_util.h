// What every HTTP door shares: JSON replies, the native error body, reading
// a JSON request body and query parameters. Error replies go through
// server/http_errors.h's table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "http/message.h"

namespace kiln::server {

// The largest body any door parses: the top of kiln.toml's
// [server] max_body_bytes range.
inline constexpr size_t kMaxRequestJsonBytes = size_t{1} << 30;

void send_json(http::Response& res, int status, const nlohmann::json& body);
void send_json_text(http::Response& res, int status, std::string&& text);
// {"error": {"code": code, "message": message}} with that HTTP status.
void send_error(http::Response& res, int status, const std::string& code,
                const std::string& message);
// The error for a failed Status, as http_errors.h maps it.
void send_status(http::Response& res, const Status& s);

// Parses a JSON object body with the strict reader (common/json_strict.h:
// size, depth, duplicate keys, numbers out of range); on failure answers 400
// naming the field and returns false. `max_bytes`: the door's body limit
// (the transport refuses larger bodies first; this holds without it).
bool parse_body(const http::Request& req, http::Response& res, nlohmann::json* out,
                size_t max_bytes = kMaxRequestJsonBytes);
// Refuses members not in `known` (400 naming the first one); `where` is
// the object's path ("" or "action: ").
bool only_known(http::Response& res, const nlohmann::json& obj, const std::set<std::string>& known,
                const std::string& where);
// A decimal integer within [lo, hi].
bool parse_int(const std::string& s, int64_t lo, int64_t hi, int64_t* out);
// "A,B" -> {"A", "B"}; empty items dropped.
std::vector<std::string> split_commas(const std::string& s);
// RFC 3339 UTC with milliseconds; null for "not yet" (ms <= 0).
nlohmann::json rfc3339(int64_t ms);

}  // namespace kiln::server

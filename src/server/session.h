// Browser sessions for the tile door (docs/security.md, "Browser
// sessions"): POST /v1/session trades a bearer token for a cookie that
// holds the environment and an expiry, sealed with an HMAC under the
// server's session key (drawn once and kept in its state directory, like
// the list-marker key). The server keeps no session table: a cookie is
// valid until it expires, for the environment it names, on a server with
// that key; signing out clears it from the browser.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::server {

// The cookie's name.
inline constexpr char kSessionCookie[] = "kiln_session";
// How long a session lasts: a working day, so a console left open over
// lunch still works and a copied cookie stops working by the next day.
inline constexpr int64_t kSessionSeconds = 12 * 3600;

class Sessions {
 public:
  // `key`: the HMAC key (ListMarkers::load_or_create_key's bytes, or a test's).
  explicit Sessions(std::string key) : key_(std::move(key)) {}

  // The cookie value of a session of `environment` that ends at
  // `expires_s` (Unix seconds). Thread-safe.
  std::string seal(const std::string& environment, int64_t expires_s) const;
  // The environment of a cookie value this server sealed, unaltered and not
  // expired at `now_s`; nullopt otherwise. Thread-safe.
  std::optional<std::string> open(std::string_view value, int64_t now_s) const;

 private:
  std::string mac_hex(std::string_view environment, int64_t expires_s) const;

  const std::string key_;
};

// The value of cookie `name` in a Cookie request header ("a=1; b=2"), or
// "" when it is not there. When the header names it more than once, the
// first wins (browsers send the most specific path first).
std::string cookie_value(std::string_view cookie_header, std::string_view name);

// The Set-Cookie value that stores `value` for `max_age_s` seconds
// (0: removes the cookie): HttpOnly, SameSite=Strict, Path=/.
std::string session_set_cookie(const std::string& value, int64_t max_age_s);

}  // namespace kiln::server

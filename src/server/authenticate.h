// The native doors' authentication, shared by the REST door (rest_api.h),
// the catalog upkeep door (catalog_api.h) and the tile door (tiles_api.h),
// so all refuse and throttle exactly alike.
//
// Two credentials are accepted: a bearer token (API clients, the CLI) and
// the console's session cookie (session.h; docs/console.md, "Sign-in,
// cookie and CSRF"). The cookie is sent by the browser on its own, so a
// request it authenticates that changes state (any method but GET and
// HEAD) must also carry `X-Kiln-Console: 1`: a header no cross-origin page
// can add without a CORS preflight, which this server never grants.
// SameSite=Strict alone leaves same-site origins (another port or a sibling
// host name) able to send the cookie; the header closes that gap.
#pragma once

#include "common/clock.h"
#include "http/message.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/quotas.h"
#include "server/session.h"

namespace kiln::server {

// The header (and its one value) a cookie-authenticated state-changing
// request must carry.
inline constexpr char kConsoleHeader[] = "X-Kiln-Console";
inline constexpr char kConsoleHeaderValue[] = "1";

// The environment of the request's "Authorization: Bearer" token, after
// taking one request from its quota; or writes 401 (no or an unknown token)
// or 429 (over its request rate) into `res` and returns nullptr.
// Thread-safe.
const EnvironmentConfig* authenticate_bearer(const http::Request& req, http::Response& res,
                                             const TokenTable& tokens, const ServerConfig& config,
                                             EnvironmentQuotas& quotas);

// What authenticate_request reads.
struct Authenticator {
  const TokenTable& tokens;
  const ServerConfig& config;
  EnvironmentQuotas& quotas;
  const Sessions& sessions;
  const Clock& clock;
};

// The environment of the request's bearer token or, when it sends no
// Authorization header, of its session cookie; after taking one request
// from that environment's quota. Writes 401 (no, an unknown or an expired
// credential), 403 (a cookie-authenticated state change without
// `X-Kiln-Console: 1`) or 429 and returns nullptr otherwise. Thread-safe.
const EnvironmentConfig* authenticate_request(const http::Request& req, http::Response& res,
                                              const Authenticator& a);

// Takes one request of `env`'s quota; false after writing 429.
bool take_request_quota(const EnvironmentConfig& env, http::Response& res,
                        EnvironmentQuotas& quotas);

}  // namespace kiln::server

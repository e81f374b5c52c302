#include "server/authenticate.h"

#include <string>

#include "server/http_util.h"

namespace kiln::server {

bool take_request_quota(const EnvironmentConfig& env, http::Response& res,
                        EnvironmentQuotas& quotas) {
  if (Status quota = quotas.take_request(env); !quota.is_ok()) {
    res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    send_status(res, quota);
    return false;
  }
  return true;
}

const EnvironmentConfig* authenticate_bearer(const http::Request& req, http::Response& res,
                                             const TokenTable& tokens, const ServerConfig& config,
                                             EnvironmentQuotas& quotas) {
  const std::string token = bearer_token(req.get_header_value("Authorization"));
  if (token.empty()) {
    send_error(res, 401, "unauthorized", "missing 'Authorization: Bearer <token>' header");
    return nullptr;
  }
  auto env = tokens.environment_for(token);
  if (!env) {
    send_error(res, 401, "unauthorized", "unknown token");
    return nullptr;
  }
  const EnvironmentConfig* found = config.environment(*env);
  if (!found) {
    send_error(res, 500, "internal", "the token maps to no configured environment");
    return nullptr;
  }
  if (!take_request_quota(*found, res, quotas)) return nullptr;
  return found;
}

const EnvironmentConfig* authenticate_request(const http::Request& req, http::Response& res,
                                              const Authenticator& a) {
  if (req.has_header("Authorization")) {
    return authenticate_bearer(req, res, a.tokens, a.config, a.quotas);
  }
  const std::string cookie = cookie_value(req.get_header_value("Cookie"), kSessionCookie);
  if (cookie.empty()) {
    send_error(res, 401, "unauthorized",
               "missing 'Authorization: Bearer <token>' header or session cookie (POST "
               "/v1/session with the token makes one)");
    return nullptr;
  }
  auto env_name = a.sessions.open(cookie, a.clock.now_ms() / 1000);
  const EnvironmentConfig* env = env_name ? a.config.environment(*env_name) : nullptr;
  if (!env) {
    send_error(res, 401, "unauthorized",
               "the session cookie is expired or not valid here: sign in again (POST "
               "/v1/session)");
    return nullptr;
  }
  if (req.method != "GET" && req.method != "HEAD" &&
      req.get_header_value(kConsoleHeader) != kConsoleHeaderValue) {
    send_error(res, 403, "forbidden",
               std::string("a state-changing request signed in by session cookie must carry '") +
                   kConsoleHeader + ": " + kConsoleHeaderValue +
                   "' (the console sends it; a cross-site page cannot); API clients send "
                   "'Authorization: Bearer <token>' instead");
    return nullptr;
  }
  if (!take_request_quota(*env, res, a.quotas)) return nullptr;
  return env;
}

}  // namespace kiln::server

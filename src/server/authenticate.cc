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

}  // namespace kiln::server

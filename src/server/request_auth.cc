#include "server/request_auth.h"

#include <string>

#include "server/http_util.h"

namespace kiln::server {

const EnvironmentConfig* authenticate_environment(const ServerConfig& config,
                                                  const TokenTable& tokens,
                                                  EnvironmentQuotas& quotas,
                                                  const http::Request& req, http::Response& res) {
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
  const EnvironmentConfig* env_config = config.environment(*env);
  if (!env_config) {
    send_error(res, 500, "internal", "the token maps to no configured environment");
    return nullptr;
  }
  if (Status quota = quotas.take_request(*env_config); !quota.is_ok()) {
    res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    send_status(res, quota);
    return nullptr;
  }
  return env_config;
}

}  // namespace kiln::server

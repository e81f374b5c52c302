// The native doors' bearer-token check, shared by the REST door
// (rest_api.h) and the tile door (tiles_api.h), so both refuse and throttle
// exactly alike.
#pragma once

#include "http/message.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/quotas.h"

namespace kiln::server {

// The environment of the request's "Authorization: Bearer" token, after
// taking one request from its quota; or writes 401 (no or an unknown token)
// or 429 (over its request rate) into `res` and returns nullptr.
// Thread-safe.
const EnvironmentConfig* authenticate_bearer(const http::Request& req, http::Response& res,
                                             const TokenTable& tokens, const ServerConfig& config,
                                             EnvironmentQuotas& quotas);

// Takes one request of `env`'s quota; false after writing 429.
bool take_request_quota(const EnvironmentConfig& env, http::Response& res,
                        EnvironmentQuotas& quotas);

}  // namespace kiln::server

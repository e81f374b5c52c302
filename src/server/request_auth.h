// Who a native-API request is from: its bearer token opens one environment,
// whose request quota it then takes from. The native doors (rest_api.h,
// catalog_api.h) authenticate through this one function.
#pragma once

#include "http/message.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/quotas.h"

namespace kiln::server {

// The caller's environment, or nullptr after writing 401 (no or an unknown
// token) or 429 with Retry-After (over the environment's request rate) to
// `res`. Thread-safe. The environment comes from `config`, never from the
// request.
const EnvironmentConfig* authenticate_environment(const ServerConfig& config,
                                                  const TokenTable& tokens,
                                                  EnvironmentQuotas& quotas,
                                                  const http::Request& req, http::Response& res);

}  // namespace kiln::server

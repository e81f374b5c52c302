#include "server/quotas.h"

#include <cstdio>

namespace kiln::server {

EnvironmentQuotas::EnvironmentQuotas(const ServerConfig& config) {
  for (const auto& e : config.environments) {
    limiters_[e.name] = std::make_unique<RateLimiter>(e.requests_per_second, e.request_burst);
  }
}

Status EnvironmentQuotas::take_request(const EnvironmentConfig& env,
                                       RateLimiter::Clock::time_point now) {
  auto it = limiters_.find(env.name);
  // Every environment a token opens is configured, so has a bucket.
  if (it == limiters_.end()) return internal_error("environment '" + env.name + "' has no quota");
  if (it->second->allow(env.name, now)) return Status::ok();
  char rate[64];
  std::snprintf(rate, sizeof rate, "%g requests/s, bursts of %g", env.requests_per_second,
                env.request_burst);
  return resource_exhausted("environment '" + env.name + "' is over its request rate (" + rate +
                            "; [[environment]] requests_per_second, request_burst): retry later");
}

}  // namespace kiln::server

// Per-environment request quotas ([[environment]] requests_per_second,
// request_burst): one token bucket per environment, shared by the native
// and EMR doors, so a tenant that floods either door is answered 429
// (ThrottlingException at the EMR door) while the others go on. The PENDING
// steps quota is the cluster core's (CoreStepService::submit), where it can
// be checked in the same transaction as the insert.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/core_names.h"
#include "server/rate_limiter.h"

namespace kiln::server {

class EnvironmentQuotas {
 public:
  // One bucket per configured environment. `config` need not outlive it.
  explicit EnvironmentQuotas(const ServerConfig& config);

  // Takes one request from `env`'s bucket: ok, or kResourceExhausted naming
  // the environment and its rate. Thread-safe.
  Status take_request(const EnvironmentConfig& env,
                      RateLimiter::Clock::time_point now = RateLimiter::Clock::now());

 private:
  // Built in the constructor and never changed: lookups need no lock (each
  // RateLimiter locks its own buckets).
  std::map<std::string, std::unique_ptr<RateLimiter>> limiters_;
};

// Seconds a throttled client should wait ("Retry-After"): a whole second is
// the smallest the header says.
inline constexpr int kRetryAfterSeconds = 1;

}  // namespace kiln::server

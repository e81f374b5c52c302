// The EMR-compatible endpoint's HTTP door: POST / with X-Amz-Target. It
// checks the SigV4 signature (the access key decides the environment),
// refuses a replayed signature of a call that changes state, throttles per
// access key, stamps an x-amzn-RequestId and hands the call
// to EmrApi (server/emr.h), which speaks the EMR Step API over the
// StepService.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "http/server.h"
#include "server/core_names.h"
#include "server/emr.h"
#include "server/quotas.h"
#include "server/rate_limiter.h"
#include "server/sigv4.h"
#include "server/sigv4_replay_cache.h"

namespace kiln::server {

class EmrDoor {
 public:
  // `steps` and `config` must outlive this object; so must `quotas` (the
  // environments' request rates, shared with the native door) and
  // `markers` (the server's list markers).
  EmrDoor(StepService& steps, const ServerConfig& config, EnvironmentQuotas& quotas,
          const ListMarkers& markers);

  void install(http::Server& http);

 private:
  void handle(const http::Request& req, http::Response& res);

  const ServerConfig& config_;
  SigV4Verifier sigv4_;
  SigV4ReplayCache replays_;  // signatures of calls that changed state
  RateLimiter limiter_;
  EnvironmentQuotas& quotas_;
  EmrApi api_;
};

}  // namespace kiln::server

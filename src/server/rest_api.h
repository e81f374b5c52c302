// The native REST door (docs/cluster.md, "Native API"): /v1/steps,
// /v1/cluster, /v1/environment, /metrics, /healthz, /readyz. It
// authenticates the caller's bearer token to an environment, translates
// HTTP to cluster::CoreStepService calls and back, and holds no state or
// logic of its own beyond that.
#pragma once

#include <atomic>
#include <cstdint>

#include "cluster/elastic_control.h"
#include "cluster/lifecycle.h"
#include "cluster/scheduler.h"
#include "cluster/step_service.h"
#include "cluster/worker_protocol.h"
#include "common/clock.h"
#include "common/prometheus.h"
#include "http/server.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/list_marker.h"
#include "server/quotas.h"
#include "server/session.h"
#include "server/step_waiters.h"

namespace kiln::server {

// Counters the process keeps for /metrics beyond the store's.
struct ServerCounters {
  Histogram start_latency{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  std::atomic<int64_t> http_requests{0};
};

class RestApi {
 public:
  struct Deps {
    const ServerConfig& config;
    cluster::CoreStepService& steps;
    cluster::ElasticControl& elastic;
    const cluster::WorkerProtocol& workers;
    const cluster::Scheduler& scheduler;
    const TokenTable& tokens;
    const cluster::Lifecycle& lifecycle;
    ServerCounters& counters;
    const Clock& clock;
    EnvironmentQuotas& quotas;
    StepWaiters& waiters;        // the long polls of handle_wait
    const ListMarkers& markers;  // next_marker of GET /v1/steps
    const Sessions& sessions;    // the console's session cookies (authenticate.h)
  };
  explicit RestApi(Deps deps) : d_(deps) {}

  // Adds the door's routes to `http`.
  void install(http::Server& http);

 private:
  // The caller's environment by bearer token or the console's session
  // cookie (authenticate.h), or writes 401, 403 or 429 and returns nullptr.
  const EnvironmentConfig* authenticate(const http::Request& req, http::Response& res);

  size_t body_limit() const { return static_cast<size_t>(d_.config.max_body_bytes); }

  void handle_submit(const http::Request& req, http::Response& res);
  void handle_list(const http::Request& req, http::Response& res);
  void handle_describe(const http::Request& req, http::Response& res);
  void handle_cancel(const http::Request& req, http::Response& res);
  void handle_logs(const http::Request& req, http::Response& res);
  void handle_wait(const http::Request& req, http::Response& res);
  void handle_cluster(const http::Request& req, http::Response& res);
  // POST /v1/cluster/nodes/{id}/interrupt: a spot notice (operator token).
  void handle_interrupt(const http::Request& req, http::Response& res);
  void handle_environment(const http::Request& req, http::Response& res);
  void handle_metrics(const http::Request& req, http::Response& res);

  Deps d_;
};

}  // namespace kiln::server

// kiln serve: the API server, the scheduler loop, the job store and the
// executor in one long-lived process (docs/cluster.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <httplib.h>

#include "common/status.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "server/sigv4.h"
#include "server/step_service.h"
#include "store/job_store.h"

namespace kiln::server {
class EmrApi;
class ElasticControl;
}  // namespace kiln::server

namespace kiln::worker {
class Executor;
}

namespace kiln::slurm {
class Dispatcher;
}

namespace kiln::server {

class Server final : public StepService {
 public:
  // Opens the job store, recovers what a previous run left, binds the
  // listening socket and starts the executor. `kiln_exe`: the kiln binary
  // workers run (normally /proc/self/exe).
  static Result<std::unique_ptr<Server>> start(const ServerConfig& config,
                                               const std::string& kiln_exe);
  ~Server();

  int port() const { return port_; }
  // Serves until shutdown() (e.g. from a signal handler thread).
  void run();
  // Graceful: stop taking steps and leasing tasks, let leased tasks finish
  // up to the grace period, stop the workers, return from run().
  void shutdown();

  // StepService, for the API front ends.
  Result<store::Step> submit(const EnvironmentConfig& env, const SubmitRequest& req) override;
  Result<store::Step> get(const EnvironmentConfig& env, const std::string& id) override;
  Result<store::ListPage> list(const EnvironmentConfig& env, store::ListQuery q) override;
  Result<store::Step> cancel(const EnvironmentConfig& env, const std::string& id,
                             const std::string& signal) override;
  Result<ClusterInfo> cluster(const EnvironmentConfig& env) override;
  Status set_concurrency(const EnvironmentConfig& env, int concurrency) override;
  std::string log_location(const std::string& step_id) const override;

 private:
  Server() = default;

  // --- HTTP ---------------------------------------------------------------
  void install_routes();
  // The caller's environment, or writes 401 and returns nullptr.
  const EnvironmentConfig* authenticate(const httplib::Request& req, httplib::Response& res);
  bool worker_authenticated(const httplib::Request& req, httplib::Response& res);

  void handle_submit(const httplib::Request& req, httplib::Response& res);
  void handle_list(const httplib::Request& req, httplib::Response& res);
  void handle_describe(const httplib::Request& req, httplib::Response& res);
  void handle_cancel(const httplib::Request& req, httplib::Response& res);
  void handle_logs(const httplib::Request& req, httplib::Response& res);
  void handle_wait(const httplib::Request& req, httplib::Response& res);
  void handle_cluster(const httplib::Request& req, httplib::Response& res);
  // POST /v1/cluster/nodes/{id}/interrupt: a spot notice (operator token).
  void handle_interrupt(const httplib::Request& req, httplib::Response& res);
  void handle_environment(const httplib::Request& req, httplib::Response& res);
  void handle_metrics(const httplib::Request& req, httplib::Response& res);
  // The EMR-compatible endpoint: POST / with X-Amz-Target (server/emr.h).
  void handle_emr(const httplib::Request& req, httplib::Response& res);

  void handle_register(const httplib::Request& req, httplib::Response& res);
  void handle_lease(const httplib::Request& req, httplib::Response& res);
  // A batch task (Slurm) claims the task it was started for; a worker that
  // stops (preempted, cancelled) leaves, returning its leases at once.
  void handle_claim(const httplib::Request& req, httplib::Response& res);
  void handle_leave(const httplib::Request& req, httplib::Response& res);
  // The lease reply for one task (its spec and log), logged in the step's log.
  nlohmann::json leased_task(const store::Lease& l, const std::string& worker, int64_t now);
  void handle_heartbeat(const httplib::Request& req, httplib::Response& res);
  void handle_complete(const httplib::Request& req, httplib::Response& res);

  // --- scheduling -----------------------------------------------------------
  void scheduler_loop();
  void scheduler_pass();
  void kick();  // wake the scheduler now (a step was submitted or ended)
  std::map<std::string, store::EnvironmentPolicy> policies() const;
  void clean_staging(const store::Step& step);
  void step_log(const std::string& step_id, const std::string& line) const;
  std::string log_path(const std::string& step_id) const;
  void on_worker_exit(int64_t pid);

  ServerConfig config_;
  std::string kiln_exe_;
  std::string logs_dir_;  // <state_dir>/logs/, for log_path()
  std::string worker_token_;
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<store::JobStore> store_;
  std::unique_ptr<SigV4Verifier> sigv4_;
  std::unique_ptr<RateLimiter> emr_limiter_;
  std::unique_ptr<EmrApi> emr_;
  std::atomic<uint64_t> emr_request_seq_{0};
  std::unique_ptr<worker::Executor> executor_;
  std::unique_ptr<ElasticControl> elastic_;        // after executor_: destroyed first
  std::unique_ptr<slurm::Dispatcher> dispatcher_;  // executor "slurm" only
  httplib::Server http_;
  int port_ = 0;
  int64_t started_ms_ = 0;

  mutable std::mutex policy_mu_;
  std::map<std::string, store::EnvironmentPolicy> policies_;  // concurrency changes at run time

  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool kicked_ = false;
  std::atomic<bool> stopping_{false};       // no new steps, no new leases
  std::atomic<bool> stopped_{false};        // scheduler exits
  std::atomic<uint64_t> state_version_{0};  // bumped on every step transition
  std::thread scheduler_;

  Histogram start_latency_{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  std::atomic<int64_t> tiles_written_{0};
  std::atomic<int64_t> http_requests_{0};
  std::mutex pid_mu_;
  std::map<int64_t, std::string> worker_by_pid_;
};

}  // namespace kiln::server

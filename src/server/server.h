// kiln serve: the process that wires the cluster core (src/cluster) to its
// job store, its executor and its HTTP doors (src/server). It owns the
// parts and their start and stop order, and nothing else: no handler, no
// scheduling, no step logic lives here (docs/cluster.md).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "cluster/elastic_control.h"
#include "cluster/lifecycle.h"
#include "cluster/planner.h"
#include "cluster/policies.h"
#include "cluster/scheduler.h"
#include "cluster/step_events.h"
#include "cluster/step_log.h"
#include "cluster/step_service.h"
#include "cluster/worker_protocol.h"
#include "common/clock.h"
#include "common/status.h"
#include "http/server.h"
#include "server/auth.h"
#include "server/catalog_api.h"
#include "server/console.h"
#include "server/core_names.h"
#include "server/emr_door.h"
#include "server/quotas.h"
#include "server/render_pool.h"
#include "server/rest_api.h"
#include "server/session.h"
#include "server/step_waiters.h"
#include "server/tiles_api.h"
#include "server/worker_api.h"
#include "store/job_store.h"

namespace kiln::worker {
class Executor;
}

namespace kiln::slurm {
class Dispatcher;
}

namespace kiln::server {

class Server final {
 public:
  // Opens the job store, recovers what a previous run left, binds the
  // listening socket, starts the executor, the warm core and the
  // scheduler. `kiln_exe`: the kiln binary workers run (normally
  // /proc/self/exe).
  static Result<std::unique_ptr<Server>> start(const ServerConfig& config,
                                               const std::string& kiln_exe);
  ~Server();

  int port() const { return port_; }
  // Returns when serving ends: after shutdown() (e.g. from a signal
  // handler thread). The HTTP loop itself starts in start(). Call once.
  void run();
  // Graceful: stop taking steps and leasing tasks, let leased tasks finish
  // up to the grace period, stop the workers, return from run().
  void shutdown();

 private:
  Server(const ServerConfig& config, const Clock& clock);
  // The front door's limits and deadlines, from the config.
  http::ServerOptions http_options();
  // The doors' routes.
  void install_routes();
  // The Slurm executor and its dispatcher, or the local executor.
  Status make_executor(const std::string& kiln_exe);

  const ServerConfig config_;
  const Clock& clock_;
  const int64_t started_ms_;
  std::string worker_token_;
  int port_ = 0;

  // The cluster core, in construction order (destroyed in reverse).
  cluster::Lifecycle lifecycle_;
  cluster::StepEvents events_;
  std::unique_ptr<store::JobStore> store_;
  std::unique_ptr<cluster::StepLog> log_;
  cluster::Policies policies_;
  std::unique_ptr<cluster::Planner> planner_;  // sandboxed: cluster/sandbox_planner.h
  std::unique_ptr<worker::Executor> executor_;
  std::unique_ptr<slurm::Dispatcher> dispatcher_;  // executor "slurm" only
  std::unique_ptr<cluster::ElasticControl> elastic_;
  std::unique_ptr<cluster::CoreStepService> steps_;
  std::unique_ptr<cluster::WorkerProtocol> workers_;
  std::unique_ptr<cluster::Scheduler> scheduler_;

  // The doors.
  std::unique_ptr<TokenTable> tokens_;
  std::unique_ptr<EnvironmentQuotas> quotas_;  // both doors' request rates
  ServerCounters counters_;
  std::unique_ptr<StepWaiters> waiters_;  // before the doors that use it, after steps_
  std::unique_ptr<ListMarkers> markers_;  // both doors' list markers
  std::unique_ptr<RestApi> rest_;
  std::unique_ptr<CatalogApi> catalog_api_;  // the layers' upkeep
  std::unique_ptr<WorkerApi> worker_api_;
  std::unique_ptr<EmrDoor> emr_;
  std::unique_ptr<Sessions> sessions_;  // the tile door's browser sessions
  // Renderer processes for analytic tiles (null with render_processes = 0);
  // before tiles_, which uses it.
  std::unique_ptr<RenderPool> render_pool_;
  std::unique_ptr<TilesApi> tiles_;
  std::unique_ptr<ClusterHistory> history_;  // slots and demand for the console's chart
  std::unique_ptr<Console> console_;         // the web console at / and /console/
  http::Server http_;
  std::thread http_thread_;  // runs http_'s loop from start() until shutdown()
};

}  // namespace kiln::server

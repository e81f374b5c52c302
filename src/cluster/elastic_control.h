// ElasticControl: kiln serve's side of elastic capacity. It runs the fleet
// (src/elastic) on the wall clock: launches the warm core at start, samples
// the cluster's load every autoscaling period and applies the autoscaler's
// plan through the executor (a node is one `kiln worker --node ID`), keeps
// draining nodes from leasing, turns spot notices (`kiln cluster
// interrupt`, or the [spot] chaos rate) into drains and terminations, and
// prices what each task ran on. Thread-safe: HTTP handlers and the
// scheduler thread call it; worker processes are launched on the
// scheduler thread (tick()) and at start, never from a handler, and a node
// terminated while its launch is under way is stopped by that launch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/mutex.h"
#include "common/status.h"
#include "config/server_config.h"
#include "elastic/fleet.h"
#include "store/job_store.h"
#include "worker/executor.h"

namespace kiln::cluster {

class ElasticControl {
 public:
  // REQUIRES: store and executor outlive this object; executor started.
  ElasticControl(const config::ServerConfig& config, store::JobStore* store,
                 worker::Executor* executor);
  ~ElasticControl();

  // Launches every group's min_nodes (the warm core).
  Status start(int64_t now_ms) EXCLUDES(mu_);
  // From the scheduler loop, a few times a second: node busy counts, the
  // fleet's deadlines, a reconcile round when the period has passed,
  // delayed (bootstrapping) launches, chaos interruptions.
  // A round whose load cannot be read from the store is skipped (and
  // logged): the autoscaler never decides on a made-up sample.
  void tick(int64_t now_ms) EXCLUDES(mu_);

  // A worker registered for node `node_id` (its --node).
  void worker_registered(const std::string& worker_id, const std::string& node_id, int64_t now_ms)
      EXCLUDES(mu_);
  // The worker stopped for good (a batch task that left): forgotten.
  void worker_left(const std::string& worker_id) EXCLUDES(mu_);
  // Whether this worker's node may take new tasks (not draining or gone).
  bool may_lease(const std::string& worker_id) const EXCLUDES(mu_);
  // A task attempt was leased to this worker now (start of its charge).
  void leased(int64_t task_id, int attempt, const std::string& worker_id, int64_t now_ms)
      EXCLUDES(mu_);
  struct Charge {
    double slot_seconds = 0;
    double cost = 0;
  };
  // The attempt ended: what its slot cost since it was leased. Zero when
  // the lease was not seen (e.g. taken before a restart).
  Charge charge(int64_t task_id, int attempt, int64_t now_ms) EXCLUDES(mu_);

  // A spot interruption notice for a node; kNotFound for an unknown or
  // gone node. notice_ms < 0: the configured notice.
  Status interrupt(const std::string& node_id, int64_t notice_ms, int64_t now_ms) EXCLUDES(mu_);

  // For GET /v1/cluster: groups (desired, nodes by state), nodes, the last
  // decisions, cost so far and cost rate.
  nlohmann::json to_json(int64_t now_ms) const EXCLUDES(mu_);
  // Prometheus lines (kiln_nodes, kiln_group_desired_nodes, kiln_cost_*,
  // kiln_autoscaler_decisions_total, kiln_spot_interruptions_total).
  std::string metrics(int64_t now_ms) const EXCLUDES(mu_);

 private:
  class Provider;

  void tick_locked(int64_t now_ms) REQUIRES(mu_);
  void reconcile_locked(int64_t now_ms) REQUIRES(mu_);
  // A node launch the fleet asked for, started once at_ms has come (a
  // group's bootstrap delay). `ticket` names one launch: a node id comes
  // back (a group's named machines) once its earlier node is gone.
  struct Due {
    std::string node_id;
    int slots = 0;
    int64_t at_ms = 0;
    int64_t ticket = 0;
  };
  // The fleet's launch of a node: queued until its at_ms.
  void queue_launch_locked(const std::string& node_id, int slots, int64_t at_ms) REQUIRES(mu_);
  // The launches due now, moved from the queue to launching_ for launch().
  std::vector<Due> take_due_locked(int64_t now_ms) REQUIRES(mu_);
  // The fleet terminates a node: a queued launch is dropped; a launch
  // taken by launch() is marked cancelled, and launch() either skips it or
  // stops the process it started; a started node's worker is stopped. In
  // every case its workers are gone (leases back to the queue).
  Status terminate_locked(const std::string& node_id, int64_t now_ms) REQUIRES(mu_);
  // The node's registered workers are gone from the store and forgotten.
  void forget_workers_locked(const std::string& node_id, int64_t now_ms) REQUIRES(mu_);
  // Starts the worker processes of launches taken by take_due_locked(),
  // without mu_ held (registrations need it meanwhile; mu_ is taken
  // briefly before and after each node's launch). A launch terminated
  // before its turn is skipped; one terminated while its process started
  // is stopped again once launch_node() returns. A node whose process
  // cannot start is lost to the fleet. Returns the first failure of a
  // node the fleet still wants.
  Status launch(const std::vector<Due>& due, int64_t now_ms) EXCLUDES(mu_);
  void record_locked(const elastic::Plan& plan) REQUIRES(mu_);

  const config::ServerConfig& config_;
  store::JobStore* store_;
  worker::Executor* const executor_;  // thread-safe; called without mu_ for launches
  mutable Mutex mu_;
  // The provider and the fleet are only used with mu_ held (the provider
  // is called by the fleet, inside ElasticControl's locked methods).
  std::unique_ptr<Provider> provider_ PT_GUARDED_BY(mu_);
  std::unique_ptr<elastic::Fleet> fleet_ PT_GUARDED_BY(mu_);
  std::map<std::string, std::string> node_of_worker_ GUARDED_BY(mu_);
  // Launches the fleet asked for whose time has not come (bootstrap delay).
  std::vector<Due> queued_ GUARDED_BY(mu_);
  // Launches taken by launch() and not yet settled, by ticket, and whether
  // the fleet terminated the node meanwhile. launch() alone talks to the
  // executor about these nodes, so no terminate can come before the
  // process it should stop has started (issue 14: an orphan worker ran
  // tasks for a node the fleet had terminated).
  struct Launching {
    std::string node_id;
    bool cancelled = false;
  };
  std::map<int64_t, Launching> launching_ GUARDED_BY(mu_);
  int64_t next_ticket_ GUARDED_BY(mu_) = 0;
  struct Attempt {
    std::string node;
    int64_t leased_ms = 0;
  };
  std::map<std::pair<int64_t, int>, Attempt> attempts_ GUARDED_BY(mu_);
  int64_t next_reconcile_ms_ GUARDED_BY(mu_) = 0;
  int64_t last_chaos_ms_ GUARDED_BY(mu_) = 0;
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  std::map<std::string, int64_t> decisions_by_group_dir_ GUARDED_BY(mu_);  // "group|out" -> n
  const std::string samples_path_, decisions_path_;
};

}  // namespace kiln::cluster

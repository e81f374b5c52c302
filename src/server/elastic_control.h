// ElasticControl: kiln serve's side of elastic capacity. It runs the fleet
// (src/elastic) on the wall clock: launches the warm core at start, samples
// the cluster's load every autoscaling period and applies the autoscaler's
// plan through the executor (a node is one `kiln worker --node ID`), keeps
// draining nodes from leasing, turns spot notices (`kiln cluster
// interrupt`, or the [spot] chaos rate) into drains and terminations, and
// prices what each task ran on. Thread-safe: HTTP handlers and the
// scheduler thread call it; executor calls happen on the scheduler thread
// (tick()) and at start, never from a handler.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "elastic/fleet.h"
#include "server/config.h"
#include "store/job_store.h"
#include "worker/executor.h"

namespace kiln::server {

class ElasticControl {
 public:
  // REQUIRES: store and executor outlive this object; executor started.
  ElasticControl(const ServerConfig& config, store::JobStore* store, worker::Executor* executor);
  ~ElasticControl();

  // Launches every group's min_nodes (the warm core).
  Status start(int64_t now_ms);
  // From the scheduler loop, a few times a second: node busy counts, the
  // fleet's deadlines, a reconcile round when the period has passed,
  // delayed (bootstrapping) launches, chaos interruptions.
  void tick(int64_t now_ms);

  // A worker registered for node `node_id` (its --node).
  void worker_registered(const std::string& worker_id, const std::string& node_id, int64_t now_ms);
  // The worker stopped for good (a batch task that left): forgotten.
  void worker_left(const std::string& worker_id);
  // Whether this worker's node may take new tasks (not draining or gone).
  bool may_lease(const std::string& worker_id) const;
  // A task attempt was leased to this worker now (start of its charge).
  void leased(int64_t task_id, int attempt, const std::string& worker_id, int64_t now_ms);
  struct Charge {
    double slot_seconds = 0;
    double cost = 0;
  };
  // The attempt ended: what its slot cost since it was leased. Zero when
  // the lease was not seen (e.g. taken before a restart).
  Charge charge(int64_t task_id, int attempt, int64_t now_ms);

  // A spot interruption notice for a node; kNotFound for an unknown or
  // gone node. notice_ms < 0: the configured notice.
  Status interrupt(const std::string& node_id, int64_t notice_ms, int64_t now_ms);

  // For GET /v1/cluster: groups (desired, nodes by state), nodes, the last
  // decisions, cost so far and cost rate.
  nlohmann::json to_json(int64_t now_ms) const;
  // Prometheus lines (kiln_nodes, kiln_group_desired_nodes, kiln_cost_*,
  // kiln_autoscaler_decisions_total, kiln_spot_interruptions_total).
  std::string metrics(int64_t now_ms) const;

 private:
  class Provider;

  void reconcile_locked(int64_t now_ms);
  elastic::ClusterSample sample_locked(int64_t now_ms);
  void record_locked(const elastic::ClusterSample& s, const elastic::Plan& plan);

  const ServerConfig& config_;
  store::JobStore* store_;
  mutable std::mutex mu_;
  std::unique_ptr<Provider> provider_;                 // guarded by mu_
  std::unique_ptr<elastic::Fleet> fleet_;              // guarded by mu_
  std::map<std::string, std::string> node_of_worker_;  // guarded by mu_
  struct Attempt {
    std::string node;
    int64_t leased_ms = 0;
  };
  std::map<std::pair<int64_t, int>, Attempt> attempts_;    // guarded by mu_
  int64_t next_reconcile_ms_ = 0;                          // guarded by mu_
  int64_t last_chaos_ms_ = 0;                              // guarded by mu_
  std::mt19937_64 rng_;                                    // guarded by mu_
  std::map<std::string, int64_t> decisions_by_group_dir_;  // "group|out" -> count
  std::string samples_path_, decisions_path_;
};

}  // namespace kiln::server

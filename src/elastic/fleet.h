// Fleet: the nodes of an elastic cluster over time. It launches the warm
// core, applies the autoscaler's plans through a NodeProvider, drains nodes
// (scale-in or spot notice) and terminates them at their deadline, and
// prices every node-second by its market. Single-threaded; time comes in as
// arguments, so the live server (wall clock) and `kiln simulate` (simulated
// clock) drive the same code.
//
// Node lifecycle: launch -> BOOTING -> (node_ready) READY -> (drain or
// interrupt) DRAINING -> GONE. A draining node takes no new tasks; it is
// terminated when its last task ends, or at its deadline (drain_timeout for
// scale-in, the notice for an interruption) with its running tasks' leases
// released so they run again elsewhere. A node can also be lost outright
// (node_lost: a crash); the autoscaler then launches a replacement because
// the group is below its desired size.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "elastic/autoscaler.h"
#include "elastic/capacity.h"

namespace kiln::elastic {

// Where nodes come from. `local`: a `kiln worker` process per node on this
// host; `simulated`: bookkeeping for `kiln simulate`; later `slurm`.
class NodeProvider {
 public:
  virtual ~NodeProvider() = default;
  virtual const char* kind() const = 0;
  // Starts node `node_id` of `group`. The node reports itself ready later
  // (Fleet::node_ready) once it can take tasks.
  virtual Status launch(const GroupConfig& group, const std::string& node_id, int64_t now_ms) = 0;
  // The node must take no new task from now on.
  virtual Status drain(const std::string& node_id, int64_t now_ms) = 0;
  // The node stops; its running tasks' leases go back to the queue.
  virtual Status terminate(const std::string& node_id, int64_t now_ms) = 0;
};

struct MarketCost {
  double node_seconds = 0;
  double cost = 0;  // money, in the price traces' currency
};

struct CostReport {
  double total = 0;                             // since the fleet started
  double rate_per_hour = 0;                     // of the nodes up now
  std::map<std::string, MarketCost> by_market;  // "on_demand", "spot"
  std::map<std::string, MarketCost> by_group;
};

class Fleet {
 public:
  // REQUIRES: validate(config) ok; provider outlives the fleet.
  Fleet(AutoscalerConfig config, NodeProvider* provider);

  // Launches every group's min_nodes (the warm core).
  Status start(int64_t now_ms);

  // Reports from the provider or the scheduler.
  void node_ready(const std::string& node_id, int64_t now_ms);
  void node_busy(const std::string& node_id, int busy, int64_t now_ms);
  void node_lost(const std::string& node_id, int64_t now_ms);

  // A spot interruption notice: the node drains now and is terminated at
  // now + notice_ms. kNotFound for an unknown or gone node.
  Status interrupt(const std::string& node_id, int64_t now_ms, int64_t notice_ms = 120 * 1000);

  // One reconcile period: deadlines first, then the autoscaler's plan is
  // applied (launches, drains). Returns the plan.
  Result<Plan> reconcile(const ClusterSample& sample, int64_t now_ms);
  // Deadlines only (drained nodes that are idle or past their deadline are
  // terminated); call between periods, e.g. every second.
  Status tick(int64_t now_ms);

  std::vector<Node> nodes() const;       // every node ever launched, gone ones included
  std::vector<Node> live_nodes() const;  // those not gone
  const Node* node(const std::string& node_id) const;
  CostReport cost(int64_t now_ms) const;
  // What one slot of `node_id` cost from t0 to t1 (its node's price over
  // its slots): what a task running there is charged.
  double slot_cost(const std::string& node_id, int64_t t0_ms, int64_t t1_ms) const;
  // The most recent decisions, oldest first (at most 256 kept).
  const std::deque<Decision>& decisions() const { return decisions_; }
  int64_t interruptions() const { return interruptions_; }
  const Autoscaler& autoscaler() const { return autoscaler_; }

 private:
  Status launch(const std::string& group, const std::string& counts_for, int64_t now_ms);
  Status terminate(Node* n, int64_t now_ms);
  // The next node's id: the group's first free name, "" when every name
  // is in use; "<group>-<n>" for a group without names.
  std::string next_id(const std::string& group);
  // Whether a spot group's replacements go to its fallback group now.
  bool falls_back(const GroupConfig& g, int64_t now_ms);
  void remember(const Decision& d);
  // A node has just gone: out of the live set, its cost into gone_cost_.
  void retire(const Node& n);

  Autoscaler autoscaler_;
  NodeProvider* provider_;
  std::map<std::string, GroupConfig> groups_;
  std::map<std::string, Node> nodes_;  // by id
  // Nodes not gone, by launch sequence (so in launch order without a sort),
  // and the sequence of each; the draining ones, which tick() looks at.
  std::map<int64_t, std::string> live_;
  std::map<std::string, int64_t> live_seq_;
  std::set<std::string> draining_;
  int64_t launches_ = 0;
  CostReport gone_cost_;                    // what the nodes that are gone cost, summed as they go
  std::map<std::string, int> next_number_;  // per group
  std::map<std::string, std::deque<int64_t>> interrupted_;  // per group: notice times
  std::deque<Decision> decisions_;
  int64_t interruptions_ = 0;
};

}  // namespace kiln::elastic

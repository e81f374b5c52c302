// Capacity: the vocabulary of elastic clusters. Instance groups (the
// on-demand core and the task groups), the nodes they hold, what a node-hour
// costs, and one sample of the cluster's load. Plain values, no I/O: the
// live server, the simulator and the tests all speak these types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::elastic {

enum class Market { kOnDemand, kSpot };
const char* market_name(Market m);  // "on_demand" | "spot"
Result<Market> parse_market(const std::string& name);

// A price per node-hour that may change over time: a step function through
// (t_ms, price) points; before the first point the first price holds. A
// trace with one point is a constant price.
class PriceTrace {
 public:
  PriceTrace() = default;
  explicit PriceTrace(double constant_per_hour);
  // Points in any order; sorted on construction. kInvalidArgument for an
  // empty list, a negative or non-finite price.
  static Result<PriceTrace> from_points(std::vector<std::pair<int64_t, double>> points);

  double at(int64_t t_ms) const;  // price per node-hour at t
  // The money a node costs from t0 to t1 (t1 >= t0), integrating the steps.
  double cost(int64_t t0_ms, int64_t t1_ms) const;

 private:
  std::vector<std::pair<int64_t, double>> points_;  // sorted by time
};

struct GroupConfig {
  std::string name;   // "core", "spot", ...: [a-z0-9_-]{1,32}
  bool core = false;  // the always-on on-demand group; exactly one, min_nodes >= 1
  Market market = Market::kOnDemand;
  int min_nodes = 0;
  int max_nodes = 0;
  int slots_per_node = 2;
  PriceTrace price;          // per node-hour
  int64_t bootstrap_ms = 0;  // launch -> able to take tasks
  // Spot groups: after this many interruptions within interruption_window_ms,
  // replacements go to fallback_group (on demand) instead; "" never.
  std::string fallback_group;
  int fallback_after_interruptions = 3;
  int64_t interruption_window_ms = 3600 * 1000;
  // Machines with fixed names (Slurm nodes: static ones for the core, CLOUD
  // ones powered up and down): a node takes the first name not in use, so
  // its id is the name its provider and its workers know it by. Empty:
  // nodes are named "<group>-<n>". max_nodes <= node_names.size().
  std::vector<std::string> node_names;
};

// Checks one group set: one core group (on demand, min >= 1), names unique
// and valid, 0 <= min <= max, slots >= 1, fallback names an on-demand group.
// Errors name the group and field ("group 'spot'.max_nodes: ...").
Status validate_groups(const std::vector<GroupConfig>& groups);

enum class NodeState {
  kBooting,   // launched, not yet taking tasks (bootstrap_ms)
  kReady,     // taking tasks
  kDraining,  // takes no new task; running ones finish or time out
  kGone,      // terminated (scale-in, interruption deadline, crash)
};
const char* node_state_name(NodeState s);

struct Node {
  std::string id;     // fleet-chosen, stable: "core-1", "spot-7", ...
  std::string group;  // the group it was launched in
  // The group whose desired size it counts toward: its own, or the spot
  // group it stands in for when launched in the fallback group.
  std::string counts_for;
  Market market = Market::kOnDemand;
  NodeState state = NodeState::kBooting;
  int slots = 0;
  int busy = 0;  // tasks running on it now
  int64_t launched_ms = 0;
  int64_t ready_ms = 0;           // 0: still booting
  int64_t idle_since_ms = 0;      // when busy last became 0 (0: busy now)
  int64_t drain_deadline_ms = 0;  // draining: when it is terminated regardless
  int64_t ended_ms = 0;           // gone: when
  bool interrupted = false;       // draining/gone because of a spot notice
  std::string drain_reason;       // "scale-in", "interruption", ...
};

// One look at the cluster's load, taken every reconcile period. The
// autoscaler's rules read these fields by name (metric_names()).
struct ClusterSample {
  int64_t t_ms = 0;
  int64_t pending_tasks = 0;  // runnable (their step is RUNNING), not leased
  int64_t backlog_steps = 0;  // PENDING steps waiting for their environment's concurrency
  int64_t running_tasks = 0;  // leased
  int64_t slots_total = 0;    // of ready nodes
  int64_t slots_busy = 0;
  double free_slot_pct = 0;  // 100 * (total - busy) / total; 0 when total is 0
  double pending_ratio = 0;  // pending_tasks / max(1, slots_total) (EMR's ContainerPendingRatio)
  int64_t oldest_pending_wait_ms = 0;  // how long the oldest runnable task has waited
  int64_t booting_nodes = 0;
};

// "pending_tasks", "running_tasks", "free_slot_pct", "pending_ratio",
// "oldest_pending_wait_s", "slots_total", "slots_busy", "backlog_steps".
const std::vector<std::string>& metric_names();
// The named metric's value; kInvalidArgument for an unknown name (listing
// the known ones).
Result<double> metric_value(const ClusterSample& s, const std::string& name);

// Fills the derived fields (free_slot_pct, pending_ratio) from the counts.
void derive(ClusterSample* s);

}  // namespace kiln::elastic

// Autoscaler: from a window of cluster samples to the desired size of each
// instance group. Pure and deterministic (no clock, no I/O): the live server
// and `kiln simulate` call the same reconcile() with the same inputs and get
// the same decisions, which is what the live/simulated cross-check test
// compares.
//
// Two kinds of policy, per group:
// - Rules, as EMR custom autoscaling has them: a metric compared with a
//   threshold for N consecutive samples triggers an adjustment (change in
//   capacity, percent change, exact capacity), then a cooldown.
// - Target tracking: keep the free-slot percentage near a target. It scales
//   out at once when work is pending (from zero too), sized so that pending
//   plus running tasks fit at the target; it scales in only nodes idle for
//   idle_timeout, never below the most the work needed over that same
//   window, and not within scale_in_cooldown of the last change.
// A group with neither keeps its min size. Sizes are always clamped to
// [min_nodes, max_nodes]; the core group never goes below its min.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "elastic/capacity.h"

namespace kiln::elastic {

enum class Comparison { kGreater, kGreaterOrEqual, kLess, kLessOrEqual };
enum class Adjustment { kChangeInCapacity, kPercentChangeInCapacity, kExactCapacity };

struct ScalingRule {
  std::string name;    // shown in decisions
  std::string group;   // the group it resizes
  std::string metric;  // one of metric_names()
  Comparison comparison = Comparison::kGreater;
  double threshold = 0;
  int evaluation_periods = 1;  // consecutive samples that must meet it
  Adjustment adjustment = Adjustment::kChangeInCapacity;
  double amount = 1;  // +2 nodes, -1 node, 50 (%), 4 (exact)
  int64_t cooldown_ms = 300 * 1000;
};

struct TargetTracking {
  std::string group;
  double target_free_slot_pct = 20;
  int64_t scale_out_cooldown_ms = 0;
  int64_t scale_in_cooldown_ms = 300 * 1000;
  int64_t idle_timeout_ms = 600 * 1000;  // a node idle this long may be removed
};

struct AutoscalerConfig {
  int64_t period_ms = 10 * 1000;
  std::vector<GroupConfig> groups;
  std::vector<ScalingRule> rules;
  std::vector<TargetTracking> targets;  // at most one per group
  // How long a node being scaled in may finish its running tasks before
  // their leases are released for re-queue and the node is terminated.
  int64_t drain_timeout_ms = 120 * 1000;
};

// Checks references (groups, metric names), ranges and that no group has
// both rules and target tracking. Errors name the policy and field.
Status validate(const AutoscalerConfig& config);

// One change of a group's desired size, with what caused it.
struct Decision {
  int64_t t_ms = 0;
  std::string group;
  // Desired nodes before / after ("min-size": the nodes the group had).
  int from = 0, to = 0;
  // The rule's name, "target-tracking", "min-size" (a group found below its
  // min in the first round) or, from the Fleet, "fallback-on-demand".
  std::string policy;
  std::string reason;    // "pending_ratio 2.50 > 1.00 for 3 periods"
  ClusterSample sample;  // the metric values it was taken on
};
std::string describe(const Decision& d);  // one log line

// What reconcile() asks the fleet to do now.
struct Plan {
  std::vector<Decision> decisions;     // empty when nothing changed
  std::map<std::string, int> desired;  // every group's desired size after this round
  // Nodes to launch, as (group, count): desired minus the nodes that count
  // toward it (booting, ready; not draining or gone).
  std::vector<std::pair<std::string, int>> launch;
  // Nodes to drain for scale-in: idle ones first (longest idle first), then
  // the least busy, newest first; never more than the group exceeds desired.
  std::vector<std::string> drain;
};

class Autoscaler {
 public:
  explicit Autoscaler(AutoscalerConfig config);  // REQUIRES: validate(config) ok

  // One reconcile round at sample.t_ms with the fleet's current nodes
  // (including draining and gone ones, which do not count toward desired).
  // Call once per period; the autoscaler keeps the window it needs.
  Plan reconcile(const ClusterSample& sample, const std::vector<Node>& nodes);

  const AutoscalerConfig& config() const { return config_; }
  int desired(const std::string& group) const;

 private:
  AutoscalerConfig config_;
  std::map<std::string, int> desired_;
  std::map<std::string, int64_t> last_change_ms_;  // per group, for cooldowns
  std::map<std::string, int> rule_streak_;         // per rule: consecutive samples met
  // Per target-tracked group: (t_ms, nodes the work needed) over the last
  // idle_timeout, the floor of a scale-in.
  std::map<std::string, std::deque<std::pair<int64_t, int>>> needed_;
  bool first_round_ = true;
};

}  // namespace kiln::elastic

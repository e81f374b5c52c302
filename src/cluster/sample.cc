#include "cluster/sample.h"

#include <algorithm>

namespace kiln::cluster {

Capacity capacity_of(const std::vector<elastic::Node>& nodes) {
  Capacity c;
  for (const elastic::Node& n : nodes) {
    if (n.state == elastic::NodeState::kReady) {
      c.slots_total += n.slots;
      c.slots_busy += std::min(n.busy, n.slots);
    } else if (n.state == elastic::NodeState::kBooting) {
      ++c.booting_nodes;
    }
  }
  return c;
}

elastic::ClusterSample make_sample(const store::Load& load, const Capacity& capacity,
                                   int64_t now_ms) {
  elastic::ClusterSample s;
  s.t_ms = now_ms;
  s.pending_tasks = load.pending_tasks;
  s.backlog_steps = load.backlog_steps;
  s.running_tasks = load.leased_tasks;
  s.oldest_pending_wait_ms = load.oldest_pending_wait_ms;
  s.slots_total = capacity.slots_total;
  s.slots_busy = capacity.slots_busy;
  s.booting_nodes = capacity.booting_nodes;
  elastic::derive(&s);
  return s;
}

}  // namespace kiln::cluster

#include "sim/per_request.h"

#include <algorithm>
#include <climits>

namespace kiln::sim {

StrategyResult run_per_request(const Scenario& sc) {
  const Settings& s = sc.settings;
  const elastic::GroupConfig& node = core_group(sc.autoscaler);
  StrategyResult r;
  r.name = "per-request";
  const int nodes = s.per_request_nodes;
  const int64_t slots = static_cast<int64_t>(nodes) * node.slots_per_node;
  r.shape = std::to_string(nodes) + " x " + std::to_string(node.slots_per_node) +
            "-slot on-demand nodes per step, " + std::to_string(s.per_request_bootstrap_ms / 1000) +
            " s bootstrap";
  std::vector<double> waits;
  waits.reserve(sc.workload.size());
  // (when a cluster ends, what it cost): the cost curve books each
  // cluster when it is terminated, as a bill would.
  std::vector<std::pair<int64_t, double>> bills;
  int64_t first = INT64_MAX, last = 0;
  // Clusters up at once: +1 at launch, -1 at termination.
  std::vector<std::pair<int64_t, int>> up;
  for (const Arrival& a : sc.workload) {
    const StepShape sh = shape_of(s, a.tiles);
    const int64_t waves = (sh.partitions + slots - 1) / slots;
    const int64_t start = a.t_ms + s.per_request_bootstrap_ms;
    const int64_t end = start + waves * sh.partition_ms + sh.commit_ms;
    const double cost = nodes * node.price.cost(a.t_ms, end);
    r.cost += cost;
    r.node_hours_on_demand += nodes * static_cast<double>(end - a.t_ms) / 3.6e6;
    waits.push_back(static_cast<double>(s.per_request_bootstrap_ms) / 1000);
    bills.emplace_back(end, cost);
    up.emplace_back(a.t_ms, 1);
    up.emplace_back(end, -1);
    first = std::min(first, a.t_ms);
    last = std::max(last, end);
  }
  r.cost_on_demand = r.cost;
  r.steps = r.completed = static_cast<int64_t>(sc.workload.size());
  r.wait_p50_s = percentile(waits, 50);
  r.wait_p95_s = percentile(waits, 95);
  r.wait_p99_s = percentile(waits, 99);
  r.wait_max_s = percentile(waits, 100);
  r.wait_mean_s = waits.empty() ? 0 : static_cast<double>(s.per_request_bootstrap_ms) / 1000;
  r.makespan_h = sc.workload.empty() ? 0 : static_cast<double>(last - first) / 3.6e6;
  std::sort(up.begin(), up.end());  // a termination (-1) sorts before a launch at the same time
  int clusters = 0, most = 0;
  for (const auto& [t, d] : up) most = std::max(most, clusters += d);
  r.peak_nodes = most * nodes;

  std::sort(bills.begin(), bills.end());
  const int64_t bucket = s.chart_bucket_ms;
  double cumulative = 0;
  size_t i = 0;
  for (int64_t t = bucket; i < bills.size() || t <= last; t += bucket) {
    while (i < bills.size() && bills[i].first <= t) cumulative += bills[i++].second;
    Point p;
    p.t_ms = t;
    p.cost = cumulative;
    r.series.push_back(p);
    if (i == bills.size() && t >= last) break;
  }
  return r;
}

}  // namespace kiln::sim

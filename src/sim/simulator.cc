#include "sim/simulator.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "sim/demand.h"
#include "sim/per_request.h"

namespace kiln::sim {
namespace {

// A fixed cluster: `nodes` of the core group's node type, always on.
elastic::AutoscalerConfig fixed_config(const elastic::AutoscalerConfig& base, int nodes) {
  elastic::AutoscalerConfig c;
  c.period_ms = base.period_ms;
  c.drain_timeout_ms = base.drain_timeout_ms;
  elastic::GroupConfig g = core_group(base);
  g.min_nodes = g.max_nodes = std::max(1, nodes);
  c.groups = {g};
  return c;
}

std::string group_shape(const elastic::AutoscalerConfig& c) {
  std::string shape;
  for (const auto& g : c.groups) {
    if (!shape.empty()) shape += " + ";
    // Piece by piece: GCC 12 at -O3 warns (-Wrestrict, its bug 105651)
    // about "literal" + std::to_string(...).
    shape += g.name + " " + std::to_string(g.min_nodes);
    if (g.max_nodes != g.min_nodes) {
      shape += '-';
      shape += std::to_string(g.max_nodes);
    }
    shape += " x " + std::to_string(g.slots_per_node) + " slots " + elastic::market_name(g.market);
  }
  return shape;
}

}  // namespace

Result<Report> simulate(const Scenario& sc, const SimulateOptions& options) {
  Report r;
  r.scenario = sc.path;
  r.workload = sc.workload_path;
  r.spot = sc.spot_path;
  r.seed = sc.settings.seed;
  r.steps = static_cast<int64_t>(sc.workload.size());
  if (!sc.workload.empty()) {
    r.trace_days = static_cast<double>(sc.workload.back().t_ms - sc.workload.front().t_ms) / 8.64e7;
  }
  const elastic::GroupConfig& core = core_group(sc.autoscaler);
  const DemandSizing demand = size_for_demand(sc, core.slots_per_node);
  r.tasks = demand.tasks;
  r.work_slot_hours = demand.work_slot_hours;
  r.demand_window_s = demand.window_ms / 1000;
  r.peak_slots = demand.peak_slots;
  r.median_slots = demand.median_slots;
  r.peak_nodes = demand.peak_nodes;
  r.median_nodes = demand.median_nodes;
  r.slots_per_node = core.slots_per_node;
  r.chart_bucket_s = sc.settings.chart_bucket_ms / 1000;

  struct Job {
    elastic::AutoscalerConfig config;
    ClusterOptions options;
    std::optional<Result<StrategyResult>> result;
    Profile profile;
  };
  std::vector<Job> jobs;
  auto fixed = [&](const char* name, int nodes) {
    Job j;
    j.config = fixed_config(sc.autoscaler, nodes);
    j.options.name = name;
    j.options.shape = std::to_string(nodes) + " x " + std::to_string(core.slots_per_node) +
                      "-slot on-demand nodes, always on";
    j.options.autoscale = false;
    return j;
  };
  jobs.push_back(fixed("fixed-peak", r.peak_nodes));
  jobs.push_back(fixed("fixed-median", r.median_nodes));
  Job autoscaled;
  autoscaled.config = sc.autoscaler;
  autoscaled.options.name = "autoscaled";
  autoscaled.options.shape = group_shape(sc.autoscaler);
  autoscaled.options.record_dir = options.record_dir;
  jobs.push_back(std::move(autoscaled));
  for (Job& j : jobs) j.profile.enabled = options.profiles != nullptr;

  // Each job has its own store, fleet and generator: which thread runs it,
  // and when, cannot change its result. The autoscaled run is the longest,
  // so it goes first.
  std::atomic<int> next{0};
  const int order[] = {2, 0, 1};
  auto worker = [&]() {
    for (int k; (k = next.fetch_add(1)) < 3;) {
      Job& j = jobs[static_cast<size_t>(order[k])];
      j.result = run_cluster(sc, j.config, j.options, &j.profile);
    }
  };
  const int threads = std::clamp(options.threads, 1, 3);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  r.strategies.push_back(run_per_request(sc));
  for (Job& j : jobs) {
    if (!j.result->is_ok()) return j.result->status().with_context(j.options.name);
    r.strategies.push_back(std::move(*j.result).value());
    if (options.profiles != nullptr) options.profiles->push_back(j.profile);
  }
  return r;
}

}  // namespace kiln::sim

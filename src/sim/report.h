// What `kiln simulate run` reports per strategy, and its three renderings:
// a table for the terminal, JSON for machines, an SVG chart for people.
// Every rendering is a pure function of the report, so the same inputs and
// seed give the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::sim {

// One bucket of a strategy's time series (settings.chart_bucket_ms wide).
struct Point {
  int64_t t_ms = 0;  // the bucket's end
  double cost = 0;   // cumulative, at t_ms
  // Cluster strategies: the highest demand (running + pending tasks, as the
  // autoscaler's samples count them) seen in the bucket, and the ready
  // slots by market when the most slots were ready.
  double demand = 0;
  double on_demand_slots = 0, spot_slots = 0;
};

struct StrategyResult {
  std::string name;   // "per-request", "fixed-peak", "fixed-median", "autoscaled"
  std::string shape;  // the capacity it had, in words
  double cost = 0;
  double cost_on_demand = 0, cost_spot = 0;
  // Step wait: submission -> its first task started, in seconds.
  double wait_p50_s = 0, wait_p95_s = 0, wait_p99_s = 0, wait_max_s = 0, wait_mean_s = 0;
  double makespan_h = 0;  // first arrival -> last step completed
  double node_hours_on_demand = 0, node_hours_spot = 0;
  int peak_nodes = 0;  // most nodes up (booting, ready or draining) at once
  int64_t interruptions = 0;
  // Task time lost when a node went with tasks still running on it (spot
  // deadline, drain timeout): the work was done again elsewhere.
  double redone_task_seconds = 0;
  int64_t steps = 0, completed = 0;
  std::vector<Point> series;
};

struct Report {
  std::string scenario, workload, spot;  // the input files
  uint64_t seed = 0;
  int64_t steps = 0;
  int64_t tasks = 0;
  double trace_days = 0;       // first to last arrival
  double work_slot_hours = 0;  // the trace's work, on one slot
  // The demand the fixed clusters are sized for (demand.h).
  int64_t demand_window_s = 0;
  double peak_slots = 0, median_slots = 0;
  int peak_nodes = 0, median_nodes = 0, slots_per_node = 0;
  int64_t chart_bucket_s = 0;
  std::vector<StrategyResult> strategies;  // per-request, fixed-peak, fixed-median, autoscaled
};

std::string report_table(const Report& r);
nlohmann::json report_json(const Report& r);
std::string report_svg(const Report& r);

// The p-th percentile (0-100) by the nearest-rank method; 0 for no values.
double percentile(std::vector<double> values, double p);

}  // namespace kiln::sim

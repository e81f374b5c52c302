// `kiln simulate`: what a workload would cost and how long its steps would
// wait under four ways of running them, on the same trace.
//
//   per-request    a cluster per step, paying its bootstrap each time
//                  (the old EMR way); modelled in closed form
//   fixed-peak     a warm on-demand cluster sized for the trace's peak
//   fixed-median   a warm on-demand cluster sized for its median demand
//   autoscaled     the scenario's warm core + autoscaled task groups
//
// The last three are discrete-event simulations that drive the real code:
// the job store's scheduling (JobStore::open_in_memory: the same SQL that
// kiln serve runs, on a simulated clock) and the elastic fleet and
// autoscaler (src/elastic) with a simulated node provider. Deterministic
// for a seed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "elastic/autoscaler.h"
#include "sim/trace.h"
#include "store/job_store.h"

namespace kiln::sim {

struct Settings {
  // Environments steps arrive in: concurrency and priority as in kiln.toml.
  std::map<std::string, store::EnvironmentPolicy> environments = {{"production", {256, 10}},
                                                                  {"staging", {64, 0}}};
  double tiles_per_slot_second = 50;  // one slot's ingest rate
  int64_t tiles_per_partition = 2000;
  int max_partitions = 64;
  int64_t commit_ms = 5000;  // the reduce + commit task
  int64_t per_request_bootstrap_ms = 600 * 1000;
  int per_request_nodes = 4;  // nodes of each per-request cluster
  int64_t spot_notice_ms = 120 * 1000;
  double spot_interruptions_per_node_hour = 0;  // when the spot trace gives none
  uint64_t seed = 1;
  int64_t sample_every_ms = 3600 * 1000;  // the chart's resolution
};

struct Scenario {
  elastic::AutoscalerConfig autoscaler;  // groups and policies of the autoscaled strategy
  Settings settings;
  std::vector<Arrival> workload;
  std::vector<SpotPoint> spot;  // empty: spot groups keep their configured price
};

// A scenario TOML: kiln.toml's [[group]] and [autoscaling] tables, plus
// [simulation] (see docs/simulate.md). Trace paths in it are relative to
// the file; the overrides (non-empty) replace them.
Result<Scenario> load_scenario(const std::string& path, const std::string& workload_override,
                               const std::string& spot_override);

struct Point {
  double t_h = 0;     // hours from the start
  double demand = 0;  // running + pending tasks
  double on_demand_slots = 0, spot_slots = 0;
  double cost = 0;  // cumulative
};

struct StrategyResult {
  std::string name;
  std::string shape;  // "1 x 4-slot on-demand core + spot 0-40 x 4 slots"
  double cost = 0;
  double wait_p50_s = 0, wait_p95_s = 0, wait_p99_s = 0;
  double makespan_h = 0;
  double node_hours_on_demand = 0, node_hours_spot = 0;
  int64_t interruptions = 0;
  double redone_task_hours = 0;  // task time lost to interruptions and drains
  int64_t steps = 0, completed = 0;
  std::vector<Point> series;
};

struct Report {
  std::vector<StrategyResult> strategies;
  int64_t steps = 0;
  double trace_days = 0;
  int peak_nodes = 0, median_nodes = 0;
};

Result<Report> simulate(const Scenario& scenario);

std::string report_table(const Report& r);
nlohmann::json report_json(const Report& r);
std::string report_svg(const Report& r);

}  // namespace kiln::sim

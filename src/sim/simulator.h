// `kiln simulate run`: what a workload would cost and how long its steps
// would wait under four ways of providing capacity, on the same trace.
//
//   per-request    a cluster per step, paying its bootstrap each time
//                  (per_request.h; closed form)
//   fixed-peak     a warm on-demand cluster sized for the peak demand
//   fixed-median   a warm on-demand cluster sized for the median demand
//                  (demand.h says how both are measured)
//   autoscaled     the scenario's warm core + autoscaled task groups
//
// The last three run the real job store scheduling and the real fleet and
// autoscaler on a simulated clock (cluster_sim.h). They are independent,
// so they run on separate threads; the report does not depend on how many.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "sim/cluster_sim.h"
#include "sim/report.h"
#include "sim/scenario.h"

namespace kiln::sim {

struct SimulateOptions {
  int threads = 2;  // strategies run at once (>= 1)
  // When set: a timed profile per cluster strategy is appended.
  std::vector<Profile>* profiles = nullptr;
  // When set: the autoscaled strategy's rounds are recorded there
  // (ClusterOptions::record_dir).
  std::string record_dir;
};

Result<Report> simulate(const Scenario& scenario, const SimulateOptions& options = {});

}  // namespace kiln::sim

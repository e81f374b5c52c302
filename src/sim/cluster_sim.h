// A warm cluster on a simulated clock: the fixed strategies and the
// autoscaled one. It drives the code kiln serve runs, not a model of it:
//
// - the job store (JobStore::open_in_memory: the real schema and
//   scheduling SQL): every arrival is submit(), steps start by
//   start_steps(), each ready node is a registered worker that lease()s up
//   to its free slots and complete()s each task when its run time is over;
//   a node that goes is worker_gone(), which sends its leases back to
//   PENDING (the work is done again elsewhere);
// - the fleet and autoscaler (src/elastic): Fleet::start launches the warm
//   groups, every period a ClusterSample built exactly as kiln serve builds
//   it (JobStore::load + the ready nodes' slots) goes to Fleet::reconcile,
//   whose launches and drains reach the simulated NodeProvider here.
//
// A discrete-event loop: a priority queue of (time, sequence) ordered
// events: arrivals, task ends, nodes ready after their group's bootstrap,
// reconcile rounds, spot interruption notices and deadlines, chart points.
// The clock jumps from one event time to the next; after each time's
// events, steps are started and free slots filled once. Deterministic: ties
// go in the order the events were made, and the only randomness (when spot
// nodes are interrupted) comes from a generator seeded by settings.seed.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "elastic/autoscaler.h"
#include "sim/report.h"
#include "sim/scenario.h"

namespace kiln::sim {

struct ClusterOptions {
  std::string name, shape;
  // false: a fixed cluster. Its groups have min = max and no policies, so
  // reconcile rounds could not change it; none are run.
  bool autoscale = true;
  // When set: every autoscaling round is appended to
  // <record_dir>/autoscaler-samples.jsonl and its decisions to
  // autoscaler-decisions.jsonl, in the form kiln serve records them
  // (elastic/json.h), for `kiln simulate replay`.
  std::string record_dir;
};

// Where a run's time went, by call (`kiln simulate run --profile`).
struct Profile {
  enum Call {
    kSubmit,
    kStartSteps,
    kLease,
    kComplete,
    kRegisterWorker,
    kWorkerGone,
    kLoad,
    kStats,
    kFleetReconcile,
    kFleetTick,
    kCallCount
  };
  static const char* name(Call c);
  bool enabled = false;  // time the calls (counts are kept either way)
  int64_t calls[kCallCount] = {};
  int64_t nanos[kCallCount] = {};  // this thread's CPU time in the calls
  int64_t events = 0;
  int64_t tasks_leased = 0;
  double wall_seconds = 0, cpu_seconds = 0;
  std::string strategy;
  std::string format() const;  // a small table
};

// Runs the workload through a cluster with `config`'s groups and policies.
// Spot groups take the spot trace's price when the scenario has one.
Result<StrategyResult> run_cluster(const Scenario& sc, elastic::AutoscalerConfig config,
                                   const ClusterOptions& options, Profile* profile);

}  // namespace kiln::sim

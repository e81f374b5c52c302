// The cluster-per-request strategy (EMR's "a cluster per job"): each step
// launches its own cluster of settings.per_request_nodes on-demand nodes
// (the core group's node type and price), waits the bootstrap delay, runs
// its partitions in waves over the cluster's slots, commits, and the
// cluster is terminated. Nothing is shared, so nothing queues: it is closed
// form, exact for the model, and needs no event loop.
#pragma once

#include "sim/report.h"
#include "sim/scenario.h"

namespace kiln::sim {

StrategyResult run_per_request(const Scenario& sc);

}  // namespace kiln::sim

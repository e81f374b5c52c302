// The one place a ClusterSample (what the autoscaler decides on) is built:
// the store's load plus the fleet's ready capacity. kiln serve's
// ElasticControl and the simulator's ClusterSim both call make_sample, so
// the live/simulated cross-check (`kiln simulate replay`) compares the same
// inputs.
#pragma once

#include <cstdint>
#include <vector>

#include "elastic/capacity.h"
#include "elastic/fleet.h"
#include "store/job_store.h"

namespace kiln::cluster {

// The fleet's half of a sample.
struct Capacity {
  int64_t slots_total = 0;  // of ready nodes
  int64_t slots_busy = 0;   // of ready nodes, at most their slots
  int64_t booting_nodes = 0;
};

// Counts the ready slots and booting nodes among `nodes`.
Capacity capacity_of(const std::vector<elastic::Node>& nodes);

// The sample at now_ms, derived fields filled (elastic::derive).
elastic::ClusterSample make_sample(const store::Load& load, const Capacity& capacity,
                                   int64_t now_ms);

}  // namespace kiln::cluster

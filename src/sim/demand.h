// The demand a workload puts on a cluster, and the fixed sizes it implies.
//
// "Ideal demand" is the number of slots the trace would keep busy if every
// step got all its partitions the moment it arrived (unlimited slots):
// each step holds `partitions` slots for a partition's run time, then one
// slot for its commit. Its instantaneous peak is set by a few seconds in
// which big steps overlap, which no one sizes a cluster for; so the curve
// is averaged over windows (settings.demand_window_ms, default 15 min):
//
//   peak   = the busiest window's average slots
//   median = the work-weighted median: half of the trace's slot-hours
//            run in windows at most this busy, half in busier ones. It is
//            the load a typical unit of work arrives into. (The median
//            over windows would be set by nights and weekends: zero over
//            all windows, a trickle over the windows with any work.)
//
// A fixed cluster gets ceil(slots / slots_per_node) nodes (at least one).
#pragma once

#include <cstdint>
#include <vector>

#include "sim/scenario.h"

namespace kiln::sim {

struct DemandSizing {
  int64_t window_ms = 0;
  double peak_slots = 0, median_slots = 0;
  int peak_nodes = 1, median_nodes = 1;
  double work_slot_hours = 0;  // the whole trace on one slot
  int64_t tasks = 0;           // partition + commit tasks
};

DemandSizing size_for_demand(const Scenario& sc, int slots_per_node);

// The windows' average slots, window k covering [k*w, (k+1)*w).
std::vector<double> windowed_demand(const Scenario& sc, int64_t window_ms);

}  // namespace kiln::sim

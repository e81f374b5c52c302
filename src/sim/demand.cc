#include "sim/demand.h"

#include <algorithm>
#include <cmath>

namespace kiln::sim {
namespace {

// Adds `slots` held over [t0, t1) to the windows it overlaps, in slot-ms.
void add(std::vector<double>* windows, int64_t w, int64_t t0, int64_t t1, double slots) {
  for (int64_t k = t0 / w; k * w < t1; ++k) {
    const int64_t lo = std::max(t0, k * w), hi = std::min(t1, (k + 1) * w);
    if (static_cast<size_t>(k) >= windows->size()) windows->resize(static_cast<size_t>(k) + 1, 0);
    (*windows)[static_cast<size_t>(k)] += slots * static_cast<double>(hi - lo);
  }
}

}  // namespace

std::vector<double> windowed_demand(const Scenario& sc, int64_t window_ms) {
  std::vector<double> windows;
  for (const Arrival& a : sc.workload) {
    const StepShape sh = shape_of(sc.settings, a.tiles);
    const int64_t commit_at = a.t_ms + sh.partition_ms;
    add(&windows, window_ms, a.t_ms, commit_at, static_cast<double>(sh.partitions));
    add(&windows, window_ms, commit_at, commit_at + sh.commit_ms, 1);
  }
  for (double& v : windows) v /= static_cast<double>(window_ms);
  return windows;
}

DemandSizing size_for_demand(const Scenario& sc, int slots_per_node) {
  DemandSizing d;
  d.window_ms = sc.settings.demand_window_ms;
  for (const Arrival& a : sc.workload) {
    const StepShape sh = shape_of(sc.settings, a.tiles);
    d.work_slot_hours += static_cast<double>(sh.slot_ms()) / 3.6e6;
    d.tasks += sh.partitions + 1;
  }
  std::vector<double> windows = windowed_demand(sc, d.window_ms);
  std::sort(windows.begin(), windows.end());
  double total = 0;
  for (double v : windows) total += v;
  double below = 0;
  for (double v : windows) {
    d.peak_slots = std::max(d.peak_slots, v);
    below += v;
    if (d.median_slots == 0 && below * 2 >= total && v > 0) d.median_slots = v;
  }
  auto nodes = [&](double slots) {
    return std::max(1, static_cast<int>(std::ceil(slots / slots_per_node - 1e-9)));
  };
  d.peak_nodes = nodes(d.peak_slots);
  d.median_nodes = nodes(d.median_slots);
  return d;
}

}  // namespace kiln::sim

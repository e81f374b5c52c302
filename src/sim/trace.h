// Inputs of `kiln simulate`: a workload trace (step arrivals) and a spot
// trace (price and interruption rate over time). CSV with a header line;
// errors name the file and line.
//
//   workload:  arrival_s,environment,tiles        (seconds from the start)
//   spot:      t_s,price_per_hour,interruptions_per_node_hour
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "elastic/capacity.h"

namespace kiln::sim {

struct Arrival {
  int64_t t_ms = 0;
  std::string environment;
  int64_t tiles = 0;
};

struct SpotPoint {
  int64_t t_ms = 0;
  double price_per_hour = 0;
  double interruptions_per_node_hour = 0;
};

// Arrivals sorted by time.
Result<std::vector<Arrival>> read_workload(const std::string& path);
Result<std::vector<SpotPoint>> read_spot_trace(const std::string& path);

// The spot price as a PriceTrace; the interruption rate at a time.
elastic::PriceTrace spot_prices(const std::vector<SpotPoint>& points);
double interruption_rate(const std::vector<SpotPoint>& points, int64_t t_ms);

}  // namespace kiln::sim

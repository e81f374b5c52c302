// The traces `kiln simulate` reads: a workload (step arrivals) and a spot
// market (price and interruption rate over time). Each is CSV with a header
// line, or JSON lines (one object per line); docs/simulate.md has the
// formats. Errors name the file and the line.
//
//   workload CSV:  arrival_s,environment,tiles
//   workload JSON: {"arrival_s": 3600.5, "environment": "production", "tiles": 8000}
//   spot CSV:      t_s,price_per_hour[,interruptions_per_node_hour]
//   spot JSON:     {"t_s": 0, "price_per_hour": 0.13, "interruptions_per_node_hour": 0.02}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "elastic/capacity.h"

namespace kiln::sim {

struct Arrival {
  int64_t t_ms = 0;  // from the start of the trace
  std::string environment;
  int64_t tiles = 0;  // >= 1
  int64_t line = 0;   // in the trace file, for messages
};

struct SpotPoint {
  int64_t t_ms = 0;
  double price_per_hour = 0;
  // < 0: the trace does not say (the scenario's rate applies).
  double interruptions_per_node_hour = -1;
};

// Arrivals in time order (ties keep the file's order). JSON lines when the
// file name ends in .jsonl/.ndjson/.json or its first data line starts
// with '{'; CSV otherwise. kNotFound for an unreadable file, kInvalidArgument
// naming "<path>:<line>" for a bad line.
Result<std::vector<Arrival>> read_workload(const std::string& path);
// Points in time order; same rules.
Result<std::vector<SpotPoint>> read_spot_trace(const std::string& path);

// The spot price as a step function over the points (the first price holds
// before the first point). REQUIRES: points not empty.
elastic::PriceTrace spot_prices(const std::vector<SpotPoint>& points);

// The interruption rate per node-hour in force at t: the trace's, where it
// gives one, else `fallback`.
double interruption_rate(const std::vector<SpotPoint>& points, int64_t t_ms, double fallback);

}  // namespace kiln::sim

// A `kiln simulate` scenario: the instance groups and autoscaling policies
// of the autoscaled strategy (kiln.toml's own [[group]] and [autoscaling]
// tables, read by elastic::parse_autoscaler_config), the [simulation]
// table that describes the work and the other strategies, and the traces.
// docs/simulate.md documents every key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

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
  int64_t commit_ms = 5000;                       // the reduce + commit task
  int64_t per_request_bootstrap_ms = 600 * 1000;  // EMR: ~10 min to a running cluster
  int per_request_nodes = 4;                      // of the core group's node type
  int64_t starvation_ms = 30 * 1000;              // kiln.toml's scheduler.starvation_seconds
  int64_t spot_notice_ms = 120 * 1000;
  double spot_interruptions_per_node_hour = 0;  // where the spot trace gives no rate
  int64_t demand_window_ms = 900 * 1000;        // peak/median demand averaging window
  int64_t chart_bucket_ms = 3600 * 1000;        // one point of the chart's series
  uint64_t seed = 1;
};

struct Scenario {
  std::string path;                      // the scenario file, for messages
  elastic::AutoscalerConfig autoscaler;  // groups and policies of the autoscaled strategy
  Settings settings;
  std::string workload_path, spot_path;  // as read ("" when no spot trace)
  std::vector<Arrival> workload;
  std::vector<SpotPoint> spot;  // empty: spot groups keep their configured price
};

// Reads the scenario TOML and its traces. Trace paths in the file are
// relative to it; non-empty overrides replace them. Errors name the file,
// the line and the key ("month.toml:57: simulation.seed: ...").
Result<Scenario> load_scenario(const std::string& path, const std::string& workload_override,
                               const std::string& spot_override);

// How the job store would cut a step of `tiles` into tasks, and how long
// each runs on one slot.
struct StepShape {
  int64_t partitions = 1;
  int64_t partition_ms = 1;  // each partition task
  int64_t commit_ms = 0;
  int64_t slot_ms() const { return partitions * partition_ms + commit_ms; }
};
StepShape shape_of(const Settings& s, int64_t tiles);

// The group the fixed and per-request strategies take their node type and
// on-demand price from: the core group.
const elastic::GroupConfig& core_group(const elastic::AutoscalerConfig& c);

}  // namespace kiln::sim

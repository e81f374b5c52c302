// A short memory of the cluster's capacity and demand for the web console's
// chart (docs/console.md, "Cluster"): every kSampleMs the scheduler's tick
// records the live slots, the busy slots and each environment's queued
// tasks; the last kKeepSamples (six hours) are kept in memory and lost on
// restart (the autoscaler's own samples, when it runs, are on disk in the
// state directory). GET /v1/cluster/history shows an environment the
// cluster's slots and its own queue only, like GET /v1/cluster.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/mutex.h"
#include "common/status.h"
#include "server/core_names.h"

namespace kiln::server {

class ClusterHistory {
 public:
  static constexpr int64_t kSampleMs = 10'000;
  static constexpr size_t kKeepSamples = 6 * 360;

  // What a sample reads: the cluster as `env` sees it (StepService::cluster).
  using Source = std::function<Result<ClusterInfo>(const EnvironmentConfig& env)>;

  ClusterHistory(const ServerConfig& config, Source source)
      : config_(config), source_(std::move(source)) {}

  // Takes a sample when kSampleMs have passed since the last one (the
  // scheduler calls it at the end of each pass). Thread-safe.
  void tick(int64_t now_ms) EXCLUDES(mu_);

  // {"interval_seconds", "samples": [[t_ms, slots_total, slots_busy,
  // queued_tasks of `env`], ...]}, oldest first. Thread-safe.
  nlohmann::json to_json(const EnvironmentConfig& env) const EXCLUDES(mu_);

 private:
  struct Sample {
    int64_t t_ms = 0;
    int64_t slots_total = 0;
    int64_t slots_busy = 0;
    std::vector<int64_t> queued;  // by index of config_.environments
  };

  const ServerConfig& config_;
  const Source source_;
  mutable Mutex mu_;
  int64_t last_ms_ GUARDED_BY(mu_) = -1;
  std::deque<Sample> samples_ GUARDED_BY(mu_);
};

}  // namespace kiln::server

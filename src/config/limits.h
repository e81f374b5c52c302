// Bounds that the config file, the cluster core and the API doors all
// enforce. One definition each, so a door cannot accept what the core or a
// restart with the same value in kiln.toml would refuse.
#pragma once

#include <cstdint>

namespace kiln::config {

// Steps of one environment RUNNING (or CANCEL_PENDING) at once.
inline constexpr int kMinConcurrency = 1;
inline constexpr int kMaxConcurrency = 256;
// Task slots of one node, and nodes of the fixed pool ([executor]).
inline constexpr int kMaxSlotsPerNode = 256;
inline constexpr int kMaxExecutorWorkers = 256;
// Partitions a step is planned into at most (PlanOptions::threads).
inline constexpr int kMaxPlanThreads = 256;
// Characters of a step's name.
inline constexpr int kMaxStepNameLength = 256;
// Steps per list page.
inline constexpr int kMaxListLimit = 1000;
// A wait for a step's end: the default and the longest a request may ask.
inline constexpr int64_t kDefaultWaitSeconds = 30;
inline constexpr int64_t kMaxWaitSeconds = 300;
// Bytes of a step's log returned by one read.
inline constexpr int64_t kMaxLogChunkBytes = 4 << 20;

// Per-environment quotas ([[environment]] requests_per_second,
// request_burst, max_pending_steps). The rate matches [emr]'s per-key
// default, which bench/emr_bench.py's 7,000 DescribeStep calls/s need; the
// PENDING bound keeps a tenant from queueing work without end.
inline constexpr double kDefaultRequestsPerSecond = 10000;
inline constexpr double kDefaultRequestBurst = 10000;
inline constexpr int64_t kDefaultMaxPendingSteps = 1000;
inline constexpr int64_t kMaxMaxPendingSteps = 1000000;

}  // namespace kiln::config

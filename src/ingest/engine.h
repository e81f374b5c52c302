// The local ingest engine: plan, run every partition on a pool of threads,
// reduce, and publish the version atomically. What `kiln ingest` runs; the
// cluster runs the same pieces (run_partition, run_reduce) as tasks.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/cancel.h"
#include "common/status.h"
#include "ingest/definition.h"
#include "ingest/plan.h"
#include "ingest/progress.h"

namespace kiln::ingest {

struct IngestOptions {
  int threads = 0;                      // 0: one per core
  Progress* progress = nullptr;         // optional; updated as work completes
  const CancelToken* cancel = nullptr;  // optional
};

struct IngestSummary {
  std::string environment;
  std::string layer;
  std::string layer_dir;  // <catalog>/<env>/<layer>
  int version = 0;
  int64_t tiles = 0;
  uint64_t bytes = 0;
  int min_zoom = 0;
  int max_zoom = 0;
  int64_t partitions = 0;
  std::string format;         // the tiles' extension: "png", "webp" or "tif"
  std::string format_choice;  // why, when the definition left it open (plan.h)
  nlohmann::json metadata;
};

// Threads to use for `requested` (0 = hardware concurrency).
int resolve_threads(int requested);

// Runs one ingest end to end. On any failure (or cancel) nothing is
// published: the staging directory is removed and the previous version, if
// any, stays current. Errors carry the culprit's name.
Result<IngestSummary> run_ingest(const IngestDefinition& def, const IngestOptions& options);

}  // namespace kiln::ingest

// Planner: how the cluster core learns, at submit, what a definition's
// ingest amounts to (partitions, tiles) without running it. Planning opens
// the tenant's sources, so it sits behind this seam: today LocalPlanner
// plans in the server process (ingest::make_plan); a sandboxed planner can
// take its place without the core changing.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "ingest/definition.h"

namespace kiln::cluster {

struct PlanSummary {
  int64_t partitions = 0;
  int64_t tiles_total = 0;
};

class Planner {
 public:
  virtual ~Planner() = default;
  // kInvalidArgument/kInputError naming what cannot run (a source that
  // cannot be opened, an empty intersection, ...). Thread-safe.
  virtual Result<PlanSummary> plan(const ingest::IngestDefinition& def, int threads) = 0;
};

// ingest::make_plan in this process.
class LocalPlanner final : public Planner {
 public:
  Result<PlanSummary> plan(const ingest::IngestDefinition& def, int threads) override;
};

}  // namespace kiln::cluster

#include "cluster/planner.h"

#include "ingest/plan.h"

namespace kiln::cluster {

Result<PlanSummary> LocalPlanner::plan(const ingest::IngestDefinition& def, int threads) {
  KILN_ASSIGN_OR_RETURN(ingest::Plan plan, ingest::make_plan(def, ingest::PlanOptions{threads}));
  return PlanSummary{static_cast<int64_t>(plan.partitions.size()), plan.total_tiles()};
}

}  // namespace kiln::cluster

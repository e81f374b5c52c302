// The reduce step: levels below the partitions' top (min_zoom..top_zoom-1),
// built depth-first from the partitions' top tiles, so memory stays at a
// few tiles per level however many partitions there are.
#pragma once

#include <map>
#include <vector>

#include "catalog/catalog.h"
#include "common/cancel.h"
#include "ingest/partition.h"
#include "ingest/plan.h"
#include "ingest/progress.h"

namespace kiln::ingest {

// Builds and writes the levels below top_zoom; returns what it wrote, by
// zoom. `results` are the partitions' (any order).
Result<std::map<int, LevelResult>> run_reduce(const Plan& plan,
                                              const std::vector<PartitionResult>& results,
                                              catalog::LayerWriter* writer, Progress* progress,
                                              const CancelToken& cancel);

}  // namespace kiln::ingest

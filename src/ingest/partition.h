// Running one partition of a plan: warp its sources into its region at max
// zoom, mosaic them, and write every non-empty tile of the levels it owns
// (max_zoom..top_zoom), building each level in memory from the one below.
// A partition's output depends only on the plan and the sources, so a re-run
// rewrites the same tiles byte for byte.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "common/cancel.h"
#include "common/status.h"
#include "ingest/plan.h"
#include "ingest/progress.h"
#include "raster/band_stats.h"
#include "raster/warp.h"

namespace kiln::ingest {

// Tiles written at one zoom, with their key bounds and bytes.
struct LevelResult {
  int64_t tiles = 0;
  uint64_t bytes = 0;
  TileRange range;  // empty when tiles == 0
  void add(int64_t x, int64_t y, uint64_t nbytes);
  void merge(const LevelResult& o);
};

struct PartitionResult {
  int64_t index = 0;
  std::vector<BandStats> stats;       // max zoom, per output band
  std::map<int, LevelResult> levels;  // by zoom
  bool has_partial = false;           // left its top tile for the reduce
};

nlohmann::json to_json(const PartitionResult& r);
Result<PartitionResult> partition_result_from_json(const nlohmann::json& j);

// Per-thread open sources, kept across the partitions a thread runs.
class SourceCache {
 public:
  explicit SourceCache(const Plan& plan) : plan_(plan) {}
  Result<WarpSource*> get(int source_index);

 private:
  const Plan& plan_;
  std::map<int, std::unique_ptr<WarpSource>> open_;
};

// Where the partition with top tile (x, y) leaves it for the reduce.
std::string partial_path(int64_t x, int64_t y);

// Runs partition `index` of `plan`, writing through `writer` (thread-safe)
// and counting into `progress`. Returns kCancelled if `cancel` fires.
Result<PartitionResult> run_partition(const Plan& plan, int64_t index, catalog::LayerWriter* writer,
                                      SourceCache* sources, Progress* progress,
                                      const CancelToken& cancel);

// Writes one tile (encode + store); shared by partitions and the reduce.
Status write_tile(const Plan& plan, const TileKey& key, const Raster& tile,
                  catalog::LayerWriter* writer, LevelResult* level, Progress* progress);

}  // namespace kiln::ingest

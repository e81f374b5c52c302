#include "ingest/reduce.h"

#include <optional>
#include <set>

#include "raster/pyramid.h"
#include "raster/raster_blob.h"

namespace kiln::ingest {
namespace {

struct Reducer {
  const Plan& plan;
  std::set<std::pair<int64_t, int64_t>> partials;  // top tiles that exist
  // Per zoom below the top: the tiles with at least one partial under them,
  // so the descent never visits empty subtrees.
  std::map<int, std::set<std::pair<int64_t, int64_t>>> occupied;
  catalog::LayerWriter* writer;
  Progress* progress;
  const CancelToken& cancel;
  std::map<int, LevelResult> levels;

  // Returns tile (z, x, y) built from its descendants, or nullopt if none
  // has data. Writes it when z < top_zoom.
  Result<std::optional<Raster>> build(int z, int64_t x, int64_t y) {
    if (cancel.cancelled()) return cancelled("interrupted; nothing was published");
    if (z < plan.top_zoom && !occupied[z].count({x, y})) return std::optional<Raster>();
    if (z == plan.top_zoom) {
      if (!partials.count({x, y})) return std::optional<Raster>();
      KILN_ASSIGN_OR_RETURN(std::string bytes, writer->read_file(partial_path(x, y)));
      KILN_ASSIGN_OR_RETURN(Raster r, deserialize_raster(bytes));
      return std::optional<Raster>(std::move(r));
    }
    const int ts = plan.grid.tile_size();
    Raster quad(2 * ts, 2 * ts, plan.bands, plan.cell_type);
    bool any = false;
    for (int dy = 0; dy < 2; ++dy) {
      for (int dx = 0; dx < 2; ++dx) {
        KILN_ASSIGN_OR_RETURN(auto child, build(z + 1, 2 * x + dx, 2 * y + dy));
        if (!child) continue;
        paste(*child, dx * ts, dy * ts, &quad);
        any = true;
      }
    }
    if (!any) return std::optional<Raster>();
    fill_invalid(&quad, plan.nodata);
    Raster tile = downsample_2x(quad, plan.def.output.pyramid_resample, plan.nodata);
    if (!tile.any_valid()) return std::optional<Raster>();
    LevelResult& lr = levels[z];
    lr.range.z = z;
    KILN_RETURN_IF_ERROR(write_tile(plan, {z, x, y}, tile, writer, &lr, progress));
    progress->tiles_done.fetch_add(1, std::memory_order_relaxed);
    return std::optional<Raster>(std::move(tile));
  }
};

}  // namespace

Result<std::map<int, LevelResult>> run_reduce(const Plan& plan,
                                              const std::vector<PartitionResult>& results,
                                              catalog::LayerWriter* writer, Progress* progress,
                                              const CancelToken& cancel) {
  Reducer r{plan, {}, {}, writer, progress, cancel, {}};
  if (plan.top_zoom == plan.min_zoom) return r.levels;
  for (const PartitionResult& pr : results) {
    if (!pr.has_partial) continue;
    const TileKey& k = plan.partitions.at(pr.index).region;
    r.partials.emplace(k.x, k.y);
  }
  for (int z = plan.min_zoom; z < plan.top_zoom; ++z) {
    const int s = plan.top_zoom - z;
    for (auto [x, y] : r.partials) r.occupied[z].emplace(x >> s, y >> s);
  }
  const std::set<std::pair<int64_t, int64_t>>& roots = r.occupied[plan.min_zoom];
  int64_t planned = 0;
  for (const auto& l : plan.levels)
    if (l.zoom < plan.top_zoom) planned += l.tiles;
  for (auto [x, y] : roots) {
    KILN_ASSIGN_OR_RETURN(auto tile, r.build(plan.min_zoom, x, y));
    (void)tile;
  }
  int64_t written = 0;
  for (const auto& [z, l] : r.levels) written += l.tiles;
  if (planned > written) progress->tiles_done.fetch_add(planned - written);
  KILN_RETURN_IF_ERROR(writer->remove("_partials"));
  return r.levels;
}

}  // namespace kiln::ingest

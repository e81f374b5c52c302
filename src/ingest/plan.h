// The plan: from a definition and the sources' metadata to the exact work of
// an ingest. Sources are opened for metadata only; no pixel is read.
//
// Work is cut into partitions: a partition is one tile at `region_zoom`, i.e.
// a 2^d x 2^d block of max-zoom tiles, whose levels max_zoom..top_zoom it
// builds by itself. Partitions are ordered along a space-filling curve, so
// neighbours in the list are neighbours on the ground. Levels below
// top_zoom are built by the reduce step from the partitions' top tiles.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "ingest/definition.h"
#include "raster/source.h"
#include "raster/tile_grid.h"

namespace kiln::ingest {

struct SourcePlan {
  SourceDef def;
  SourceInfo info;
  std::vector<BandMap> bands;  // resolved: one entry per read band, same order as info.bands
  Bounds bounds;               // footprint envelope in the layer CRS
};

struct PartitionPlan {
  int64_t index = 0;         // position along the curve
  TileKey region;            // the partition's tile at region_zoom
  std::vector<int> sources;  // indices into Plan::sources that reach it
  int64_t tiles = 0;         // planned tiles at levels max_zoom..top_zoom (upper bound)
  uint64_t read_bytes = 0;   // estimated decoded source bytes
};

struct LevelPlan {
  int zoom = 0;
  int64_t tiles = 0;      // planned tiles (upper bound: empty tiles are not written)
  TileRange range;        // key bounds of the planned tiles
  double resolution = 0;  // layer units per pixel
};

struct Plan {
  IngestDefinition def;
  TileGrid grid = TileGrid::web_mercator(256);
  int min_zoom = 0;
  int max_zoom = 0;
  int native_zoom = 0;  // the max zoom the sources' resolution gives (the default)
  int region_zoom = 0;  // partitions are tiles of this zoom
  int top_zoom = 0;     // max(region_zoom, min_zoom): the partitions' top level
  CellType cell_type = CellType::kUInt8;
  int bands = 0;
  std::optional<double> nodata;
  std::vector<std::string> band_names;
  std::vector<SourcePlan> sources;
  std::vector<PartitionPlan> partitions;
  std::vector<LevelPlan> levels;  // min_zoom..max_zoom
  Bounds extent;                  // layer CRS
  std::optional<std::array<double, 4>> wgs84;
  uint64_t read_bytes = 0;

  int64_t total_tiles() const {
    int64_t n = 0;
    for (const auto& l : levels) n += l.tiles;
    return n;
  }
  // Side, in pixels, of a partition's region at max zoom.
  int region_pixels() const { return grid.tile_size() << (max_zoom - region_zoom); }
};

struct PlanOptions {
  int threads = 1;  // partitions are cut small enough to keep this many busy
};

// Opens the sources, checks them against the definition, and plans the
// work. Errors name the source, band or field at fault.
Result<Plan> make_plan(const IngestDefinition& def, const PlanOptions& options);

// The zoom gdal2tiles picks for a pixel size (its ZoomForPixelSize): the
// finest zoom whose resolution is not finer than `pixel_size`.
int zoom_for_pixel_size(double pixel_size, int tile_size);

// How many zoom levels past the sources' resolution a plan may go before
// plan_warnings speaks up: one or two finer levels are a common choice (a
// smoother look when zoomed in); each further level quadruples the tiles and
// adds no detail.
inline constexpr int kOversampleLevelsWarned = 2;

// What a person should know before running the plan: today, a max zoom more
// than kOversampleLevelsWarned levels finer than the sources' resolution,
// with the tiles it costs. Empty when nothing is amiss.
std::vector<std::string> plan_warnings(const Plan& plan);

// The format "auto" picks: png for 1 or 3 bands of uint8, tif for any
// other cell type or band count (png could hold uint16 too, but a viewer
// would show its raw values; tif keeps them georeferenced, with nodata).
bool auto_format_is_png(CellType type, int bands);

// Why make_plan chose the tile format when the definition left it open
// ("png (the default; it holds 3 bands of uint8)", "tif (picked: the
// default png is for 1 or 3 bands of uint8, not 6 bands of uint8)"); ""
// when the definition named the format.
std::string format_choice(const Plan& plan);

// A JSON summary for `kiln plan --json` (with "warnings").
nlohmann::json plan_to_json(const Plan& plan);

}  // namespace kiln::ingest

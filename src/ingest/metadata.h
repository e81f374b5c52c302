// Layer metadata: the JSON document published with each version
// (docs/catalog.md lists the fields), and the GDAL description of the layer.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ingest/partition.h"
#include "ingest/plan.h"

namespace kiln::ingest {

// `levels` are the tiles actually written per zoom; `sha256` per source
// (nullopt where not computed).
nlohmann::json build_metadata(const Plan& plan, const std::vector<PartitionResult>& partitions,
                              const std::map<int, LevelResult>& levels,
                              const std::vector<std::optional<std::string>>& sha256);

// The part of a layer's grid layer.xml shows: at max zoom, tiles
// tile_x..tile_x+tiles_x-1 and tile_y..tile_y+tiles_y-1. GDAL's WMS driver
// reads overview n from tile (tile_x >> n, tile_y >> n) of zoom max - n,
// so the window's corner is aligned to 2^overviews tiles; `overviews` is
// as many levels as keep that alignment within one window's width of the
// data (at most `levels_below`), which leaves the smallest overview a few
// tiles wide.
struct WmsWindow {
  int64_t tile_x = 0, tile_y = 0;
  int64_t tiles_x = 1, tiles_y = 1;
  int overviews = 0;
};
WmsWindow wms_window(const TileRange& max_zoom_tiles, int levels_below);

// A GDAL WMS (TMS minidriver) XML that opens the layer's current version at
// `current_dir` with gdal.Open / QGIS. Web Mercator and floating grids alike.
// Its DataWindow is wms_window's (the layer's extent at max zoom, not the
// whole grid) and it carries the layer's nodata (DataValues), so GDAL's
// statistics leave nodata out.
std::string gdal_wms_xml(const Plan& plan, const std::string& current_dir);

}  // namespace kiln::ingest

// What the tile door reads from a request and from a version's
// metadata.json, as plain values: a layer reference ("ortho" or
// "ortho@3"), a tile address ("5"/"17"/"11.png"), the tile's ETag and the
// If-None-Match check, and whether a tile lies inside the layer's extent.
// Pure functions over strings; no file is opened here (tiles_api.cc does
// that, beneath the version directory, without following symlinks).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace kiln::server {

// The largest version number a catalog names (versions/vNNNNNN).
inline constexpr int kMaxLayerVersion = 999999;
// The deepest zoom the tile door answers (2^30 tiles a side: x and y fit
// int64 with room, and no catalog grid goes deeper).
inline constexpr int kMaxTileZoom = 30;

struct LayerRef {
  std::string layer;
  std::optional<int> version;  // nullopt: the current version
};

// "name" or "name@N" (N: 1-999999, decimal, no sign or leading zero).
// kInvalidArgument naming the segment otherwise, including a layer name
// catalog::validate_name refuses.
Result<LayerRef> parse_layer_ref(std::string_view segment);

struct TileAddress {
  int z = 0;
  int64_t x = 0, y = 0;
  std::string ext;  // "png", "webp" or "tif"
};

// z, x and "y.ext" of /tiles/{z}/{x}/{y}.{ext}: decimal digits only (no
// sign, no leading zero, no spaces), z <= kMaxTileZoom, x and y below
// 2^z, ext one of png, webp, tif. kInvalidArgument naming the part
// otherwise.
Result<TileAddress> parse_tile_address(std::string_view z, std::string_view x,
                                       std::string_view y_ext);

// The version a `current` symlink's target names ("versions/v000003" ->
// 3); nullopt for anything else (an absolute or escaping target).
std::optional<int> version_of_link(std::string_view target);
// "v000003" for 3.
std::string version_dir_name(int version);

// A strong ETag for a tile of a version: names the version and the
// version's commit time (a layer removed and ingested again restarts at
// version 1, with another time), and the tile. Quoted, as sent.
std::string tile_etag(int version, std::string_view created_at, const TileAddress& t);
// An ETag for a whole document of a version (tilejson, metadata).
std::string version_etag(std::string_view what, int version, std::string_view created_at);

// Whether an If-None-Match header value matches `etag` (RFC 9110 13.1.2:
// "*", or a comma-separated list compared weakly, so W/"x" matches "x").
bool if_none_match(std::string_view header, std::string_view etag);

// The range of tiles present at one zoom (metadata.json levels[]).
struct LevelExtent {
  int zoom = 0;
  bool empty = true;
  int64_t min_x = 0, min_y = 0, max_x = -1, max_y = -1;
};

// A version's metadata.json as the tile door uses it.
struct LayerInfo {
  int version = 0;
  std::string created_at;
  std::string format;  // the tiles' extension: png, webp, tif
  std::string layout;  // zoomed, floating
  int tile_size = 256;
  int min_zoom = 0, max_zoom = 0;
  std::vector<LevelExtent> levels;
  std::optional<std::array<double, 4>> wgs84;      // west, south, east, north
  std::optional<std::array<double, 4>> layer_crs;  // min x, min y, max x, max y
  nlohmann::json metadata;                         // the whole document

  bool zoomed() const { return layout == "zoomed"; }
  // Whether tile z/x/y lies inside the tiles the version holds at z (its
  // levels[] range): a missing tile inside answers 204, outside 404.
  bool inside(int z, int64_t x, int64_t y) const;
};

// Reads the fields above from metadata.json's text; kInternal naming the
// field when the document is not what a Kiln ingest writes.
Result<LayerInfo> parse_layer_info(std::string_view text);

}  // namespace kiln::server

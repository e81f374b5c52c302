// TileGrid: the quadtree of tiles a layer is cut into.
//
// Two layouts share one shape: zoom z has 2^z x 2^z tile slots of
// tile_size x tile_size pixels, x grows east, y grows south from the top-left
// corner, and each tile's four children at z+1 halve its pixel size.
//   web mercator: EPSG:3857, GoogleMapsCompatible (XYZ) origin and extent.
//   floating:     the sources' own CRS and pixel size at max zoom, origin at
//                 the top-left corner of the layer; only the slots covering the
//                 layer's pixels exist.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace kiln {

struct Bounds {
  double min_x = 0, min_y = 0, max_x = 0, max_y = 0;
  double width() const { return max_x - min_x; }
  double height() const { return max_y - min_y; }
  bool empty() const { return !(max_x > min_x && max_y > min_y); }
};

struct TileKey {
  int z = 0;
  int64_t x = 0;
  int64_t y = 0;
  bool operator==(const TileKey&) const = default;
};

// Inclusive range of tile columns/rows at one zoom.
struct TileRange {
  int z = 0;
  int64_t min_x = 0, min_y = 0, max_x = -1, max_y = -1;
  bool empty() const { return max_x < min_x || max_y < min_y; }
  int64_t count() const { return empty() ? 0 : (max_x - min_x + 1) * (max_y - min_y + 1); }
};

class TileGrid {
 public:
  // Half the width of the Web Mercator square, in metres (EPSG:3857).
  static constexpr double kWebMercatorHalf = 20037508.342789244;
  // Latitude where the Web Mercator square ends.
  static constexpr double kWebMercatorMaxLat = 85.051128779806604;

  static TileGrid web_mercator(int tile_size);
  // REQUIRES: res_x, res_y > 0; width_px, height_px >= 1 (pixels at max_zoom).
  static TileGrid floating(double origin_x, double origin_y, double res_x, double res_y,
                           int64_t width_px, int64_t height_px, int max_zoom, int tile_size,
                           std::string crs_wkt);
  // The smallest max zoom at which a floating grid of this many pixels has
  // one tile at zoom 0.
  static int floating_levels(int64_t width_px, int64_t height_px, int tile_size);

  bool is_web_mercator() const { return web_mercator_; }
  int tile_size() const { return tile_size_; }
  const std::string& crs_wkt() const { return crs_wkt_; }
  double origin_x() const { return origin_x_; }
  double origin_y() const { return origin_y_; }

  // Layer units per pixel at zoom z.
  double resolution_x(int z) const;
  double resolution_y(int z) const;
  // Tile slots that exist at zoom z.
  int64_t matrix_width(int z) const;
  int64_t matrix_height(int z) const;

  Bounds tile_bounds(const TileKey& key) const;
  // Geotransform of a raster whose top-left pixel is the top-left pixel of
  // tile (z, x, y) and whose pixels have zoom z's size.
  std::array<double, 6> geotransform(int z, int64_t x, int64_t y) const;
  // Tiles at zoom z that intersect `b` with positive area, clamped to the
  // matrix; empty if none.
  TileRange tiles_covering(int z, const Bounds& b) const;

 private:
  TileGrid() = default;
  bool web_mercator_ = true;
  int tile_size_ = 256;
  int max_zoom_ = 0;  // floating only
  double origin_x_ = -kWebMercatorHalf, origin_y_ = kWebMercatorHalf;
  double res_x0_ = 0, res_y0_ = 0;        // resolution at zoom 0
  int64_t width_px_ = 0, height_px_ = 0;  // floating only: pixels at max zoom
  std::string crs_wkt_;
};

}  // namespace kiln

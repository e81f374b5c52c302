#include "raster/tile_grid.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include <ogr_spatialref.h>

namespace kiln {

TileGrid TileGrid::web_mercator(int tile_size) {
  TileGrid g;
  g.web_mercator_ = true;
  g.tile_size_ = tile_size;
  g.res_x0_ = g.res_y0_ = 2 * kWebMercatorHalf / tile_size;
  OGRSpatialReference srs;
  srs.importFromEPSG(3857);
  char* wkt = nullptr;
  srs.exportToWkt(&wkt);
  g.crs_wkt_ = wkt ? wkt : "";
  CPLFree(wkt);
  return g;
}

TileGrid TileGrid::floating(double origin_x, double origin_y, double res_x, double res_y,
                            int64_t width_px, int64_t height_px, int max_zoom, int tile_size,
                            std::string crs_wkt) {
  assert(res_x > 0 && res_y > 0 && width_px > 0 && height_px > 0);
  TileGrid g;
  g.web_mercator_ = false;
  g.tile_size_ = tile_size;
  g.max_zoom_ = max_zoom;
  g.origin_x_ = origin_x;
  g.origin_y_ = origin_y;
  g.res_x0_ = std::ldexp(res_x, max_zoom);
  g.res_y0_ = std::ldexp(res_y, max_zoom);
  g.width_px_ = width_px;
  g.height_px_ = height_px;
  g.crs_wkt_ = std::move(crs_wkt);
  return g;
}

int TileGrid::floating_levels(int64_t width_px, int64_t height_px, int tile_size) {
  int z = 0;
  int64_t span = tile_size;
  while (span < std::max(width_px, height_px)) {
    span *= 2;
    ++z;
  }
  return z;
}

double TileGrid::resolution_x(int z) const { return std::ldexp(res_x0_, -z); }
double TileGrid::resolution_y(int z) const { return std::ldexp(res_y0_, -z); }

int64_t TileGrid::matrix_width(int z) const {
  if (web_mercator_) return int64_t{1} << z;
  // Tiles at z cover tile_size * 2^(max_zoom - z) max-zoom pixels each.
  int64_t span = static_cast<int64_t>(tile_size_) << std::max(0, max_zoom_ - z);
  return std::max<int64_t>(1, (width_px_ + span - 1) / span);
}

int64_t TileGrid::matrix_height(int z) const {
  if (web_mercator_) return int64_t{1} << z;
  int64_t span = static_cast<int64_t>(tile_size_) << std::max(0, max_zoom_ - z);
  return std::max<int64_t>(1, (height_px_ + span - 1) / span);
}

Bounds TileGrid::tile_bounds(const TileKey& k) const {
  double sx = resolution_x(k.z) * tile_size_;
  double sy = resolution_y(k.z) * tile_size_;
  Bounds b;
  b.min_x = origin_x_ + k.x * sx;
  b.max_x = origin_x_ + (k.x + 1) * sx;
  b.max_y = origin_y_ - k.y * sy;
  b.min_y = origin_y_ - (k.y + 1) * sy;
  return b;
}

std::array<double, 6> TileGrid::geotransform(int z, int64_t x, int64_t y) const {
  double rx = resolution_x(z), ry = resolution_y(z);
  return {origin_x_ + x * tile_size_ * rx, rx, 0.0, origin_y_ - y * tile_size_ * ry, 0.0, -ry};
}

TileRange TileGrid::tiles_covering(int z, const Bounds& b) const {
  TileRange r;
  r.z = z;
  if (b.empty()) return r;
  double sx = resolution_x(z) * tile_size_;
  double sy = resolution_y(z) * tile_size_;
  // A tile whose edge merely touches the bounds does not intersect it; the
  // tolerance absorbs the last-bit rounding of tile_bounds() itself.
  constexpr double kEps = 1e-9;
  auto lo = [](double v) { return static_cast<int64_t>(std::floor(v + kEps)); };
  auto hi = [](double v) { return static_cast<int64_t>(std::ceil(v - kEps)) - 1; };
  r.min_x = std::max<int64_t>(0, lo((b.min_x - origin_x_) / sx));
  r.max_x = std::min<int64_t>(matrix_width(z) - 1, hi((b.max_x - origin_x_) / sx));
  r.min_y = std::max<int64_t>(0, lo((origin_y_ - b.max_y) / sy));
  r.max_y = std::min<int64_t>(matrix_height(z) - 1, hi((origin_y_ - b.min_y) / sy));
  return r;
}

}  // namespace kiln

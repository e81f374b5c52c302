// Rendering an analytic tile (any cell type, any band count) into an 8-bit
// picture: band selection, linear rescale, colour map or hillshade, and
// nodata/NaN as transparency; then PNG or WebP bytes.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "raster/raster.h"
#include "render/render_params.h"

namespace kiln::render {

// Where a tile's pixels sit in Web Mercator (EPSG:3857) metres; hillshade
// turns this into ground metres per pixel row by row (scale cos(latitude)).
struct TileGeometry {
  double pixel_width = 0;   // metres of EPSG:3857 easting per pixel
  double pixel_height = 0;  // metres of EPSG:3857 northing per pixel (> 0)
  double top = 0;           // northing of the tile's top edge
};

// The geometry of XYZ tile (z, y) of `tile_size` pixels in the Web Mercator
// quadtree (y = 0 at the north edge). REQUIRES: 0 <= z <= 30, 0 <= y < 2^z.
TileGeometry mercator_tile_geometry(int z, int y, int tile_size);
// The geometry of a north-up EPSG:3857 geotransform.
TileGeometry geometry_from_geotransform(const std::array<double, 6>& gt);

// The rescale range of `value` for rescaling: out = clamp(floor((v - min) *
// 255 / (max - min) + 0.5), 0, 255), evaluated in double precision in that
// order (docs/rendering.md; the reference test repeats it in numpy).
uint8_t rescale_value(double v, const Range& r);

// Renders `tile` (all of the layer's bands) as `params` say. A pixel is
// transparent when its mask is 0, when any selected band holds `nodata`, or
// is NaN. Returns a uint8 Raster whose mask is the alpha (0 or 255): 1 band
// (grey) for a single band without colour map, else 3 (RGB).
// Rescale ranges come from params.rescale, else from `defaults` (one per
// layer band, e.g. default_rescale()), else for uint8 data 0-255; missing
// any of these is kInvalidArgument naming rescale. Hillshade needs
// `geometry` (kInvalidArgument without it).
// With `border` > 0, `tile` carries that many extra pixels on every side
// (from the neighbouring tiles, add_border()) that hillshade reads as
// neighbours, so shading has no seams at tile edges; the result is the
// interior only, and `geometry` describes the interior.
// REQUIRES: check_against_layer(&params, tile.bands) is ok; 0 <= border and
// 2 * border < tile.width, tile.height. Thread-safe.
Result<Raster> render_tile(const Raster& tile, std::optional<double> nodata,
                           const RenderParams& params, const std::vector<Range>& defaults,
                           const TileGeometry* geometry, int border = 0);

// `centre` with a frame of `border` pixels taken from its 8 neighbours
// (row-major from the north-west: NW, N, NE, W, E, SW, S, SE; null where a
// neighbour does not exist, which leaves that part of the frame without
// data). Neighbours must match centre's size, type and band count (else
// that neighbour is ignored). REQUIRES: 0 < border <= centre's sides.
Raster add_border(const Raster& centre, const std::array<const Raster*, 8>& neighbours, int border);

// PNG (deflate `png_level` 0-12) or lossy WebP (quality 90) bytes of a
// render_tile() result; transparency is written only when some pixel is
// transparent, in a PNG as a tRNS colour key when a free grey level or
// colour exists (half the bytes to compress for grey), else as alpha. Thread-safe. Level 1, not
// stored tiles' 2: on rendered Landsat uint16 (bench/render_bench.cc) it encodes ~25% faster and 2%
// smaller (74,374 against 75,790 bytes).
Result<std::string> encode_image(const Raster& image, ImageFormat format, int png_level = 1);

}  // namespace kiln::render

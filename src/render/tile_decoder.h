// Decoding a stored analytic tile (a GeoTIFF per tile, tiff_encoder.h) back
// into the band buffers render_tile() takes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "raster/raster.h"

namespace kiln::render {

struct DecodedTile {
  Raster raster;  // every band, band-sequential; mask 0 where nodata/NaN/masked
  std::optional<double> nodata;
  std::array<double, 6> geotransform{0, 1, 0, 0, 0, -1};
  bool has_geotransform = false;
};

// Tiles larger than this on a side are refused (stored tiles are 256-1024).
inline constexpr int kMaxDecodeSide = 4096;
inline constexpr int kMaxDecodeBands = 64;
// And at most this many bytes of pixels (a 1024 px float64 tile of 64 bands
// is 512 MiB): a tile's header claiming more is refused before allocating.
inline constexpr uint64_t kMaxDecodedBytes = uint64_t{1} << 30;

// Decodes the bytes of a tif tile: Kiln's own layout with
// decode_kiln_tif() (tif_strip_decoder.h), anything else with GDAL's GTiff
// driver from /vsimem/ (no other driver, no sibling files). The mask is 0 where a band holds the
// declared nodata or NaN, or where the tile's internal mask says so.
// kInputError names what is wrong (not a GeoTIFF, too large, unsupported
// cell type). Thread-safe (each call has its own /vsimem/ file).
Result<DecodedTile> decode_tif_tile(std::string_view bytes);

}  // namespace kiln::render

// A decoder for the one tif layout Kiln's tile encoder writes
// (raster/tiff_encoder.h): little-endian classic TIFF, one strip, samples
// interleaved by pixel, DEFLATE or ZSTD with the horizontal (2) or
// floating-point (3) predictor, a GeoTIFF pixel scale and tiepoint,
// GDAL_NODATA, and optionally one more directory holding the per-dataset
// 1-bit mask. It is the tile endpoint's fast path: no GDAL dataset, no
// /vsimem/ file per tile (decode was 29% of a rendered tile's time).
// Anything else, however valid, is left to GDAL (decode_tif_tile falls
// back); every offset and count is checked against the bytes first.
#pragma once

#include <optional>
#include <string_view>

#include "common/status.h"
#include "render/tile_decoder.h"

namespace kiln::render {

// The decoded tile, with the same result decode_tif_tile's GDAL path gives;
// nullopt when the bytes are not in the layout above (the caller asks
// GDAL); kInputError when they claim the layout and break it (a strip
// shorter than its pixels, a corrupt DEFLATE stream). Thread-safe.
Result<std::optional<DecodedTile>> decode_kiln_tif(std::string_view bytes);

// decode_tif_tile's GDAL path alone, for the tests that compare the two.
Result<DecodedTile> decode_tif_tile_with_gdal(std::string_view bytes);

}  // namespace kiln::render

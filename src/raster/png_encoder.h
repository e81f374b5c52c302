// PNG tile encoder: libpng writing straight into a memory buffer.
#pragma once

#include <string>

#include "common/status.h"
#include "raster/raster.h"

namespace kiln {

// Returns the PNG bytes of a uint8/uint16 tile with 1 band (grey) or 3 (RGB).
// An alpha channel is added only when some mask value is 0: alpha is 0 there
// and fully opaque (255, or 65535 for uint16) elsewhere. `level` is a deflate
// level 0-9 (libdeflate's, same scale as zlib's). No ancillary chunks (no tIME), so the bytes
// depend on the input only. Thread-safe. REQUIRES: check_encodable(kPng, tile.type, tile.bands) is
// ok.
//
// With `colour_key`, a uint8 tile that needs transparency gets it, when it
// can, from a tRNS colour key instead of an alpha channel: a grey level (or
// RGB colour) that no valid pixel holds stands for the masked pixels, so the
// image has 1 (or 3) samples a pixel instead of 2 (or 4) and compresses in
// about half (a third less) of the time. Valid pixels keep their values;
// browsers and GDAL read the key as transparency (GDAL: the band's nodata,
// NODATA_VALUES for RGB). Without a free level or colour: alpha, as above.
// For rendered images; stored tiles keep alpha (readers of the catalog
// expect a mask band).
Result<std::string> encode_png(const Raster& tile, int level, bool colour_key = false);

}  // namespace kiln

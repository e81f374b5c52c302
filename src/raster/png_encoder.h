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
Result<std::string> encode_png(const Raster& tile, int level);

}  // namespace kiln

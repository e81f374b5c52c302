// WebP tile encoder: libwebp's simple encoding API.
#pragma once

#include <string>

#include "common/status.h"
#include "raster/raster.h"

namespace kiln {

// Returns the WebP bytes of a uint8 tile with 1 band (written as grey RGB) or
// 3 (RGB). An alpha channel is added only when some mask value is 0 (alpha 0
// there, 255 elsewhere); colour under alpha 0 may not survive. Lossless, or
// lossy at `quality` 0-100. kInvalidArgument for tiles wider or higher than
// WebP allows (16383). Deterministic and thread-safe.
// REQUIRES: check_encodable(kWebp, tile.type, tile.bands) is ok.
Result<std::string> encode_webp(const Raster& tile, bool lossless, int quality);

}  // namespace kiln

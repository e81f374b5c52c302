// Resampling methods: one set for warping source pixels into the tile grid,
// another for building a pyramid level from its children.
#pragma once

#include <string_view>

#include <gdalwarper.h>

#include "common/status.h"

namespace kiln {

enum class WarpResample { kNearest, kBilinear, kCubic, kLanczos };
enum class PyramidResample { kAverage, kMode, kMin, kMax, kMedian, kNearest };

const char* warp_resample_name(WarpResample r);
const char* pyramid_resample_name(PyramidResample r);
// Accepts the names above, lower case ("nearest", "bilinear", "cubic",
// "lanczos" / "average", "mode", "min", "max", "median", "nearest").
Result<WarpResample> parse_warp_resample(std::string_view name);
Result<PyramidResample> parse_pyramid_resample(std::string_view name);
GDALResampleAlg to_gdal(WarpResample r);

}  // namespace kiln

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
// The warp kernel's radius at scale 1, in source pixels: bilinear 1, cubic 2,
// lanczos 3 (GDAL's anGWKFilterRadius), and nearest 1 (GDAL: 0; nearest reads
// one pixel, the 1 only widens the source window by a pixel). The kernel
// (warp_kernel.cc) weighs this many pixels either side of a sample, and the
// source window read for a region (warp.cc) is widened by it.
int warp_filter_radius(WarpResample r);

}  // namespace kiln

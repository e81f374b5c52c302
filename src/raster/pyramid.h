// Pyramid: a parent level from its children, in memory.
#pragma once

#include <optional>

#include "raster/raster.h"
#include "raster/resample.h"

namespace kiln {

// Returns the raster at half resolution: each output pixel summarises the
// 2x2 input pixels under it, using only the valid ones; it is valid iff at
// least one of them is. Invalid outputs hold `nodata` (or 0).
//   average: mean, rounded to nearest (half away from zero) for integers
//   mode:    most frequent value, the smallest on ties
//   min/max: as named
//   median:  the lower median (always one of the input values)
//   nearest: the first valid of top-left, top-right, bottom-left, bottom-right
// REQUIRES: src.width and src.height even.
Raster downsample_2x(const Raster& src, PyramidResample method, std::optional<double> nodata);

// Copies the w x h block at (x0, y0) of `src` into a new raster.
Raster crop(const Raster& src, int x0, int y0, int w, int h);

// Writes `tile` into `dst` at (x0, y0). REQUIRES: same bands and type, fits.
void paste(const Raster& tile, int x0, int y0, Raster* dst);

// Sets every invalid pixel of every band to `nodata` (or 0).
void fill_invalid(Raster* r, std::optional<double> nodata);

}  // namespace kiln

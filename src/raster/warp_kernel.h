// Kiln's resampling kernel: the per-pixel half of a warp.
//
// WarpSource (warp.h) works out where every output pixel falls in a decoded
// source window; this kernel turns those positions into values. It follows
// the arithmetic of GDAL's warp kernel (gdalwarpkernel.cpp) so tiles agree
// with gdalwarp, but runs all bands of a pixel off one set of weights and has
// no per-tap dispatch, which is where GDAL spends its time when it widens the
// filter to downsample:
//
//  - A pixel is valid when the source pixel under its centre is valid
//    (GDAL's rule for the destination alpha).
//  - nearest takes that pixel. bilinear, cubic and lanczos weigh the taps
//    around the centre with the triangle, Keys (a = -0.5) and Lanczos-3
//    filters; when the output is coarser than the source (scale < 0.95 on an
//    axis) the filter is stretched by 1/scale, so every source pixel under
//    the output pixel counts.
//  - Invalid taps are left out and the remaining weights renormalised, so
//    nodata never bleeds into a value.
//  - Integer results are clamped and rounded half up (floor(v + 0.5)).
#pragma once

#include <cstdint>

#include "raster/raster.h"
#include "raster/resample.h"

namespace kiln {

// Where the output pixels of one row sample the source window: x[i], y[i]
// in window pixel coordinates (a pixel's centre is at +0.5); ok[i] == 0 where
// the coordinate transform failed.
struct SampleRow {
  int count = 0;
  const double* x = nullptr;
  const double* y = nullptr;
  const int* ok = nullptr;
};

class WarpKernel {
 public:
  // `scale_x`, `scale_y`: output pixels per source pixel on each axis (< 1
  // when downsampling), as GDALWarpKernel computes them for the region.
  WarpKernel(WarpResample method, double scale_x, double scale_y);

  // Resamples one output row (or a stretch of one) from `src`
  // (band-sequential, any cell type; `src_all_valid` skips the mask checks).
  // For each valid output pixel i, writes band b's value to
  // out[b * band_stride + i] and 255 to out_mask[i]; for the others 0 to
  // out_mask[i] (their values are left untouched).
  void resample_row(const Raster& src, bool src_all_valid, const SampleRow& row, double* out,
                    size_t band_stride, uint8_t* out_mask) const;

  WarpResample method() const { return method_; }
  double scale_x() const { return scale_x_; }
  double scale_y() const { return scale_y_; }
  // Taps on each side of the centre along x and y.
  int radius_x() const { return radius_x_; }
  int radius_y() const { return radius_y_; }

 private:
  WarpResample method_;
  double scale_x_, scale_y_;  // the filter's stretch, at most 1
  int radius_x_, radius_y_;
};

// GDAL's kernel scale for `dst_size` output pixels drawn from a source span
// of `src_span` pixels: dst/src, snapped to 1/N when within 0.05 of it, and 1
// when the output is not coarser than the source.
double warp_kernel_scale(int dst_size, double src_span);

// Stores row values computed in double as cell type T: integers are clamped
// to T's range and rounded half up, floats are cast; pixels not `valid` get 0.
void store_row(const double* values, int n, const uint8_t* valid, CellType type, void* dst);

}  // namespace kiln

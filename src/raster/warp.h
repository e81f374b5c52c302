// Warp: resample one source into a region of the layer's tile grid.
//
// A WarpSource belongs to one thread. It keeps its own GDAL handle and its
// coordinate transformer (PROJ pipelines are costly to build), and for each
// region: finds the source window the region needs (plus the kernel's
// margin), decodes it once, maps every output pixel into that window through
// GDAL's approximate transformer (gdalwarp's -et), and resamples it with
// Kiln's kernel (warp_kernel.h), which follows GDAL's arithmetic and keeps
// nodata out of resampled values.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "common/status.h"
#include "raster/raster.h"
#include "raster/resample.h"
#include "raster/source.h"

namespace kiln {

struct WarpOptions {
  WarpResample resample = WarpResample::kBilinear;
  double error_threshold = 0.125;  // output pixels; 0 = exact transforms
  // Source windows above this many pixels are read decimated (like gdalwarp
  // picking an overview) so memory stays bounded when zooming far out.
  int64_t max_window_pixels = int64_t{64} << 20;
  // Output pixels per approximated stretch of a row. The approximate
  // transformer interpolates between points it transforms exactly at a
  // stretch's ends and middle; with the layer's tile size, every tile's
  // source coordinates are the ones gdalwarp computes for that tile alone.
  int transform_span = 256;
};

// The grid region to fill: a north-up raster in the layer CRS.
struct Region {
  std::array<double, 6> geotransform{};
  int width = 0;
  int height = 0;
};

// A band-less in-memory stand-in for a source, carrying its effective
// georeferencing (overrides included), and GDAL's transformer from its pixels
// to georeferenced coordinates in `dst_crs_wkt` (no reprojection when either
// CRS is empty). Reads nothing from the file. `proxy` serves GDAL calls that
// want the source as a dataset (GDALSuggestedWarpOutput).
struct SourceTransform {
  DatasetPtr proxy;
  TransformerPtr transformer;
};
Result<SourceTransform> source_to_crs(const SourceInfo& info, const std::string& dst_crs_wkt);

class WarpSource {
 public:
  // Opens `info.uri` and builds the transformer to `layer_crs_wkt` (empty:
  // same coordinates, no reprojection). Not thread-safe: one per thread.
  static Result<std::unique_ptr<WarpSource>> open(const SourceInfo& info,
                                                  const std::string& layer_crs_wkt,
                                                  const WarpOptions& options);
  ~WarpSource();

  // Warps into `out` (reshaped in place to the region, reusing its buffers;
  // bands = info.bands.size(),
  // type `type`); out->mask marks the pixels the source covers with data.
  // Returns false (and leaves `out` untouched) when the source does not
  // reach the region.
  Result<bool> warp(const Region& region, CellType type, Raster* out);

  const SourceInfo& info() const { return info_; }
  // Decoded source bytes read by the last warp() call.
  uint64_t last_read_bytes() const { return last_read_bytes_; }
  // The filter stretch (output pixels per source pixel, x and y) of the last
  // warp() call that reached the source; see WarpKernel.
  std::array<double, 2> last_kernel_scale() const { return last_kernel_scale_; }

 private:
  WarpSource() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  SourceInfo info_;
  uint64_t last_read_bytes_ = 0;
  std::array<double, 2> last_kernel_scale_{1, 1};
};

}  // namespace kiln

// Sources: what Kiln learns about an input raster when it opens it for
// metadata only, and how it reads a pixel window with its validity.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "raster/gdal_env.h"
#include "raster/raster.h"

namespace kiln {

// What the caller asks of a source; overrides win over the file's own values.
struct SourceRequest {
  std::string uri;
  std::vector<int> bands;  // 1-based; empty = every band that is not alpha
  std::optional<std::string> crs;
  std::optional<std::array<double, 4>> extent;  // xmin, ymin, xmax, ymax; for files without one
  std::optional<double> nodata;
};

struct SourceInfo {
  std::string uri;
  int width = 0;
  int height = 0;
  int band_count = 0;                // in the file
  std::vector<int> bands;            // 1-based bands that will be read, in order
  CellType type = CellType::kUInt8;  // common type of the read bands
  // Per read band; NaN is a valid nodata value.
  std::vector<std::optional<double>> nodata;
  int alpha_band = 0;             // 1-based, 0 if none
  bool per_dataset_mask = false;  // file has a real mask band (not all-valid)
  bool has_geotransform = false;
  std::array<double, 6> geotransform{0, 1, 0, 0, 0, 1};
  std::string crs_wkt;  // empty: no CRS
  std::optional<int> epsg;
  bool geographic = false;                     // CRS is lon/lat
  bool paletted = false;                       // a read band holds colour-table indices (classes)
  uint64_t file_size = 0;                      // 0 when unknown (remote)
  std::vector<std::string> band_descriptions;  // per read band, may be ""

  bool north_up() const { return geotransform[2] == 0 && geotransform[4] == 0; }
  // Approximate decoded bytes of the read bands.
  uint64_t decoded_bytes() const {
    return static_cast<uint64_t>(width) * height * bands.size() * cell_bytes(type);
  }
};

// Opens the source for metadata only and checks the request against it
// (bands exist, overrides parse). Errors are kInputError or
// kInvalidArgument and name the source.
Result<SourceInfo> inspect_source(const SourceRequest& request);

// Reads pixels [x0, x0+w) x [y0, y0+h) of the read bands into `out`
// (reshaped in place, reusing its buffers; type = info.type), decimated by
// `factor` (1 = full resolution,
// GDAL resampling `decimate_alg` otherwise), and sets out->mask:
// a pixel is invalid where every read band equals its nodata, any float band
// is NaN, the alpha band is 0 or the mask band is 0.
// Errors name the source, the rows and GDAL's reason.
Status read_window(GDALDataset* ds, const SourceInfo& info, int x0, int y0, int w, int h,
                   int factor, GDALRIOResampleAlg decimate_alg, Raster* out);

}  // namespace kiln

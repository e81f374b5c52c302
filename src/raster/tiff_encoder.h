// GeoTIFF tile encoder: GDAL's GTiff driver writing into /vsimem/.
#pragma once

#include <string>

#include "common/status.h"
#include "raster/codec.h"
#include "raster/raster.h"

namespace kiln {

// Returns the bytes of a single-strip GeoTIFF holding every band of `tile`
// in its own cell type, compressed losslessly with options.tiff_compression
// at options.tiff_level (with the horizontal or floating-point predictor),
// carrying georef's geotransform and CRS (none when crs_wkt is empty).
// With options.nodata every band declares it; otherwise, if some mask value
// is 0, an internal per-dataset mask records the mask. Deterministic (no
// timestamps) and thread-safe (each call uses its own /vsimem/ file).
// kInternal quotes GDAL when it refuses (e.g. an unparsable crs_wkt).
Result<std::string> encode_tiff(const Raster& tile, const EncodeOptions& options,
                                const TileGeoref& georef);

}  // namespace kiln

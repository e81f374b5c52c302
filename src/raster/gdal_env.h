// The one place Kiln talks to GDAL's global state: driver registration, the
// error handler that routes GDAL's messages into Kiln's log, and RAII owners
// for GDAL handles.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gdal_alg.h>
#include <gdal_priv.h>
#include <ogr_spatialref.h>

#include "common/status.h"

namespace kiln {

// Registers drivers and installs the error handler. Idempotent, thread-safe.
// GDAL warnings are logged at WARN; GDAL errors are logged at DEBUG and kept
// (per thread) so the Status that reports the failure can quote them.
void init_gdal();

// The last GDAL error message raised on this thread since clear_gdal_error(),
// or "" if none.
std::string last_gdal_error();
void clear_gdal_error();

struct DatasetCloser {
  void operator()(GDALDataset* ds) const {
    if (ds) GDALClose(GDALDataset::ToHandle(ds));
  }
};
using DatasetPtr = std::unique_ptr<GDALDataset, DatasetCloser>;

struct TransformerDestroyer {
  void operator()(void* t) const {
    if (t) GDALDestroyTransformer(t);
  }
};
using TransformerPtr = std::unique_ptr<void, TransformerDestroyer>;

struct CoordinateTransformationDeleter {
  void operator()(OGRCoordinateTransformation* ct) const {
    OGRCoordinateTransformation::DestroyCT(ct);
  }
};
using CoordinateTransformationPtr =
    std::unique_ptr<OGRCoordinateTransformation, CoordinateTransformationDeleter>;

// The GDAL drivers a tenant's raster may be opened with (docs/security.md
// says why each is in or out): GTiff, COG, PNG, JPEG, WEBP, JP2OpenJPEG,
// or the comma-separated list in KILN_TENANT_DRIVERS, which the server
// sets for sandboxed processes from [sandbox] tenant_drivers. Read once.
const std::vector<std::string>& tenant_raster_drivers();

// Opens `uri` read-only as a raster, with tenant_raster_drivers() only and
// without looking for sibling files (.ovr, .msk, .aux.xml, world files).
// kInputError names the uri and quotes GDAL's reason. The handle must be
// used by one thread at a time.
Result<DatasetPtr> open_raster(const std::string& uri);

// Parses a CRS given as "EPSG:n", WKT, PROJ string or anything
// OGRSpatialReference::SetFromUserInput accepts, with traditional GIS axis
// order (x = easting/longitude).
Result<OGRSpatialReference> parse_crs(const std::string& text);

// Creates an in-memory (MEM driver) dataset; never fails for sane sizes.
DatasetPtr create_mem_dataset(int width, int height, int bands, GDALDataType type);

}  // namespace kiln

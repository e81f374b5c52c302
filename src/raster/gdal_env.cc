#include "raster/gdal_env.h"

#include <cstdlib>
#include <mutex>

#include <cpl_conv.h>
#include <cpl_error.h>

#include "common/log.h"

namespace kiln {
namespace {

thread_local std::string t_last_error;

void CPL_STDCALL route_gdal_message(CPLErr level, CPLErrorNum code, const char* msg) {
  std::string text = msg ? msg : "";
  switch (level) {
    case CE_Fatal:
    case CE_Failure:
      t_last_error = text;
      log::debug("GDAL error " + std::to_string(code) + ": " + text);
      break;
    case CE_Warning:
      log::warn("GDAL: " + text);
      break;
    default:
      log::debug("GDAL: " + text);
      break;
  }
}

}  // namespace

void init_gdal() {
  static std::once_flag once;
  std::call_once(once, [] {
    GDALAllRegister();
    CPLSetErrorHandler(route_gdal_message);
    // Tiles are produced from in-memory windows; a large block cache would
    // only hide memory growth (peak RSS must not grow with scene size).
    if (!CPLGetConfigOption("GDAL_CACHEMAX", nullptr)) GDALSetCacheMax64(64 << 20);
  });
}

std::string last_gdal_error() { return t_last_error; }
void clear_gdal_error() {
  t_last_error.clear();
  CPLErrorReset();
}

const std::vector<std::string>& tenant_raster_drivers() {
  // Formats that hold their own pixels. Left out on purpose: VRT and GTI
  // (their XML or index names other files, any path on the host), MEM
  // (its name is a raw memory address), WMS/WMTS/HTTP/EEDA... (their names
  // are connection strings: the opener would connect), and the subdataset
  // and container formats (netCDF, HDF, NITF, ...), whose names embed
  // other paths. COG files are GeoTIFFs and open with GTiff (GDAL's COG
  // driver only writes); it is listed so a name from the docs matches.
  // An operator may widen the list for sandboxed tasks and planners
  // ([sandbox] tenant_drivers): the server hands it to them in
  // KILN_TENANT_DRIVERS, in an environment the sandbox rebuilds from
  // scratch, so a tenant cannot set it.
  static const std::vector<std::string> kDrivers = [] {
    std::vector<std::string> d;
    if (const char* list = std::getenv("KILN_TENANT_DRIVERS"); list && *list) {
      std::string item;
      for (const char* p = list;; ++p) {
        if (*p == ',' || *p == '\0') {
          if (!item.empty()) d.push_back(item);
          item.clear();
          if (*p == '\0') break;
        } else {
          item += *p;
        }
      }
    }
    if (d.empty()) d = {"GTiff", "COG", "PNG", "JPEG", "WEBP", "JP2OpenJPEG"};
    return d;
  }();
  return kDrivers;
}

Result<DatasetPtr> open_raster(const std::string& uri) {
  init_gdal();
  clear_gdal_error();
  std::vector<const char*> allowed;
  for (const auto& d : tenant_raster_drivers()) allowed.push_back(d.c_str());
  allowed.push_back(nullptr);
  GDALDatasetH h = nullptr;
  {
    // No sibling files: GDAL would otherwise open x.tif.ovr, x.tif.msk,
    // x.aux with any driver (a VRT .ovr beside an allowed GTiff reads any
    // file), bypassing the list above. This thread, this open only.
    CPLConfigOptionSetter no_siblings("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR", false);
    h = GDALOpenEx(uri.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR,
                   allowed.data(), nullptr, nullptr);
  }
  if (!h) {
    std::string why = last_gdal_error();
    if (why.empty() || why.find("not recognized") != std::string::npos) {
      why = "not a raster in a format sources may use (GeoTIFF/COG, PNG, JPEG, WebP, JPEG 2000)";
    }
    return input_error("cannot open source '" + uri + "': " + why);
  }
  return DatasetPtr(GDALDataset::FromHandle(h));
}

Result<OGRSpatialReference> parse_crs(const std::string& text) {
  init_gdal();
  OGRSpatialReference srs;
  clear_gdal_error();
  if (srs.SetFromUserInput(text.c_str()) != OGRERR_NONE) {
    std::string why = last_gdal_error();
    return invalid_argument("cannot understand CRS '" + text + "'" +
                            (why.empty() ? "" : ": " + why));
  }
  srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return srs;
}

DatasetPtr create_mem_dataset(int width, int height, int bands, GDALDataType type) {
  init_gdal();
  GDALDriver* mem = GetGDALDriverManager()->GetDriverByName("MEM");
  return DatasetPtr(mem->Create("", width, height, bands, type, nullptr));
}

}  // namespace kiln

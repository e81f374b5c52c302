#include "raster/tiff_encoder.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>

#include "raster/gdal_env.h"

namespace kiln {
namespace {

// A /vsimem/ file name no other call (on any thread) uses at the same time.
std::string unique_vsimem_name() {
  static std::atomic<uint64_t> next{0};
  return "/vsimem/kiln/tiff_encoder/" + std::to_string(next.fetch_add(1)) + ".tif";
}

// Unlinks the /vsimem/ file however the encode ends.
class VsimemFile {
 public:
  explicit VsimemFile(std::string name) : name_(std::move(name)) {}
  VsimemFile(const VsimemFile&) = delete;
  VsimemFile& operator=(const VsimemFile&) = delete;
  ~VsimemFile() { VSIUnlink(name_.c_str()); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Owns a CSL string list.
class CreationOptions {
 public:
  CreationOptions() = default;
  CreationOptions(const CreationOptions&) = delete;
  CreationOptions& operator=(const CreationOptions&) = delete;
  ~CreationOptions() { CSLDestroy(list_); }
  void set(const char* key, const std::string& value) {
    list_ = CSLSetNameValue(list_, key, value.c_str());
  }
  char** get() const { return list_; }

 private:
  char** list_ = nullptr;
};

Status gdal_failure(const std::string& what) {
  std::string why = last_gdal_error();
  return internal_error("tif tile: " + what + (why.empty() ? "" : ": " + why));
}

CPLErr set_nodata(GDALRasterBand* band, CellType type, double nodata) {
  // GDAL keeps 64-bit integer nodata apart from the double one.
  switch (type) {
    case CellType::kInt64:
      return band->SetNoDataValueAsInt64(static_cast<int64_t>(nodata));
    case CellType::kUInt64:
      return band->SetNoDataValueAsUInt64(static_cast<uint64_t>(nodata));
    default:
      return band->SetNoDataValue(nodata);
  }
}

// Creates, fills and closes the GeoTIFF at `path`.
Status write_tiff(const std::string& path, const Raster& tile, const EncodeOptions& options,
                  const TileGeoref& georef) {
  GDALDriver* gtiff = GetGDALDriverManager()->GetDriverByName("GTiff");
  if (!gtiff) return internal_error("tif tile: GDAL has no GTiff driver");

  CreationOptions co;
  if (options.tiff_compression == TiffCompression::kZstd) {
    co.set("COMPRESS", "ZSTD");
    co.set("ZSTD_LEVEL", std::to_string(options.tiff_level));
  } else {
    co.set("COMPRESS", "DEFLATE");
    co.set("ZLEVEL", std::to_string(options.tiff_level));
  }
  // Both predictors are lossless; they only reorder what the compressor sees.
  co.set("PREDICTOR", is_float(tile.type) ? "3" : "2");
  // One strip for the whole tile: the fewest headers and the best ratio.
  // Bands are data, never transparency: only 3-band uint8 is shown as RGB;
  // anything else (RGB+NIR, multispectral) is plain samples, so GDAL/QGIS
  // do not read a 4th band as alpha.
  co.set("PHOTOMETRIC", tile.bands == 3 && tile.type == CellType::kUInt8 ? "RGB" : "MINISBLACK");
  co.set("ALPHA", "UNSPECIFIED");
  co.set("TILED", "NO");
  co.set("BLOCKYSIZE", std::to_string(tile.height));

  // Thread-local settings for this call only: the mask goes inside the tif
  // (not a .msk beside it) and nothing is written to a .aux.xml.
  CPLConfigOptionSetter internal_mask("GDAL_TIFF_INTERNAL_MASK", "YES", false);
  CPLConfigOptionSetter no_pam("GDAL_PAM_ENABLED", "NO", false);

  clear_gdal_error();
  DatasetPtr ds(gtiff->Create(path.c_str(), tile.width, tile.height, tile.bands, to_gdal(tile.type),
                              co.get()));
  if (!ds) return gdal_failure("cannot create " + path);

  // Georeferencing and nodata are set before any pixel so GDAL writes the
  // directory once, in full.
  std::array<double, 6> gt = georef.geotransform;
  if (ds->SetGeoTransform(gt.data()) != CE_None) return gdal_failure("cannot set geotransform");
  if (!georef.crs_wkt.empty() && ds->SetProjection(georef.crs_wkt.c_str()) != CE_None) {
    return gdal_failure("cannot set CRS '" + georef.crs_wkt.substr(0, 80) + "'");
  }
  const bool use_mask = !options.nodata && !tile.all_valid();
  if (options.nodata) {
    for (int b = 1; b <= tile.bands; ++b) {
      if (set_nodata(ds->GetRasterBand(b), tile.type, *options.nodata) != CE_None) {
        return gdal_failure("cannot set nodata on band " + std::to_string(b));
      }
    }
  } else if (use_mask) {
    if (ds->CreateMaskBand(GMF_PER_DATASET) != CE_None) {
      return gdal_failure("cannot create internal mask");
    }
  }

  const int cell = static_cast<int>(cell_bytes(tile.type));
  // Raster is band-sequential; GDAL interleaves into the file's pixel order.
  if (ds->RasterIO(GF_Write, 0, 0, tile.width, tile.height, const_cast<uint8_t*>(tile.data.data()),
                   tile.width, tile.height, to_gdal(tile.type), tile.bands, nullptr, cell,
                   static_cast<GSpacing>(cell) * tile.width,
                   static_cast<GSpacing>(tile.band_bytes()), nullptr) != CE_None) {
    return gdal_failure("cannot write pixels");
  }
  if (use_mask) {
    GDALRasterBand* mask = ds->GetRasterBand(1)->GetMaskBand();
    if (mask->RasterIO(GF_Write, 0, 0, tile.width, tile.height,
                       const_cast<uint8_t*>(tile.mask.data()), tile.width, tile.height, GDT_Byte, 0,
                       0, nullptr) != CE_None) {
      return gdal_failure("cannot write mask");
    }
  }
  // GDALClose flushes and reports write failures only through the error state.
  clear_gdal_error();
  ds.reset();
  if (CPLGetLastErrorType() >= CE_Failure) return gdal_failure("cannot finish " + path);
  return Status::ok();
}

}  // namespace

Result<std::string> encode_tiff(const Raster& tile, const EncodeOptions& options,
                                const TileGeoref& georef) {
  init_gdal();
  VsimemFile file(unique_vsimem_name());
  KILN_RETURN_IF_ERROR(write_tiff(file.name(), tile, options, georef));
  vsi_l_offset size = 0;
  // FALSE: the buffer stays owned by /vsimem/ until `file` unlinks it.
  GByte* bytes = VSIGetMemFileBuffer(file.name().c_str(), &size, FALSE);
  if (!bytes) return internal_error("tif tile: " + file.name() + " vanished after writing");
  return std::string(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
}

}  // namespace kiln

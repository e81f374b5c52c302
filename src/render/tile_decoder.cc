#include "render/tile_decoder.h"

#include <atomic>
#include <cmath>
#include <string>

#include <cpl_conv.h>
#include <cpl_vsi.h>
#include <gdal_priv.h>

#include "raster/gdal_env.h"
#include "render/tif_strip_decoder.h"

namespace kiln::render {
namespace {

// A read-only /vsimem/ view of caller-owned bytes, unlinked however the
// decode ends (the bytes are not copied and not freed by GDAL).
class VsimemView {
 public:
  explicit VsimemView(std::string_view bytes) {
    static std::atomic<uint64_t> next{0};
    name_ = "/vsimem/kiln/tile_decoder/" + std::to_string(next.fetch_add(1)) + ".tif";
    VSILFILE* f = VSIFileFromMemBuffer(
        name_.c_str(), reinterpret_cast<GByte*>(const_cast<char*>(bytes.data())), bytes.size(),
        /*bTakeOwnership=*/FALSE);
    if (f) VSIFCloseL(f);
  }
  VsimemView(const VsimemView&) = delete;
  VsimemView& operator=(const VsimemView&) = delete;
  ~VsimemView() { VSIUnlink(name_.c_str()); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

Status decode_error(const std::string& what) {
  std::string why = last_gdal_error();
  return input_error("tif tile: " + what + (why.empty() ? "" : ": " + why));
}

}  // namespace

Result<DecodedTile> decode_tif_tile(std::string_view bytes) {
  KILN_ASSIGN_OR_RETURN(std::optional<DecodedTile> fast, decode_kiln_tif(bytes));
  if (fast) return std::move(*fast);
  return decode_tif_tile_with_gdal(bytes);
}

Result<DecodedTile> decode_tif_tile_with_gdal(std::string_view bytes) {
  init_gdal();
  VsimemView file(bytes);
  // No sibling files (.aux.xml, .msk, .ovr) are looked for or read.
  CPLConfigOptionSetter no_dir("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR", false);
  CPLConfigOptionSetter no_pam("GDAL_PAM_ENABLED", "NO", false);
  const char* const drivers[] = {"GTiff", nullptr};
  clear_gdal_error();
  DatasetPtr ds(GDALDataset::Open(file.name().c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, drivers,
                                  nullptr, nullptr));
  if (!ds) return decode_error("not a GeoTIFF");
  const int w = ds->GetRasterXSize(), h = ds->GetRasterYSize(), nb = ds->GetRasterCount();
  if (w < 1 || h < 1 || w > kMaxDecodeSide || h > kMaxDecodeSide || nb < 1 ||
      nb > kMaxDecodeBands) {
    return input_error("tif tile: " + std::to_string(w) + "x" + std::to_string(h) + " with " +
                       std::to_string(nb) + " bands is not a tile (at most " +
                       std::to_string(kMaxDecodeSide) + " pixels a side, " +
                       std::to_string(kMaxDecodeBands) + " bands)");
  }
  GDALRasterBand* first = ds->GetRasterBand(1);
  KILN_ASSIGN_OR_RETURN(CellType type, cell_type_from_gdal(first->GetRasterDataType()));
  if (static_cast<uint64_t>(w) * h * nb * cell_bytes(type) > kMaxDecodedBytes) {
    return input_error("tif tile: " + std::to_string(w) + "x" + std::to_string(h) + " with " +
                       std::to_string(nb) + " bands of " + cell_type_name(type) +
                       " is larger than a tile can be");
  }
  DecodedTile out;
  out.raster.reset(w, h, nb, type);
  int has_nodata = 0;
  const double nd = first->GetNoDataValue(&has_nodata);
  if (has_nodata) out.nodata = nd;
  out.has_geotransform = ds->GetGeoTransform(out.geotransform.data()) == CE_None;

  const int cell = static_cast<int>(cell_bytes(type));
  if (ds->RasterIO(GF_Read, 0, 0, w, h, out.raster.data.data(), w, h, to_gdal(type), nb, nullptr,
                   cell, static_cast<GSpacing>(cell) * w,
                   static_cast<GSpacing>(out.raster.band_bytes()), nullptr) != CE_None) {
    return decode_error("cannot read pixels");
  }
  std::vector<uint8_t>& mask = out.raster.mask;
  const int flags = first->GetMaskFlags();
  if (!has_nodata && (flags & GMF_PER_DATASET) && !(flags & GMF_ALL_VALID)) {
    if (first->GetMaskBand()->RasterIO(GF_Read, 0, 0, w, h, mask.data(), w, h, GDT_Byte, 0, 0,
                                       nullptr) != CE_None) {
      return decode_error("cannot read the internal mask");
    }
    for (uint8_t& m : mask) m = m ? 255 : 0;
  } else {
    std::fill(mask.begin(), mask.end(), 255);
  }
  dispatch_cell_type(type, [&]<typename T>() {
    const size_t n = out.raster.pixels();
    for (int b = 0; b < nb; ++b) {
      const T* d = out.raster.band_as<T>(b);
      for (size_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(d[i]);
        if ((has_nodata && v == nd) || std::isnan(v)) mask[i] = 0;
      }
    }
  });
  return out;
}

}  // namespace kiln::render

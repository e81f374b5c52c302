#include "raster/source.h"

#include <cmath>
#include <limits>
#include <string>

#include <cpl_vsi.h>

namespace kiln {
namespace {

std::string band_list(const std::vector<int>& bands) {
  std::string s;
  for (size_t i = 0; i < bands.size(); ++i) {
    // Appended piece by piece: `"," + std::to_string(b)` (operator+ of a
    // literal and a temporary string) makes GCC 12 at -O3 report a false
    // -Wrestrict overlap in the inlined memcpy (GCC bug 105651).
    if (i) s += ',';
    s += std::to_string(bands[i]);
  }
  return s;
}

}  // namespace

Result<SourceInfo> inspect_source(const SourceRequest& req) {
  KILN_ASSIGN_OR_RETURN(DatasetPtr ds, open_raster(req.uri));
  SourceInfo info;
  info.uri = req.uri;
  info.width = ds->GetRasterXSize();
  info.height = ds->GetRasterYSize();
  info.band_count = ds->GetRasterCount();
  const std::string who = "source '" + req.uri + "'";
  if (info.band_count == 0) return input_error(who + ": has no raster bands");
  if (info.width <= 0 || info.height <= 0) return input_error(who + ": has no pixels");

  for (int b = 1; b <= info.band_count; ++b) {
    if (ds->GetRasterBand(b)->GetColorInterpretation() == GCI_AlphaBand) {
      info.alpha_band = b;
      break;
    }
  }
  if (req.bands.empty()) {
    for (int b = 1; b <= info.band_count; ++b)
      if (b != info.alpha_band) info.bands.push_back(b);
  } else {
    for (int b : req.bands) {
      if (b < 1 || b > info.band_count) {
        return input_error(who + ": band " + std::to_string(b) + " does not exist (the file has " +
                           std::to_string(info.band_count) + " band" +
                           (info.band_count == 1 ? "" : "s") + ")");
      }
      info.bands.push_back(b);
    }
  }
  // An alpha band asked for explicitly is data, not validity.
  for (int b : info.bands)
    if (b == info.alpha_band) info.alpha_band = 0;
  if (info.bands.empty()) return input_error(who + ": has only an alpha band");

  GDALDataType common = GDT_Unknown;
  for (int b : info.bands) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    GDALDataType t = band->GetRasterDataType();
    common = common == GDT_Unknown ? t : GDALDataTypeUnion(common, t);
    int has = 0;
    double nd = 0;
    // 64-bit integer bands keep their nodata apart from the double API; as a
    // double it is exact up to 2^53, which real nodata values stay within.
    if (t == GDT_Int64)
      nd = static_cast<double>(band->GetNoDataValueAsInt64(&has));
    else if (t == GDT_UInt64)
      nd = static_cast<double>(band->GetNoDataValueAsUInt64(&has));
    else
      nd = band->GetNoDataValue(&has);
    if (req.nodata)
      info.nodata.push_back(*req.nodata);
    else if (has)
      info.nodata.push_back(nd);
    else
      info.nodata.push_back(std::nullopt);
    if (band->GetColorInterpretation() == GCI_PaletteIndex && band->GetColorTable()) {
      info.paletted = true;
    }
    const char* desc = band->GetDescription();
    info.band_descriptions.push_back(desc ? desc : "");
  }
  auto type = cell_type_from_gdal(common);
  if (!type.is_ok()) return type.status().with_context(who);
  info.type = *type;
  if (info.alpha_band == 0) {
    int flags = ds->GetRasterBand(info.bands[0])->GetMaskFlags();
    info.per_dataset_mask = (flags & GMF_PER_DATASET) && !(flags & GMF_ALPHA) &&
                            !(flags & GMF_NODATA) && !(flags & GMF_ALL_VALID);
  }

  double gt[6];
  if (ds->GetGeoTransform(gt) == CE_None &&
      !(gt[0] == 0 && gt[1] == 1 && gt[2] == 0 && gt[3] == 0 && gt[4] == 0 && gt[5] == 1)) {
    info.has_geotransform = true;
    for (int i = 0; i < 6; ++i) info.geotransform[i] = gt[i];
  } else if (req.extent) {
    const auto& e = *req.extent;
    info.has_geotransform = true;
    info.geotransform = {e[0], (e[2] - e[0]) / info.width,  0, e[3],
                         0,    -(e[3] - e[1]) / info.height};
  }
  if (info.has_geotransform) {
    const auto& g = info.geotransform;
    double det = g[1] * g[5] - g[2] * g[4];
    if (!std::isfinite(det) || det == 0) {
      return input_error(who + ": its geotransform is degenerate (pixel size 0)");
    }
  }

  OGRSpatialReference srs;
  bool has_srs = false;
  if (req.crs) {
    KILN_ASSIGN_OR_RETURN(srs, parse_crs(*req.crs));
    has_srs = true;
  } else if (const OGRSpatialReference* s = ds->GetSpatialRef()) {
    srs = *s;
    srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
    has_srs = true;
  }
  if (has_srs) {
    char* wkt = nullptr;
    const char* opts[] = {"FORMAT=WKT2_2019", nullptr};
    srs.exportToWkt(&wkt, opts);
    info.crs_wkt = wkt ? wkt : "";
    CPLFree(wkt);
    info.geographic = srs.IsGeographic();
    const char* auth = srs.GetAuthorityName(nullptr);
    const char* code = srs.GetAuthorityCode(nullptr);
    if (auth && code && EQUAL(auth, "EPSG")) info.epsg = std::atoi(code);
    if (!info.epsg) {
      OGRSpatialReference copy = srs;
      if (copy.AutoIdentifyEPSG() == OGRERR_NONE) {
        const char* c = copy.GetAuthorityCode(nullptr);
        if (c) info.epsg = std::atoi(c);
      }
    }
  }

  VSIStatBufL st;
  if (VSIStatL(req.uri.c_str(), &st) == 0) info.file_size = static_cast<uint64_t>(st.st_size);
  return info;
}

namespace {

// Whether cell type T holds `d` exactly (false for NaN and out of range).
template <typename T>
bool holds_exactly(double d) {
  if (std::isnan(d)) return false;
  if constexpr (std::is_integral_v<T>) {
    // 2^(bits) as a double bounds the range without rounding trouble.
    const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
    if (d < static_cast<double>(std::numeric_limits<T>::lowest()) || d >= hi) return false;
  } else if (std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) {
    return false;
  }
  return static_cast<double>(static_cast<T>(d)) == d;
}

}  // namespace

Status read_window(GDALDataset* ds, const SourceInfo& info, int x0, int y0, int w, int h,
                   int factor, GDALRIOResampleAlg alg, Raster* out) {
  int bw = std::max(1, w / factor), bh = std::max(1, h / factor);
  out->reset(bw, bh, static_cast<int>(info.bands.size()), info.type, /*zero=*/false);
  GDALRasterIOExtraArg extra;
  INIT_RASTERIO_EXTRA_ARG(extra);
  extra.eResampleAlg = factor > 1 ? alg : GRIORA_NearestNeighbour;
  clear_gdal_error();
  const size_t cb = cell_bytes(info.type);
  std::vector<int> bands = info.bands;
  CPLErr err =
      ds->RasterIO(GF_Read, x0, y0, w, h, out->data.data(), bw, bh, to_gdal(info.type),
                   static_cast<int>(bands.size()), bands.data(), cb, cb * bw, cb * bw * bh, &extra);
  auto fail = [&](const std::string& what) {
    std::string why = last_gdal_error();
    return input_error("source '" + info.uri + "': cannot decode " + what + " rows " +
                       std::to_string(y0) + "-" + std::to_string(y0 + h - 1) + ", columns " +
                       std::to_string(x0) + "-" + std::to_string(x0 + w - 1) +
                       (why.empty() ? "" : ": " + why));
  };
  if (err != CE_None) return fail("bands " + band_list(bands));

  std::vector<uint8_t>& validity = out->mask;
  validity.assign(out->pixels(), 255);
  if (info.alpha_band || info.per_dataset_mask) {
    GDALRasterBand* vb = info.alpha_band ? ds->GetRasterBand(info.alpha_band)
                                         : ds->GetRasterBand(info.bands[0])->GetMaskBand();
    // Any non-zero alpha counts as data; partial alpha is not blended.
    GDALRasterIOExtraArg nearest;
    INIT_RASTERIO_EXTRA_ARG(nearest);
    if (vb->RasterIO(GF_Read, x0, y0, w, h, validity.data(), bw, bh, GDT_Byte, 1, bw, &nearest) !=
        CE_None) {
      return fail(info.alpha_band ? "alpha band" : "mask band");
    }
  }
  bool all_have_nodata = true;
  for (const auto& nd : info.nodata) all_have_nodata &= nd.has_value();
  dispatch_cell_type(info.type, [&]<typename T>() {
    const size_t n = out->pixels();
    const int nb = out->bands;
    if constexpr (std::is_floating_point_v<T>) {
      for (int b = 0; b < nb; ++b) {
        const T* p = out->band_as<T>(b);
        for (size_t i = 0; i < n; ++i)
          if (std::isnan(p[i])) validity[i] = 0;
      }
    }
    if (!all_have_nodata) return;
    // Nodata where every band holds its nodata value; a nodata value the
    // cell type cannot hold (or NaN) matches nothing. Band by band, so the
    // loops vectorise.
    thread_local std::vector<uint8_t> match;
    match.assign(n, 1);
    for (int b = 0; b < nb; ++b) {
      const double d = *info.nodata[b];
      if (!holds_exactly<T>(d)) return;
      const T nd = static_cast<T>(d);
      const T* p = out->band_as<T>(b);
      uint8_t* m = match.data();
      for (size_t i = 0; i < n; ++i) m[i] &= p[i] == nd;
    }
    const uint8_t* m = match.data();
    for (size_t i = 0; i < n; ++i) validity[i] &= static_cast<uint8_t>(m[i] - 1);
  });
  return Status::ok();
}

}  // namespace kiln

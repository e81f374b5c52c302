// kiln_floor_probe: the floor of one tiling job, the least work any tool must
// do to turn a source into N tiles: decode the source once and encode N tiles
// once, with the same codec and settings, on one thread.
//
//   kiln_floor_probe --source S --bands 1,2,3 --tiles N --format png|webp|tif
//       [--png-level L] [--webp-quality Q] [--webp-lossless]
//       [--tif-compression deflate|zstd] [--tif-level L] [--nodata V]
//       [--with-alpha]
//
// (a) decode: GDAL RasterIO of every pixel of the chosen bands, one strip of
//     256 rows (one row of tiles) at a time, so memory stays at one strip.
// (b) encode: N tiles of 256x256 cut from the decoded strips, spread evenly
//     over the source's tiles (each tile encoded more than once when N
//     exceeds them), with Kiln's own encoders (raster/codec.h).
// Only those two are timed: cutting tiles and deriving masks are not work a
// tool must do. Prints one JSON object:
//   {"decode_s", "encode_s", "floor_s", "tiles", "bytes", ...}
//
// --with-alpha: tiles carry the source's validity (nodata, alpha or mask
// band; pixels past the raster's edge are invalid), so tiles that touch
// invalid pixels are encoded with an alpha channel, as Kiln's edge tiles are.
// Without it every pixel is valid and no tile has alpha.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <cpl_conv.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "raster/codec.h"
#include "raster/gdal_env.h"
#include "raster/source.h"
#include "raster/tile_grid.h"

namespace kiln {
namespace {

constexpr int kTileSize = 256;
// Tif tiles get a Web Mercator georeference at this zoom (any zoom with
// enough tile slots does; the georeference costs the same).
constexpr int kTifZoom = 20;

struct ProbeOptions {
  std::string source;
  std::string bands;
  int64_t tiles = 0;
  std::string format = "png";
  int png_level = 6;
  int webp_quality = 75;
  bool webp_lossless = false;
  std::string tif_compression = "deflate";
  int tif_level = 6;
  std::optional<double> nodata;
  bool with_alpha = false;
};

struct ProbeResult {
  double decode_s = 0;
  double encode_s = 0;
  int64_t tiles = 0;
  int64_t tiles_with_alpha = 0;
  uint64_t bytes = 0;
  int width = 0;
  int height = 0;
  int bands = 0;
  CellType type = CellType::kUInt8;
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Result<std::vector<int>> parse_bands(const std::string& text) {
  std::vector<int> bands;
  if (text.empty()) return bands;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long b = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || b < 1) {
      return invalid_argument("--bands: '" + item + "' is not a 1-based band number");
    }
    bands.push_back(static_cast<int>(b));
  }
  return bands;
}

Result<EncodeOptions> encode_options(const ProbeOptions& o) {
  EncodeOptions e;
  KILN_ASSIGN_OR_RETURN(e.format, parse_tile_format(o.format));
  e.png_level = o.png_level;
  e.webp_quality = o.webp_quality;
  e.webp_lossless = o.webp_lossless;
  if (o.tif_compression == "deflate") {
    e.tiff_compression = TiffCompression::kDeflate;
  } else if (o.tif_compression == "zstd") {
    e.tiff_compression = TiffCompression::kZstd;
  } else {
    return invalid_argument("--tif-compression: '" + o.tif_compression +
                            "' (expected deflate or zstd)");
  }
  e.tiff_level = o.tif_level;
  e.nodata = o.nodata;
  return e;
}

// How many times tile i of `total` is encoded so that `wanted` encodes in all
// are spread evenly: encode k (0 <= k < wanted) goes to tile k * total / wanted.
int64_t multiplicity(int64_t i, int64_t total, int64_t wanted) {
  auto first_k = [&](int64_t t) { return (t * wanted + total - 1) / total; };  // ceil(t*w/T)
  return first_k(i + 1) - first_k(i);
}

// Marks invalid the pixels of `strip` (rows [0, h) are real) where every band
// equals its nodata value (NaN matches NaN).
void mask_nodata(const SourceInfo& info, int h, Raster* strip) {
  bool any_nodata = false;
  for (const auto& nd : info.nodata) any_nodata |= nd.has_value();
  if (!any_nodata) return;
  const size_t n = static_cast<size_t>(strip->width) * h;
  dispatch_cell_type(strip->type, [&]<typename T>() {
    for (size_t i = 0; i < n; ++i) {
      bool all_nodata = true;
      for (int b = 0; b < strip->bands && all_nodata; ++b) {
        const auto& nd = info.nodata[b];
        const double v = static_cast<double>(strip->band_as<T>(b)[i]);
        all_nodata = nd && (v == *nd || (std::isnan(v) && std::isnan(*nd)));
      }
      if (all_nodata) strip->mask[i] = 0;
    }
  });
}

// Decodes rows [y0, y0+h) of the read bands into `strip` (timed), and, for
// --with-alpha, their validity into strip->mask (the mask band's decode is
// timed too: it is file data a tool must read).
Status decode_strip(GDALDataset* ds, const SourceInfo& info, int y0, int h, bool with_alpha,
                    Raster* strip, double* decode_s) {
  const int w = info.width;
  const size_t cell = cell_bytes(info.type);
  std::vector<int> band_map = info.bands;
  Clock::time_point t0 = Clock::now();
  const CPLErr err = ds->RasterIO(
      GF_Read, 0, y0, w, h, strip->data.data(), w, h, to_gdal(info.type),
      static_cast<int>(band_map.size()), band_map.data(), static_cast<GSpacing>(cell),
      static_cast<GSpacing>(cell) * w, static_cast<GSpacing>(strip->band_bytes()), nullptr);
  *decode_s += seconds_since(t0);
  if (err != CE_None) {
    return input_error(info.uri + ": cannot decode rows " + std::to_string(y0) + "-" +
                       std::to_string(y0 + h - 1) + ": " + last_gdal_error());
  }
  std::fill(strip->mask.begin(), strip->mask.end(), uint8_t{0});
  std::fill(strip->mask.begin(), strip->mask.begin() + static_cast<size_t>(w) * h, uint8_t{255});
  if (!with_alpha) return Status::ok();
  if (info.alpha_band > 0 || info.per_dataset_mask) {
    GDALRasterBand* mb = info.alpha_band > 0 ? ds->GetRasterBand(info.alpha_band)
                                             : ds->GetRasterBand(info.bands[0])->GetMaskBand();
    std::vector<uint8_t> m(static_cast<size_t>(w) * h);
    t0 = Clock::now();
    const CPLErr merr = mb->RasterIO(GF_Read, 0, y0, w, h, m.data(), w, h, GDT_Byte, 0, 0, nullptr);
    *decode_s += seconds_since(t0);
    if (merr != CE_None) {
      return input_error(info.uri + ": cannot decode the mask of rows " + std::to_string(y0) + "-" +
                         std::to_string(y0 + h - 1) + ": " + last_gdal_error());
    }
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] == 0) strip->mask[i] = 0;
  }
  mask_nodata(info, h, strip);
  return Status::ok();
}

// Copies the 256x256 tile at column `tx` out of `strip`; pixels past the
// raster's right edge or the strip's last real row keep the strip's zeros
// and invalid mask (or are valid without --with-alpha).
void cut_tile(const Raster& strip, int tx, bool with_alpha, Raster* tile) {
  const size_t cell = cell_bytes(strip.type);
  const int x0 = tx * kTileSize;
  const int w = std::min(kTileSize, strip.width - x0);
  std::fill(tile->data.begin(), tile->data.end(), uint8_t{0});
  for (int b = 0; b < strip.bands; ++b) {
    for (int y = 0; y < kTileSize; ++y) {
      const uint8_t* src = strip.band_data(b) + (static_cast<size_t>(y) * strip.width + x0) * cell;
      uint8_t* dst = tile->band_data(b) + static_cast<size_t>(y) * kTileSize * cell;
      std::copy(src, src + w * cell, dst);
    }
  }
  if (!with_alpha) {
    std::fill(tile->mask.begin(), tile->mask.end(), uint8_t{255});
    return;
  }
  std::fill(tile->mask.begin(), tile->mask.end(), uint8_t{0});
  for (int y = 0; y < kTileSize; ++y) {
    const uint8_t* src = strip.mask.data() + static_cast<size_t>(y) * strip.width + x0;
    std::copy(src, src + w, tile->mask.data() + static_cast<size_t>(y) * kTileSize);
  }
}

Result<ProbeResult> run_probe(const ProbeOptions& o) {
  init_gdal();
  // One thread: no multi-threaded decoding inside GDAL.
  CPLSetConfigOption("GDAL_NUM_THREADS", "1");
  KILN_ASSIGN_OR_RETURN(EncodeOptions eo, encode_options(o));
  if (o.tiles < 0) return invalid_argument("--tiles must be >= 0");
  SourceRequest req;
  req.uri = o.source;
  KILN_ASSIGN_OR_RETURN(req.bands, parse_bands(o.bands));
  KILN_ASSIGN_OR_RETURN(SourceInfo info, inspect_source(req));
  const int nb = static_cast<int>(info.bands.size());
  KILN_RETURN_IF_ERROR(check_encodable(eo.format, info.type, nb).with_context(o.source));
  KILN_ASSIGN_OR_RETURN(DatasetPtr ds, open_raster(o.source));

  ProbeResult r;
  r.width = info.width;
  r.height = info.height;
  r.bands = nb;
  r.type = info.type;
  const int64_t cols = (info.width + kTileSize - 1) / kTileSize;
  const int64_t rows = (info.height + kTileSize - 1) / kTileSize;
  const int64_t total = cols * rows;
  const TileGrid grid = TileGrid::web_mercator(kTileSize);
  const bool alpha_codec = eo.format != TileFormat::kTiff;

  Raster strip(info.width, kTileSize, nb, info.type);
  Raster tile(kTileSize, kTileSize, nb, info.type);
  for (int64_t ty = 0; ty < rows; ++ty) {
    const int y0 = static_cast<int>(ty * kTileSize);
    const int h = std::min(kTileSize, info.height - y0);
    if (h < kTileSize) std::fill(strip.data.begin(), strip.data.end(), uint8_t{0});
    KILN_RETURN_IF_ERROR(decode_strip(ds.get(), info, y0, h, o.with_alpha, &strip, &r.decode_s));
    for (int64_t tx = 0; tx < cols; ++tx) {
      const int64_t times = multiplicity(ty * cols + tx, total, o.tiles);
      if (times == 0) continue;
      cut_tile(strip, static_cast<int>(tx), o.with_alpha, &tile);
      const TileGeoref georef{grid.geotransform(kTifZoom, tx, ty), grid.crs_wkt()};
      const bool has_alpha = alpha_codec && !tile.all_valid();
      for (int64_t k = 0; k < times; ++k) {
        const Clock::time_point t0 = Clock::now();
        auto bytes = encode_tile(tile, eo, &georef);
        r.encode_s += seconds_since(t0);
        if (!bytes.is_ok()) return bytes.status().with_context(o.source);
        r.bytes += bytes->size();
        ++r.tiles;
        if (has_alpha) ++r.tiles_with_alpha;
      }
    }
  }
  return r;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  kiln::ProbeOptions o;
  std::string nodata;
  CLI::App app{
      "The floor of a tiling job on one thread: decode the source once, encode N 256x256 tiles "
      "once with Kiln's encoders. Prints JSON {decode_s, encode_s, floor_s, tiles, bytes, ...}."};
  app.add_option("--source", o.source, "Source raster (path or GDAL name)")->required();
  app.add_option("--bands", o.bands, "1-based bands, e.g. 1,2,3 (default: every non-alpha band)");
  app.add_option("--tiles", o.tiles, "Number of tiles to encode")->required();
  app.add_option("--format", o.format, "png, webp or tif")
      ->check(CLI::IsMember({"png", "webp", "tif"}));
  app.add_option("--png-level", o.png_level, "zlib level 0-9 (default 6)");
  app.add_option("--webp-quality", o.webp_quality, "WebP quality 0-100 (default 75)");
  app.add_flag("--webp-lossless", o.webp_lossless, "Lossless WebP");
  app.add_option("--tif-compression", o.tif_compression, "deflate (default) or zstd")
      ->check(CLI::IsMember({"deflate", "zstd"}));
  app.add_option("--tif-level", o.tif_level, "DEFLATE 1-12 / ZSTD 1-22 (default 6)");
  app.add_option("--nodata", nodata, "Nodata value declared in tif tiles (number or nan)");
  app.add_flag("--with-alpha", o.with_alpha,
               "Tiles carry the source's validity, so tiles touching nodata get alpha");
  CLI11_PARSE(app, argc, argv);
  if (!nodata.empty()) {
    char* end = nullptr;
    const double v = std::strtod(nodata.c_str(), &end);
    if (*end != '\0') {
      std::fprintf(stderr, "error: --nodata: '%s' is not a number or nan\n", nodata.c_str());
      return 2;
    }
    o.nodata = v;
  }

  auto r = kiln::run_probe(o);
  if (!r.is_ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().to_string().c_str());
    return r.status().code() == kiln::StatusCode::kInvalidArgument ? 2 : 3;
  }
  nlohmann::json j = {
      {"decode_s", r->decode_s},
      {"encode_s", r->encode_s},
      {"floor_s", r->decode_s + r->encode_s},
      {"tiles", r->tiles},
      {"tiles_with_alpha", r->tiles_with_alpha},
      {"bytes", r->bytes},
      {"source", o.source},
      {"width", r->width},
      {"height", r->height},
      {"bands", r->bands},
      {"cell_type", kiln::cell_type_name(r->type)},
      {"format", o.format},
      {"decode_mpix_per_s", r->decode_s > 0 ? r->width * double(r->height) / r->decode_s / 1e6 : 0},
      {"encode_tiles_per_s", r->encode_s > 0 ? r->tiles / r->encode_s : 0},
  };
  std::cout << j.dump() << "\n";
  return 0;
}

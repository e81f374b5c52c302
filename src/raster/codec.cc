#include "raster/codec.h"

#include <string>

#include "raster/png_encoder.h"
#include "raster/tiff_encoder.h"
#include "raster/webp_encoder.h"

namespace kiln {
namespace {

std::string describe_layer(CellType type, int bands) {
  return "this layer has " + std::to_string(bands) + (bands == 1 ? " band" : " bands") + " of " +
         cell_type_name(type);
}

// Builds the refusal for png/webp: what the format holds, what the layer has,
// and the smallest change that would fit (or tif, which holds anything).
Status refuse(const char* format, const char* holds, bool bands_fit, bool type_fit,
              const char* type_fix, CellType type, int bands) {
  std::string fix;
  if (!bands_fit) fix = "select 1 or 3 bands";
  if (!type_fit) fix += std::string(fix.empty() ? "" : " and ") + type_fix;
  return invalid_argument(std::string(format) + " tiles hold " + holds +
                          " (transparency comes from nodata); " + describe_layer(type, bands) +
                          ": " + fix + ", or use tif");
}

Status check_options(const EncodeOptions& o) {
  switch (o.format) {
    case TileFormat::kPng:
      if (o.png_level < 0 || o.png_level > 9) {
        return invalid_argument("png level " + std::to_string(o.png_level) +
                                " is out of range (zlib levels are 0-9)");
      }
      break;
    case TileFormat::kWebp:
      if (o.webp_quality < 0 || o.webp_quality > 100) {
        return invalid_argument("webp quality " + std::to_string(o.webp_quality) +
                                " is out of range (0-100)");
      }
      break;
    case TileFormat::kTiff: {
      // The ranges GDAL's GTiff driver documents for ZLEVEL (libdeflate) and
      // ZSTD_LEVEL; outside them GDAL only warns and picks something else.
      const bool zstd = o.tiff_compression == TiffCompression::kZstd;
      const int max_level = zstd ? 22 : 12;
      if (o.tiff_level < 1 || o.tiff_level > max_level) {
        return invalid_argument(std::string("tif ") + (zstd ? "zstd" : "deflate") + " level " +
                                std::to_string(o.tiff_level) + " is out of range (1-" +
                                std::to_string(max_level) + ")");
      }
      break;
    }
  }
  return Status::ok();
}

}  // namespace

const char* tile_extension(TileFormat f) {
  switch (f) {
    case TileFormat::kPng:
      return "png";
    case TileFormat::kWebp:
      return "webp";
    case TileFormat::kTiff:
      return "tif";
  }
  return "?";
}

Result<TileFormat> parse_tile_format(std::string_view name) {
  if (name == "png") return TileFormat::kPng;
  if (name == "webp") return TileFormat::kWebp;
  if (name == "tif" || name == "tiff") return TileFormat::kTiff;
  return invalid_argument("unknown tile format '" + std::string(name) +
                          "' (expected png, webp or tif)");
}

Status check_encodable(TileFormat format, CellType type, int bands) {
  if (bands < 1)
    return invalid_argument("a tile needs at least 1 band; " + describe_layer(type, bands));
  const bool bands_fit = bands == 1 || bands == 3;
  switch (format) {
    case TileFormat::kPng: {
      const bool type_fit = type == CellType::kUInt8 || type == CellType::kUInt16;
      if (bands_fit && type_fit) return Status::ok();
      return refuse("png", "1 or 3 bands of uint8 or uint16", bands_fit, type_fit,
                    "set cell_type to uint8 or uint16", type, bands);
    }
    case TileFormat::kWebp: {
      const bool type_fit = type == CellType::kUInt8;
      if (bands_fit && type_fit) return Status::ok();
      return refuse("webp", "1 or 3 bands of uint8", bands_fit, type_fit, "set cell_type to uint8",
                    type, bands);
    }
    case TileFormat::kTiff:
      return Status::ok();
  }
  return Status::ok();
}

Result<std::string> encode_tile(const Raster& tile, const EncodeOptions& options,
                                const TileGeoref* georef) {
  assert(check_encodable(options.format, tile.type, tile.bands).is_ok());
  assert(tile.data.size() == tile.band_bytes() * tile.bands && tile.mask.size() == tile.pixels());
  KILN_RETURN_IF_ERROR(check_options(options));
  switch (options.format) {
    case TileFormat::kPng:
      return encode_png(tile, options.png_level);
    case TileFormat::kWebp:
      return encode_webp(tile, options.webp_lossless, options.webp_quality);
    case TileFormat::kTiff:
      assert(georef != nullptr);
      return encode_tiff(tile, options, *georef);
  }
  return internal_error("unknown tile format");
}

}  // namespace kiln

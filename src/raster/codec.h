// Tile encoders: a Raster in, the bytes of one tile file out.
//
//   png   uint8 or uint16; 1 band (grey) or 3 bands (RGB); when the tile has
//         invalid pixels (mask 0) an alpha channel is added (grey+alpha,
//         RGBA) with alpha 0 there and 255 elsewhere. Lossless.
//   webp  uint8; 1 band (written as grey RGB) or 3 bands; alpha from the mask
//         as for png. Lossy (quality 0-100) or lossless.
//   tif   any cell type and band count; DEFLATE or ZSTD; carries the tile's
//         geotransform and CRS; invalid pixels hold the nodata value when the
//         layer has one, else a per-dataset internal mask marks them.
//
// All encoders are deterministic: the same Raster and options give the same
// bytes (no timestamps), which makes re-runs byte-identical.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "raster/raster.h"

namespace kiln {

enum class TileFormat { kPng, kWebp, kTiff };

enum class TiffCompression { kDeflate, kZstd };

struct EncodeOptions {
  TileFormat format = TileFormat::kPng;
  // Deflate level for png (0-9). 2, not libpng's 6: on real Landsat tiles it
  // encodes 1.6x faster for 1.3% more bytes (bench/README.md has the table;
  // BM_Encode/png_level* measures it), and the tiles are still smaller
  // than gdal2tiles' at level 6.
  int png_level = 2;
  bool webp_lossless = false;
  int webp_quality = 75;  // 0-100, lossy only
  TiffCompression tiff_compression = TiffCompression::kDeflate;
  int tiff_level = 6;            // DEFLATE 1-12 / ZSTD 1-22
  std::optional<double> nodata;  // written into tif tiles
};

// Where a tile sits on Earth; needed by the tif encoder only.
struct TileGeoref {
  std::array<double, 6> geotransform{};
  std::string crs_wkt;  // may be empty (no CRS)
};

// File extension without the dot: "png", "webp", "tif".
const char* tile_extension(TileFormat f);
// Parses "png" | "webp" | "tif" ("tiff" accepted).
Result<TileFormat> parse_tile_format(std::string_view name);

// Returns ok if `format` can hold tiles of this cell type and band count,
// else kInvalidArgument with a message that says what would fit.
Status check_encodable(TileFormat format, CellType type, int bands);

// Encodes one tile. Thread-safe (no shared state). REQUIRES: check_encodable
// is ok for the tile's type and bands; georef non-null for kTiff.
Result<std::string> encode_tile(const Raster& tile, const EncodeOptions& options,
                                const TileGeoref* georef);

}  // namespace kiln

#include "render/tif_strip_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "raster/tiff_encoder.h"

namespace kiln::render {
namespace {

// A tile of `type` with varied values (a ramp with noise, so the predictors
// and the compressors see real work), every band different.
Raster sample_tile(int w, int h, int bands, CellType type, uint32_t seed) {
  Raster t(w, h, bands, type);
  std::mt19937 rng(seed);
  dispatch_cell_type(type, [&]<typename T>() {
    for (int b = 0; b < bands; ++b) {
      T* d = t.band_as<T>(b);
      for (size_t i = 0; i < t.pixels(); ++i) {
        const double v = static_cast<double>(i % 97) * (b + 1) + static_cast<double>(rng() % 7);
        d[i] = static_cast<T>(std::is_signed_v<T> ? v - 150 : v);
      }
    }
  });
  std::fill(t.mask.begin(), t.mask.end(), 255);
  return t;
}

void expect_same(const DecodedTile& a, const DecodedTile& b, const std::string& what) {
  EXPECT_EQ(a.raster.width, b.raster.width) << what;
  EXPECT_EQ(a.raster.height, b.raster.height) << what;
  EXPECT_EQ(a.raster.bands, b.raster.bands) << what;
  EXPECT_EQ(a.raster.type, b.raster.type) << what;
  EXPECT_EQ(a.raster.data, b.raster.data) << what;
  EXPECT_EQ(a.raster.mask, b.raster.mask) << what;
  EXPECT_EQ(a.nodata.has_value(), b.nodata.has_value()) << what;
  if (a.nodata && b.nodata) {
    EXPECT_EQ(*a.nodata, *b.nodata) << what;
  }
  EXPECT_EQ(a.has_geotransform, b.has_geotransform) << what;
  EXPECT_EQ(a.geotransform, b.geotransform) << what;
}

// Every layout the ingest writes decodes on the fast path, to exactly what
// GDAL decodes.
TEST(TifStripDecoder, AgreesWithGdalOnEverythingTheEncoderWrites) {
  const TileGeoref geo{
      {-20037508.342789244, 152.87405657041106, 0, 20037508.342789244, 0, -152.87405657041106}, ""};
  int checked = 0;
  for (CellType type : {CellType::kUInt8, CellType::kUInt16, CellType::kInt16, CellType::kUInt32,
                        CellType::kInt32, CellType::kFloat32, CellType::kFloat64}) {
    for (int bands : {1, 3, 4}) {
      for (TiffCompression c : {TiffCompression::kDeflate, TiffCompression::kZstd}) {
        for (int variant = 0; variant < 3; ++variant) {  // all valid, nodata, internal mask
          Raster t = sample_tile(37, 29, bands, type, static_cast<uint32_t>(checked));
          EncodeOptions o;
          o.format = TileFormat::kTiff;
          o.tiff_compression = c;
          if (variant == 1) o.nodata = 3.0;
          if (variant == 2) {
            for (size_t i = 0; i < t.pixels(); i += 5) t.mask[i] = 0;
          }
          const std::string what = std::string(cell_type_name(type)) + " x" +
                                   std::to_string(bands) + " " +
                                   (c == TiffCompression::kZstd ? "zstd" : "deflate") +
                                   " variant " + std::to_string(variant);
          Result<std::string> bytes = encode_tiff(t, o, geo);
          ASSERT_TRUE(bytes.is_ok()) << what << ": " << bytes.status().message();
          Result<std::optional<DecodedTile>> fast = decode_kiln_tif(*bytes);
          ASSERT_TRUE(fast.is_ok()) << what << ": " << fast.status().message();
          ASSERT_TRUE(fast->has_value()) << what << ": left to GDAL";
          Result<DecodedTile> slow = decode_tif_tile_with_gdal(*bytes);
          ASSERT_TRUE(slow.is_ok()) << what << ": " << slow.status().message();
          expect_same(**fast, *slow, what);
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 7 * 3 * 2 * 3);
}

TEST(TifStripDecoder, NanIsMaskedLikeGdal) {
  Raster t(4, 2, 1, CellType::kFloat32);
  for (size_t i = 0; i < 8; ++i) t.band_as<float>(0)[i] = static_cast<float>(i);
  t.band_as<float>(0)[3] = std::numeric_limits<float>::quiet_NaN();
  std::fill(t.mask.begin(), t.mask.end(), 255);
  EncodeOptions o;
  o.format = TileFormat::kTiff;
  Result<std::string> bytes = encode_tiff(t, o, TileGeoref{{0, 1, 0, 0, 0, -1}, ""});
  ASSERT_TRUE(bytes.is_ok());
  Result<std::optional<DecodedTile>> fast = decode_kiln_tif(*bytes);
  ASSERT_TRUE(fast.is_ok() && fast->has_value());
  EXPECT_EQ((*fast)->raster.mask[3], 0);
  EXPECT_EQ((*fast)->raster.mask[2], 255);
}

// Other TIFFs (here: GDAL's own tiled, uncompressed) are left to GDAL, and
// decode_tif_tile still reads them.
TEST(TifStripDecoder, LeavesOtherLayoutsToGdal) {
  EXPECT_FALSE(decode_kiln_tif("").value().has_value());
  EXPECT_FALSE(decode_kiln_tif(std::string("MM\0*\0\0\0\x08", 8)).value().has_value());
  EXPECT_FALSE(decode_kiln_tif(std::string("II*\0\xff\xff\xff\x7f", 8)).value().has_value());
}

// A header that claims more pixels than any tile holds is refused before
// anything is allocated for them, by both decoders.
TEST(TifStripDecoder, RefusesAHeaderClaimingAHugeTile) {
  Raster t = sample_tile(8, 8, 9, CellType::kFloat64, 3);
  EncodeOptions o;
  o.format = TileFormat::kTiff;
  Result<std::string> bytes = encode_tiff(t, o, TileGeoref{{0, 1, 0, 0, 0, -1}, ""});
  ASSERT_TRUE(bytes.is_ok());
  std::string forged = *bytes;
  // The first directory's ImageWidth, ImageLength and RowsPerStrip entries,
  // set to 4096: 4096 x 4096 x 9 bands x 8 bytes = 1.2 GB in one strip.
  auto u16 = [&forged](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(forged[at]) |
                                 static_cast<uint8_t>(forged[at + 1]) << 8);
  };
  const size_t ifd = static_cast<uint8_t>(forged[4]) | static_cast<uint8_t>(forged[5]) << 8 |
                     static_cast<uint8_t>(forged[6]) << 16 |
                     static_cast<size_t>(static_cast<uint8_t>(forged[7])) << 24;
  int patched = 0;
  for (size_t i = 0; i < u16(ifd); ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (u16(e) == 256 || u16(e) == 257 || u16(e) == 278) {
      forged[e + 8] = 0;
      forged[e + 9] = 0x10;  // 4096, little-endian, SHORT or LONG alike
      forged[e + 10] = 0;
      forged[e + 11] = 0;
      ++patched;
    }
  }
  ASSERT_EQ(patched, 3);
  Result<std::optional<DecodedTile>> fast = decode_kiln_tif(forged);
  ASSERT_FALSE(fast.is_ok());
  EXPECT_EQ(fast.status().code(), StatusCode::kInputError);
  EXPECT_NE(fast.status().message().find("larger than a tile can be"), std::string::npos)
      << fast.status().message();
  Result<DecodedTile> slow = decode_tif_tile_with_gdal(forged);
  ASSERT_FALSE(slow.is_ok());
  EXPECT_EQ(slow.status().code(), StatusCode::kInputError);
}

// Damaged bytes never crash and never decode to something else silently:
// each is refused (kInputError) or left to GDAL, or decodes to the same
// raster when the damage fell on bytes nothing reads.
TEST(TifStripDecoder, DamagedTilesAreRefusedOrLeftToGdal) {
  Raster t = sample_tile(64, 64, 3, CellType::kUInt16, 7);
  EncodeOptions o;
  o.format = TileFormat::kTiff;
  Result<std::string> bytes = encode_tiff(t, o, TileGeoref{{0, 1, 0, 0, 0, -1}, ""});
  ASSERT_TRUE(bytes.is_ok());
  std::mt19937 rng(1);
  int refused = 0, other = 0, same = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string damaged = *bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) damaged[rng() % damaged.size()] ^= 1 << (rng() % 8);
    if (i % 7 == 0) damaged.resize(rng() % damaged.size());
    Result<std::optional<DecodedTile>> d = decode_kiln_tif(damaged);
    if (!d.is_ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInputError) << d.status().message();
      ++refused;
    } else if (!d->has_value()) {
      ++other;
    } else {
      ++same;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(other, 0);
}

}  // namespace
}  // namespace kiln::render

#include "raster/codec.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <cpl_vsi.h>
#include <gtest/gtest.h>

#include "raster/gdal_env.h"

namespace kiln {
namespace {

// A tile whose every pixel differs from its neighbours and between bands, so
// a swapped band, flipped row or wrong byte order shows up. Valid everywhere.
Raster make_pattern(int w, int h, int bands, CellType type) {
  Raster r(w, h, bands, type);
  dispatch_cell_type(type, [&]<typename T>() {
    for (int b = 0; b < bands; ++b) {
      T* p = r.band_as<T>(b);
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          // Wide types get values above 255 (byte order matters), signed
          // ones negative values, floats fractions.
          double v = (x * 7 + y * 13 + b * 50) % 256;
          if (cell_bytes(type) > 1) v = v * 251 + x;
          if constexpr (std::is_signed_v<T>) v -= 20000;
          if constexpr (std::is_floating_point_v<T>) v = v / 8 + 0.125;
          p[static_cast<size_t>(y) * w + x] = static_cast<T>(v);
        }
      }
    }
  });
  std::fill(r.mask.begin(), r.mask.end(), 255);
  return r;
}

// Marks a block and one diagonal invalid, writing `fill` under them as the
// tiling pipeline does.
void punch_holes(Raster& r, double fill) {
  dispatch_cell_type(r.type, [&]<typename T>() {
    for (int y = 0; y < r.height; ++y) {
      for (int x = 0; x < r.width; ++x) {
        if ((x < r.width / 4 && y < r.height / 3) || x == y) {
          const size_t i = static_cast<size_t>(y) * r.width + x;
          r.mask[i] = 0;
          for (int b = 0; b < r.bands; ++b) r.band_as<T>(b)[i] = static_cast<T>(fill);
        }
      }
    }
  });
}

std::string wkt_of(int epsg) {
  OGRSpatialReference srs;
  EXPECT_EQ(srs.importFromEPSG(epsg), OGRERR_NONE);
  char* wkt = nullptr;
  srs.exportToWkt(&wkt);
  std::string out = wkt;
  CPLFree(wkt);
  return out;
}

// Encoded bytes opened with GDAL from /vsimem/, the way a tile reader would.
class Decoded {
 public:
  Decoded(std::string bytes, const char* ext) : bytes_(std::move(bytes)) {
    init_gdal();
    static std::atomic<int> next{0};
    name_ = "/vsimem/kiln_codec_test/" + std::to_string(next++) + "." + ext;
    VSIFCloseL(VSIFileFromMemBuffer(name_.c_str(), reinterpret_cast<GByte*>(bytes_.data()),
                                    bytes_.size(), FALSE));
    ds_.reset(GDALDataset::Open(name_.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY));
  }
  Decoded(const Decoded&) = delete;
  Decoded& operator=(const Decoded&) = delete;
  ~Decoded() {
    ds_.reset();
    VSIUnlink(name_.c_str());
  }
  GDALDataset* ds() const { return ds_.get(); }
  const char* driver() const { return ds_->GetDriver()->GetDescription(); }

  // Band `b` (1-based) as T.
  template <typename T>
  std::vector<T> band(int b) const {
    std::vector<T> out(static_cast<size_t>(ds_->GetRasterXSize()) * ds_->GetRasterYSize());
    GDALDataType type = GDT_Unknown;
    if constexpr (std::is_same_v<T, uint8_t>) type = GDT_Byte;
    if constexpr (std::is_same_v<T, uint16_t>) type = GDT_UInt16;
    if constexpr (std::is_same_v<T, int16_t>) type = GDT_Int16;
    if constexpr (std::is_same_v<T, float>) type = GDT_Float32;
    EXPECT_EQ(ds_->GetRasterBand(b)->RasterIO(
                  GF_Read, 0, 0, ds_->GetRasterXSize(), ds_->GetRasterYSize(), out.data(),
                  ds_->GetRasterXSize(), ds_->GetRasterYSize(), type, 0, 0, nullptr),
              CE_None);
    return out;
  }
  // Band `b` exactly as stored, in the file's own cell type.
  std::vector<uint8_t> raw_band(int b) const {
    GDALRasterBand* band = ds_->GetRasterBand(b);
    const int size = GDALGetDataTypeSizeBytes(band->GetRasterDataType());
    std::vector<uint8_t> out(static_cast<size_t>(ds_->GetRasterXSize()) * ds_->GetRasterYSize() *
                             size);
    EXPECT_EQ(band->RasterIO(GF_Read, 0, 0, ds_->GetRasterXSize(), ds_->GetRasterYSize(),
                             out.data(), ds_->GetRasterXSize(), ds_->GetRasterYSize(),
                             band->GetRasterDataType(), 0, 0, nullptr),
              CE_None);
    return out;
  }
  std::vector<uint8_t> mask() const {
    std::vector<uint8_t> out(static_cast<size_t>(ds_->GetRasterXSize()) * ds_->GetRasterYSize());
    EXPECT_EQ(ds_->GetRasterBand(1)->GetMaskBand()->RasterIO(
                  GF_Read, 0, 0, ds_->GetRasterXSize(), ds_->GetRasterYSize(), out.data(),
                  ds_->GetRasterXSize(), ds_->GetRasterYSize(), GDT_Byte, 0, 0, nullptr),
              CE_None);
    return out;
  }

 private:
  std::string bytes_;
  std::string name_;
  DatasetPtr ds_;
};

std::vector<uint8_t> band_bytes(const Raster& r, int b) {
  return std::vector<uint8_t>(r.band_data(b), r.band_data(b) + r.band_bytes());
}

template <typename T>
std::vector<T> band_values(const Raster& r, int b) {
  return std::vector<T>(r.band_as<T>(b), r.band_as<T>(b) + r.pixels());
}

std::string encode(const Raster& r, const EncodeOptions& o, const TileGeoref* georef = nullptr) {
  Result<std::string> bytes = encode_tile(r, o, georef);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  return bytes.is_ok() ? *bytes : std::string();
}

EncodeOptions format(TileFormat f) {
  EncodeOptions o;
  o.format = f;
  return o;
}

// The chunk types of a PNG file, in order.
std::vector<std::string> png_chunks(const std::string& png) {
  std::vector<std::string> types;
  size_t pos = 8;  // signature
  while (pos + 12 <= png.size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(png.data() + pos);
    const size_t length = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    types.emplace_back(png.substr(pos + 4, 4));
    pos += 12 + length;
  }
  return types;
}

// ---- formats, names and refusals ----

TEST(TileFormatTest, NamesRoundTrip) {
  for (TileFormat f : {TileFormat::kPng, TileFormat::kWebp, TileFormat::kTiff}) {
    Result<TileFormat> parsed = parse_tile_format(tile_extension(f));
    ASSERT_TRUE(parsed.is_ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_STREQ(tile_extension(TileFormat::kTiff), "tif");
  Result<TileFormat> tiff = parse_tile_format("tiff");
  ASSERT_TRUE(tiff.is_ok());
  EXPECT_EQ(*tiff, TileFormat::kTiff);
  Result<TileFormat> jpeg = parse_tile_format("jpeg");
  ASSERT_FALSE(jpeg.is_ok());
  EXPECT_EQ(jpeg.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(jpeg.status().message().find("'jpeg'"), std::string::npos);
}

TEST(CheckEncodableTest, AcceptsWhatEachFormatHolds) {
  for (CellType t : {CellType::kUInt8, CellType::kUInt16}) {
    EXPECT_TRUE(check_encodable(TileFormat::kPng, t, 1).is_ok());
    EXPECT_TRUE(check_encodable(TileFormat::kPng, t, 3).is_ok());
  }
  EXPECT_TRUE(check_encodable(TileFormat::kWebp, CellType::kUInt8, 1).is_ok());
  EXPECT_TRUE(check_encodable(TileFormat::kWebp, CellType::kUInt8, 3).is_ok());
  EXPECT_TRUE(check_encodable(TileFormat::kTiff, CellType::kFloat64, 7).is_ok());
  EXPECT_TRUE(check_encodable(TileFormat::kTiff, CellType::kInt64, 1).is_ok());
}

TEST(CheckEncodableTest, RefusalsSayWhatWouldFit) {
  Status s = check_encodable(TileFormat::kPng, CellType::kFloat32, 4);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("png tiles hold 1 or 3 bands of uint8 or uint16"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("this layer has 4 bands of float32"), std::string::npos);
  EXPECT_NE(s.message().find("select 1 or 3 bands"), std::string::npos);
  EXPECT_NE(s.message().find("uint8 or uint16"), std::string::npos);
  EXPECT_NE(s.message().find("or use tif"), std::string::npos);

  // Only the band count is wrong: the fix does not mention the cell type.
  s = check_encodable(TileFormat::kPng, CellType::kUInt8, 2);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("2 bands of uint8: select 1 or 3 bands, or use tif"),
            std::string::npos)
      << s.message();

  s = check_encodable(TileFormat::kPng, CellType::kInt16, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("1 band of int16"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("select 1 or 3 bands"), std::string::npos) << s.message();

  s = check_encodable(TileFormat::kWebp, CellType::kUInt16, 3);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("webp tiles hold 1 or 3 bands of uint8"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("or use tif"), std::string::npos);

  EXPECT_FALSE(check_encodable(TileFormat::kWebp, CellType::kUInt8, 4).is_ok());
  EXPECT_FALSE(check_encodable(TileFormat::kTiff, CellType::kUInt8, 0).is_ok());
}

TEST(EncodeTileTest, RefusesOutOfRangeLevels) {
  Raster r = make_pattern(8, 8, 1, CellType::kUInt8);
  TileGeoref georef;
  EncodeOptions o = format(TileFormat::kPng);
  o.png_level = 10;
  EXPECT_EQ(encode_tile(r, o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = format(TileFormat::kWebp);
  o.webp_quality = 101;
  EXPECT_EQ(encode_tile(r, o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = format(TileFormat::kTiff);
  o.tiff_level = 13;
  EXPECT_EQ(encode_tile(r, o, &georef).status().code(), StatusCode::kInvalidArgument);
  o.tiff_compression = TiffCompression::kZstd;
  EXPECT_TRUE(encode_tile(r, o, &georef).is_ok());  // 13 is a valid zstd level
  o.tiff_level = 23;
  EXPECT_EQ(encode_tile(r, o, &georef).status().code(), StatusCode::kInvalidArgument);
}

// ---- png ----

TEST(PngEncoderTest, Uint8RgbRoundTripsExactlyWithoutAlpha) {
  Raster r = make_pattern(37, 23, 3, CellType::kUInt8);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  EXPECT_STREQ(d.driver(), "PNG");
  EXPECT_EQ(d.ds()->GetRasterXSize(), 37);
  EXPECT_EQ(d.ds()->GetRasterYSize(), 23);
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);  // all valid: no alpha channel
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(d.ds()->GetRasterBand(b + 1)->GetRasterDataType(), GDT_Byte);
    EXPECT_EQ(d.band<uint8_t>(b + 1), band_values<uint8_t>(r, b)) << "band " << b;
  }
}

TEST(PngEncoderTest, Uint16GreyRoundTripsExactly) {
  Raster r = make_pattern(40, 30, 1, CellType::kUInt16);
  ASSERT_GT(*std::max_element(r.band_as<uint16_t>(0), r.band_as<uint16_t>(0) + r.pixels()), 255);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 1);
  EXPECT_EQ(d.ds()->GetRasterBand(1)->GetRasterDataType(), GDT_UInt16);
  EXPECT_EQ(d.band<uint16_t>(1), band_values<uint16_t>(r, 0));
}

TEST(PngEncoderTest, Uint16RgbRoundTripsExactly) {
  Raster r = make_pattern(16, 9, 3, CellType::kUInt16);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);
  for (int b = 0; b < 3; ++b) EXPECT_EQ(d.band<uint16_t>(b + 1), band_values<uint16_t>(r, b));
}

TEST(PngEncoderTest, RgbWithInvalidPixelsGetsAlphaFromMask) {
  Raster r = make_pattern(32, 24, 3, CellType::kUInt8);
  punch_holes(r, 0);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 4);
  EXPECT_EQ(d.ds()->GetRasterBand(4)->GetColorInterpretation(), GCI_AlphaBand);
  EXPECT_EQ(d.band<uint8_t>(4), r.mask);
  for (int b = 0; b < 3; ++b) EXPECT_EQ(d.band<uint8_t>(b + 1), band_values<uint8_t>(r, b));
}

TEST(PngEncoderTest, GreyWithInvalidPixelsGetsAlphaFromMask) {
  Raster r = make_pattern(20, 20, 1, CellType::kUInt8);
  punch_holes(r, 0);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 2);
  EXPECT_EQ(d.ds()->GetRasterBand(2)->GetColorInterpretation(), GCI_AlphaBand);
  EXPECT_EQ(d.band<uint8_t>(2), r.mask);
  EXPECT_EQ(d.band<uint8_t>(1), band_values<uint8_t>(r, 0));
}

TEST(PngEncoderTest, Uint16AlphaIsFullyOpaqueWhereValid) {
  Raster r = make_pattern(12, 12, 1, CellType::kUInt16);
  punch_holes(r, 0);
  Decoded d(encode(r, format(TileFormat::kPng)), "png");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 2);
  std::vector<uint16_t> alpha = d.band<uint16_t>(2);
  for (size_t i = 0; i < r.pixels(); ++i) {
    ASSERT_EQ(alpha[i], r.mask[i] ? 65535 : 0) << "pixel " << i;
  }
  EXPECT_EQ(d.band<uint16_t>(1), band_values<uint16_t>(r, 0));
}

TEST(PngEncoderTest, HasOnlyCriticalChunksAndIsDeterministic) {
  Raster r = make_pattern(64, 64, 3, CellType::kUInt8);
  punch_holes(r, 0);
  std::string a = encode(r, format(TileFormat::kPng));
  std::string b = encode(r, format(TileFormat::kPng));
  EXPECT_EQ(a, b);
  std::vector<std::string> chunks = png_chunks(a);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front(), "IHDR");
  EXPECT_EQ(chunks.back(), "IEND");
  for (size_t i = 1; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i], "IDAT");
}

TEST(PngEncoderTest, EmptyTileIsAnErrorNotACrash) {
  Raster r(0, 4, 1, CellType::kUInt8);  // PNG has no zero-width images
  Result<std::string> bytes = encode_tile(r, format(TileFormat::kPng), nullptr);
  ASSERT_FALSE(bytes.is_ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInternal);
  EXPECT_NE(bytes.status().message().find("0x4 tile"), std::string::npos)
      << bytes.status().message();
  EXPECT_NE(bytes.status().message().find("width is zero"), std::string::npos)
      << bytes.status().message();
}

TEST(PngEncoderTest, LevelTradesSizeForSpeed) {
  Raster r = make_pattern(64, 64, 3, CellType::kUInt8);
  EncodeOptions stored = format(TileFormat::kPng);
  stored.png_level = 0;
  EncodeOptions best = format(TileFormat::kPng);
  best.png_level = 9;
  // Level 0 stores the filtered rows: at least the raw 64*64*3 bytes.
  EXPECT_GE(encode(r, stored).size(), 64u * 64 * 3);
  EXPECT_LT(encode(r, best).size(), encode(r, stored).size() / 2);
}

// ---- webp ----

TEST(WebpEncoderTest, LosslessRgbRoundTripsExactly) {
  Raster r = make_pattern(48, 32, 3, CellType::kUInt8);
  EncodeOptions o = format(TileFormat::kWebp);
  o.webp_lossless = true;
  Decoded d(encode(r, o), "webp");
  ASSERT_NE(d.ds(), nullptr);
  EXPECT_STREQ(d.driver(), "WEBP");
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);
  for (int b = 0; b < 3; ++b) EXPECT_EQ(d.band<uint8_t>(b + 1), band_values<uint8_t>(r, b));
}

TEST(WebpEncoderTest, LosslessGreyBecomesGreyRgb) {
  Raster r = make_pattern(30, 20, 1, CellType::kUInt8);
  EncodeOptions o = format(TileFormat::kWebp);
  o.webp_lossless = true;
  Decoded d(encode(r, o), "webp");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);
  for (int b = 1; b <= 3; ++b) EXPECT_EQ(d.band<uint8_t>(b), band_values<uint8_t>(r, 0));
}

TEST(WebpEncoderTest, LosslessAlphaMatchesMaskAndValidPixelsSurvive) {
  Raster r = make_pattern(40, 40, 3, CellType::kUInt8);
  punch_holes(r, 0);
  EncodeOptions o = format(TileFormat::kWebp);
  o.webp_lossless = true;
  Decoded d(encode(r, o), "webp");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 4);
  EXPECT_EQ(d.band<uint8_t>(4), r.mask);
  for (int b = 0; b < 3; ++b) {
    std::vector<uint8_t> got = d.band<uint8_t>(b + 1);
    for (size_t i = 0; i < r.pixels(); ++i) {
      if (r.mask[i]) {
        ASSERT_EQ(got[i], r.band_data(b)[i]) << "band " << b << " pixel " << i;
      }
    }
  }
}

TEST(WebpEncoderTest, LossyDecodesToTheTileShapeAndLooksAlike) {
  // A smooth gradient, the kind of content lossy webp is meant for.
  Raster r(64, 48, 3, CellType::kUInt8);
  for (int b = 0; b < 3; ++b) {
    for (int y = 0; y < 48; ++y) {
      for (int x = 0; x < 64; ++x)
        r.band_data(b)[y * 64 + x] = static_cast<uint8_t>(x * 2 + y + b * 40);
    }
  }
  std::fill(r.mask.begin(), r.mask.end(), 255);
  EncodeOptions o = format(TileFormat::kWebp);
  o.webp_quality = 90;
  std::string bytes = encode(r, o);
  EXPECT_EQ(bytes, encode(r, o));  // deterministic
  Decoded d(bytes, "webp");
  ASSERT_NE(d.ds(), nullptr);
  EXPECT_EQ(d.ds()->GetRasterXSize(), 64);
  EXPECT_EQ(d.ds()->GetRasterYSize(), 48);
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);
  for (int b = 0; b < 3; ++b) {
    std::vector<uint8_t> got = d.band<uint8_t>(b + 1);
    double error = 0;
    for (size_t i = 0; i < r.pixels(); ++i) error += std::abs(got[i] - r.band_data(b)[i]);
    EXPECT_LT(error / r.pixels(), 4.0) << "band " << b;
  }
  EncodeOptions low = o;
  low.webp_quality = 5;
  EXPECT_LT(encode(r, low).size(), bytes.size());
}

TEST(WebpEncoderTest, LossyWithInvalidPixelsHasAlpha) {
  Raster r = make_pattern(32, 32, 1, CellType::kUInt8);
  punch_holes(r, 0);
  Decoded d(encode(r, format(TileFormat::kWebp)), "webp");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 4);
  EXPECT_EQ(d.band<uint8_t>(4), r.mask);  // webp keeps alpha lossless by default
}

// ---- tif ----

TileGeoref utm_georef() {
  TileGeoref g;
  g.geotransform = {583040.0, 10.0, 0.0, 4507520.0, 0.0, -10.0};
  g.crs_wkt = wkt_of(32618);
  return g;
}

void expect_georef(const Decoded& d, const TileGeoref& want) {
  std::array<double, 6> gt{};
  ASSERT_EQ(d.ds()->GetGeoTransform(gt.data()), CE_None);
  EXPECT_EQ(gt, want.geotransform);
  const OGRSpatialReference* srs = d.ds()->GetSpatialRef();
  if (want.crs_wkt.empty()) {
    EXPECT_EQ(srs, nullptr);
    return;
  }
  ASSERT_NE(srs, nullptr);
  OGRSpatialReference expected;
  ASSERT_EQ(expected.importFromWkt(want.crs_wkt.c_str()), OGRERR_NONE);
  EXPECT_TRUE(srs->IsSame(&expected));
}

TEST(TiffEncoderTest, Float32WithNanNodataRoundTrips) {
  Raster r = make_pattern(50, 40, 2, CellType::kFloat32);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  punch_holes(r, nan);
  TileGeoref georef;
  georef.geotransform = {-8238310.2, 152.87, 0.0, 4970241.3, 0.0, -152.87};
  georef.crs_wkt = wkt_of(3857);
  EncodeOptions o = format(TileFormat::kTiff);
  o.nodata = nan;
  Decoded d(encode(r, o, &georef), "tif");
  ASSERT_NE(d.ds(), nullptr);
  EXPECT_STREQ(d.driver(), "GTiff");
  ASSERT_EQ(d.ds()->GetRasterCount(), 2);
  expect_georef(d, georef);
  for (int b = 0; b < 2; ++b) {
    GDALRasterBand* band = d.ds()->GetRasterBand(b + 1);
    EXPECT_EQ(band->GetRasterDataType(), GDT_Float32);
    int has_nodata = 0;
    EXPECT_TRUE(std::isnan(band->GetNoDataValue(&has_nodata)));
    EXPECT_TRUE(has_nodata);
    EXPECT_EQ(band->GetMaskFlags(), GMF_NODATA);  // nodata, not a mask band
    // Bitwise: NaN != NaN, but the bytes must match.
    EXPECT_EQ(d.raw_band(b + 1), band_bytes(r, b)) << "band " << b;
  }
  EXPECT_EQ(d.mask(), r.mask);  // GDAL derives the mask from the NaNs
}

TEST(TiffEncoderTest, Int16WithNodataRoundTrips) {
  Raster r = make_pattern(33, 17, 1, CellType::kInt16);
  punch_holes(r, -32768);
  const TileGeoref georef = utm_georef();
  EncodeOptions o = format(TileFormat::kTiff);
  o.nodata = -32768;
  Decoded d(encode(r, o, &georef), "tif");
  ASSERT_NE(d.ds(), nullptr);
  expect_georef(d, georef);
  GDALRasterBand* band = d.ds()->GetRasterBand(1);
  EXPECT_EQ(band->GetRasterDataType(), GDT_Int16);
  int has_nodata = 0;
  EXPECT_EQ(band->GetNoDataValue(&has_nodata), -32768);
  EXPECT_TRUE(has_nodata);
  EXPECT_EQ(d.band<int16_t>(1), band_values<int16_t>(r, 0));
  EXPECT_EQ(d.mask(), r.mask);
}

TEST(TiffEncoderTest, Uint8WithoutNodataCarriesAnInternalMask) {
  Raster r = make_pattern(40, 30, 3, CellType::kUInt8);
  punch_holes(r, 0);
  const TileGeoref georef = utm_georef();
  Decoded d(encode(r, format(TileFormat::kTiff), &georef), "tif");
  ASSERT_NE(d.ds(), nullptr);
  ASSERT_EQ(d.ds()->GetRasterCount(), 3);
  expect_georef(d, georef);
  for (int b = 0; b < 3; ++b) {
    GDALRasterBand* band = d.ds()->GetRasterBand(b + 1);
    int has_nodata = 1;
    band->GetNoDataValue(&has_nodata);
    EXPECT_FALSE(has_nodata);
    EXPECT_EQ(band->GetMaskFlags(), GMF_PER_DATASET);
    EXPECT_EQ(d.band<uint8_t>(b + 1), band_values<uint8_t>(r, b));
  }
  // Only the tif's own bytes were opened, so the mask cannot be a .msk file.
  EXPECT_EQ(d.mask(), r.mask);
}

TEST(TiffEncoderTest, AllValidWithoutNodataHasNoMask) {
  Raster r = make_pattern(16, 16, 1, CellType::kUInt16);
  const TileGeoref georef = utm_georef();
  Decoded d(encode(r, format(TileFormat::kTiff), &georef), "tif");
  ASSERT_NE(d.ds(), nullptr);
  EXPECT_EQ(d.ds()->GetRasterBand(1)->GetMaskFlags(), GMF_ALL_VALID);
  EXPECT_EQ(d.band<uint16_t>(1), band_values<uint16_t>(r, 0));
}

TEST(TiffEncoderTest, EmptyCrsWritesNoCrs) {
  Raster r = make_pattern(8, 8, 1, CellType::kUInt8);
  TileGeoref georef;
  georef.geotransform = {0.0, 1.0, 0.0, 8.0, 0.0, -1.0};
  Decoded d(encode(r, format(TileFormat::kTiff), &georef), "tif");
  ASSERT_NE(d.ds(), nullptr);
  expect_georef(d, georef);
}

TEST(TiffEncoderTest, UnparsableCrsIsAnError) {
  Raster r = make_pattern(8, 8, 1, CellType::kUInt8);
  TileGeoref georef = utm_georef();
  georef.crs_wkt = "not a crs";
  Result<std::string> bytes = encode_tile(r, format(TileFormat::kTiff), &georef);
  ASSERT_FALSE(bytes.is_ok());
  EXPECT_NE(bytes.status().message().find("not a crs"), std::string::npos)
      << bytes.status().message();
}

TEST(TiffEncoderTest, ZstdAndDeflateRoundTripAndAreRecorded) {
  Raster r = make_pattern(64, 64, 2, CellType::kUInt16);
  const TileGeoref georef = utm_georef();
  for (TiffCompression c : {TiffCompression::kZstd, TiffCompression::kDeflate}) {
    EncodeOptions o = format(TileFormat::kTiff);
    o.tiff_compression = c;
    o.tiff_level = 9;
    std::string bytes = encode(r, o, &georef);
    EXPECT_LT(bytes.size(), r.data.size());
    Decoded d(bytes, "tif");
    ASSERT_NE(d.ds(), nullptr);
    const char* method = d.ds()->GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE");
    ASSERT_NE(method, nullptr);
    EXPECT_STREQ(method, c == TiffCompression::kZstd ? "ZSTD" : "DEFLATE");
    for (int b = 0; b < 2; ++b) EXPECT_EQ(d.band<uint16_t>(b + 1), band_values<uint16_t>(r, b));
  }
}

TEST(TiffEncoderTest, EveryCellTypeRoundTripsBitForBit) {
  const TileGeoref georef = utm_georef();
  for (CellType t :
       {CellType::kUInt8, CellType::kUInt16, CellType::kInt16, CellType::kUInt32, CellType::kInt32,
        CellType::kUInt64, CellType::kInt64, CellType::kFloat32, CellType::kFloat64}) {
    SCOPED_TRACE(cell_type_name(t));
    Raster r = make_pattern(21, 13, 2, t);
    punch_holes(r, 7);
    EncodeOptions o = format(TileFormat::kTiff);
    o.nodata = 7;
    Decoded d(encode(r, o, &georef), "tif");
    ASSERT_NE(d.ds(), nullptr);
    ASSERT_EQ(d.ds()->GetRasterCount(), 2);
    EXPECT_EQ(d.ds()->GetRasterBand(1)->GetRasterDataType(), to_gdal(t));
    for (int b = 0; b < 2; ++b) {
      EXPECT_EQ(d.raw_band(b + 1), band_bytes(r, b));
      GDALRasterBand* band = d.ds()->GetRasterBand(b + 1);
      int has_nodata = 0;
      if (t == CellType::kInt64) {
        EXPECT_EQ(band->GetNoDataValueAsInt64(&has_nodata), 7);
      } else if (t == CellType::kUInt64) {
        EXPECT_EQ(band->GetNoDataValueAsUInt64(&has_nodata), 7u);
      } else {
        EXPECT_EQ(band->GetNoDataValue(&has_nodata), 7.0);
      }
      EXPECT_TRUE(has_nodata);
    }
  }
}

TEST(TiffEncoderTest, IsDeterministicAcrossCallsAndThreads) {
  Raster r = make_pattern(64, 64, 3, CellType::kUInt8);
  punch_holes(r, 0);
  const TileGeoref georef = utm_georef();
  const EncodeOptions o = format(TileFormat::kTiff);
  const std::string first = encode(r, o, &georef);
  ASSERT_FALSE(first.empty());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        Result<std::string> again = encode_tile(r, o, &georef);
        if (!again.is_ok() || *again != first) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace kiln

#include "render/render.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include <cpl_vsi.h>
#include <gdal_priv.h>

#include "raster/gdal_env.h"
#include "raster/tiff_encoder.h"
#include "render/colormap.h"
#include "render/percentiles.h"
#include "render/tile_decoder.h"

namespace kiln::render {
namespace {

RenderParams params_for(std::string_view query, int bands) {
  Result<RenderParams> p = parse_render_query(query);
  EXPECT_TRUE(p.is_ok()) << p.status().message();
  RenderParams out = p.is_ok() ? *p : RenderParams{};
  EXPECT_TRUE(check_against_layer(&out, bands).is_ok());
  return out;
}

// A w x h single-band tile of T whose pixel i holds values[i % size]; valid.
template <typename T>
Raster tile_of(int w, int h, const std::vector<T>& values, int bands = 1) {
  Raster r(w, h, bands, CellType::kUInt8);
  if constexpr (std::is_same_v<T, uint16_t>) r.reset(w, h, bands, CellType::kUInt16);
  if constexpr (std::is_same_v<T, int16_t>) r.reset(w, h, bands, CellType::kInt16);
  if constexpr (std::is_same_v<T, float>) r.reset(w, h, bands, CellType::kFloat32);
  for (int b = 0; b < bands; ++b)
    for (size_t i = 0; i < r.pixels(); ++i) r.band_as<T>(b)[i] = values[(i + b) % values.size()];
  std::fill(r.mask.begin(), r.mask.end(), 255);
  return r;
}

TEST(Render, RescaleIsExactAndClamped) {
  // Every uint16 value against the formula, with a range whose steps do not
  // fall on whole numbers.
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  Raster t = tile_of<uint16_t>(256, 256, all);
  RenderParams p = params_for("rescale=1000,3000", 1);
  Result<Raster> img = render_tile(t, std::nullopt, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  ASSERT_EQ(img->bands, 1);
  ASSERT_EQ(img->type, CellType::kUInt8);
  for (int v = 0; v < 65536; ++v) {
    const double want = std::clamp(std::floor((v - 1000.0) * 255.0 / 2000.0 + 0.5), 0.0, 255.0);
    ASSERT_EQ(img->band_data(0)[v], static_cast<uint8_t>(want)) << v;
  }
  EXPECT_EQ(img->band_data(0)[999], 0);
  EXPECT_EQ(img->band_data(0)[1000], 0);
  EXPECT_EQ(img->band_data(0)[2000], 128);  // 127.5 rounds half up
  EXPECT_EQ(img->band_data(0)[3000], 255);
  EXPECT_EQ(img->band_data(0)[65535], 255);
  EXPECT_EQ(rescale_value(2000, Range{1000, 3000}), 128);
  EXPECT_EQ(rescale_value(-1e300, Range{0, 1}), 0);
}

TEST(Render, PerBandRescaleSelectsBandsInOrder) {
  Raster t(2, 1, 3, CellType::kInt16);
  std::fill(t.mask.begin(), t.mask.end(), 255);
  const int16_t v[3][2] = {{-100, 100}, {0, 50}, {-32768, 32767}};
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 2; ++i) t.band_as<int16_t>(b)[i] = v[b][i];
  RenderParams p = params_for("bidx=3,1,2&rescale=-32768,32767;-100,100;0,100", 3);
  Result<Raster> img = render_tile(t, std::nullopt, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  ASSERT_EQ(img->bands, 3);
  EXPECT_EQ(img->band_data(0)[0], 0);    // band 3 -32768
  EXPECT_EQ(img->band_data(0)[1], 255);  // band 3 32767
  EXPECT_EQ(img->band_data(1)[0], 0);    // band 1 -100
  EXPECT_EQ(img->band_data(1)[1], 255);  // band 1 100
  EXPECT_EQ(img->band_data(2)[0], 0);    // band 2 0
  EXPECT_EQ(img->band_data(2)[1], 128);  // band 2 50 of 0-100
}

TEST(Render, NodataNanAndMaskAreTransparent) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Raster t = tile_of<float>(4, 1, {-9999.f, nan, 5.f, 10.f});
  t.mask[3] = 0;
  RenderParams p = params_for("rescale=0,10&colormap=viridis", 1);
  Result<Raster> img = render_tile(t, -9999.0, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  EXPECT_EQ(img->mask, (std::vector<uint8_t>{0, 0, 255, 0}));
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(img->band_data(b)[0], 0);
    EXPECT_EQ(img->band_data(b)[1], 0);
    EXPECT_EQ(img->band_data(b)[3], 0);
  }
  const Rgb mid = colormap_table("viridis")[128];
  EXPECT_EQ(img->band_data(0)[2], mid.r);
  EXPECT_EQ(img->band_data(1)[2], mid.g);
  EXPECT_EQ(img->band_data(2)[2], mid.b);

  // In a 3-band render a pixel is transparent when any chosen band lacks data.
  Raster rgb = tile_of<uint16_t>(2, 1, {7, 8}, 3);
  rgb.band_as<uint16_t>(2)[1] = 0;
  p = params_for("bidx=1,2,3&rescale=0,10", 3);
  img = render_tile(rgb, 0.0, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->mask, (std::vector<uint8_t>{255, 0}));
}

TEST(Render, ColormapEndsAreThePublishedColours) {
  struct End {
    const char* name;
    uint32_t first, last;
  };
  const End ends[] = {{"viridis", 0x440154, 0xFDE725}, {"magma", 0x000004, 0xFCFDBF},
                      {"terrain", 0x333399, 0xFFFFFF}, {"greys", 0xFFFFFF, 0x000000},
                      {"gray", 0x000000, 0xFFFFFF},    {"RdYlGn", 0xA50026, 0x006837}};
  auto hex = [](const Rgb& c) { return (c.r << 16) | (c.g << 8) | c.b; };
  for (const End& e : ends) {
    ASSERT_FALSE(canonical_colormap_name(e.name).empty()) << e.name;
    const ColorTable& t = colormap_table(e.name);
    EXPECT_EQ(hex(t[0]), e.first) << e.name;
    EXPECT_EQ(hex(t[255]), e.last) << e.name;
  }
  // Through render_tile: the rescale's ends land on the table's ends.
  Raster t = tile_of<uint16_t>(3, 1, {0, 100, 200});
  RenderParams p = params_for("rescale=100,200&colormap=magma", 1);
  Result<Raster> img = render_tile(t, std::nullopt, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->band_data(0)[0], 0x00);
  EXPECT_EQ(img->band_data(2)[0], 0x04);
  EXPECT_EQ(img->band_data(0)[2], 0xFC);
  EXPECT_EQ(img->band_data(2)[2], 0xBF);
  // The 0.5 stop of viridis is where its table says (entry 127.5 -> between).
  const ColorTable& v = colormap_table("viridis");
  EXPECT_NEAR(v[128].g, 0x90, 2);
}

TEST(Render, DefaultsFromStatisticsOrUint8Range) {
  Raster t = tile_of<uint16_t>(2, 1, {10, 20});
  RenderParams p = params_for("", 1);
  Result<Raster> img = render_tile(t, std::nullopt, p, {Range{10, 20}}, nullptr);
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->band_data(0)[0], 0);
  EXPECT_EQ(img->band_data(0)[1], 255);
  img = render_tile(t, std::nullopt, p, {}, nullptr);
  ASSERT_FALSE(img.is_ok());
  EXPECT_NE(img.status().message().find("rescale: required"), std::string::npos);
  Raster bytes = tile_of<uint8_t>(2, 1, {0, 255});
  img = render_tile(bytes, std::nullopt, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->band_data(0)[1], 255);
}

TEST(Render, HillshadeOfAPlaneFollowsLambert) {
  // A plane rising 1 m per ground metre toward the east, at the equator
  // (cos(lat) ~ 1): slope 45 degrees facing west.
  const int n = 16;
  TileGeometry g{10, 10, 5 * 10};  // rows straddle the equator
  Raster t(n, n, 1, CellType::kFloat32);
  std::fill(t.mask.begin(), t.mask.end(), 255);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) t.band_as<float>(0)[y * n + x] = static_cast<float>(x * 10);
  for (double az : {270.0, 90.0, 0.0}) {
    RenderParams p = params_for("hillshade&altitude=45&azimuth=" + std::to_string(az), 1);
    Result<Raster> img = render_tile(t, std::nullopt, p, {}, &g);
    ASSERT_TRUE(img.is_ok()) << img.status().message();
    const double lat = 2 * std::atan(std::exp((50 - 5.5 * 10) / 6378137.0)) - std::numbers::pi / 2;
    const double dzdx = 1 / std::cos(lat);
    const double a = az * std::numbers::pi / 180, h = std::numbers::pi / 4;
    const double lit =
        (std::sin(h) - dzdx * std::sin(a) * std::cos(h)) / std::sqrt(1 + dzdx * dzdx);
    const int want = static_cast<int>(std::floor(255 * std::max(0.0, lit) + 0.5));
    EXPECT_EQ(img->band_data(0)[5 * n + 5], want) << az;
  }
  // Light from the west on a west-facing 45 degree slope at 45 degrees: 255.
  RenderParams west = params_for("hillshade&azimuth=270&altitude=45", 1);
  EXPECT_EQ((*render_tile(t, std::nullopt, west, {}, &g)).band_data(0)[5 * n + 5], 255);
  // Light from the east grazes it: 0.
  RenderParams east = params_for("hillshade&azimuth=90&altitude=45", 1);
  EXPECT_EQ((*render_tile(t, std::nullopt, east, {}, &g)).band_data(0)[5 * n + 5], 0);
  // Hillshade without a position is refused, not guessed.
  EXPECT_FALSE(render_tile(t, std::nullopt, west, {}, nullptr).is_ok());
}

TEST(Render, HillshadeOfFlatGroundIsSinAltitudeAndNodataTransparent) {
  Raster t = tile_of<int16_t>(8, 8, {100});
  t.band_as<int16_t>(0)[9] = -32768;
  RenderParams p = params_for("hillshade&altitude=30", 1);
  TileGeometry g = mercator_tile_geometry(12, 1500, 8);
  Result<Raster> img = render_tile(t, -32768.0, p, {}, &g);
  ASSERT_TRUE(img.is_ok());
  EXPECT_EQ(img->mask[9], 0);
  // 255 * sin(30 deg) is 127.49999999999997 in doubles.
  EXPECT_EQ(img->band_data(0)[10], 127);
  EXPECT_EQ(img->band_data(0)[63], 127);
}

TEST(Render, HillshadeWithBordersHasNoSeams) {
  // A 32x32 surface rendered whole, and as four 16x16 tiles each framed by
  // its neighbours' pixels: the same shading everywhere. Without the frame
  // the tiles' inner edges differ (the seam add_border() removes).
  const int n = 32, t = 16;
  Raster whole(n, n, 1, CellType::kFloat32);
  std::fill(whole.mask.begin(), whole.mask.end(), 255);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      whole.band_as<float>(0)[y * n + x] = static_cast<float>(40 * std::sin(x / 5.0) + 9 * y);
  whole.band_as<float>(0)[20 * n + 15] = -1;  // nodata beside a seam
  const TileGeometry g{30, 30, 1e6};
  RenderParams p = params_for("hillshade&azimuth=300&altitude=35&z_factor=2", 1);
  Result<Raster> full = render_tile(whole, -1.0, p, {}, &g);
  ASSERT_TRUE(full.is_ok());
  Raster quarter[2][2];
  for (int ty = 0; ty < 2; ++ty)
    for (int tx = 0; tx < 2; ++tx) {
      Raster& q = quarter[ty][tx];
      q.reset(t, t, 1, CellType::kFloat32);
      for (int y = 0; y < t; ++y)
        for (int x = 0; x < t; ++x) {
          const size_t from = static_cast<size_t>(ty * t + y) * n + tx * t + x;
          q.band_as<float>(0)[y * t + x] = whole.band_as<float>(0)[from];
          q.mask[y * t + x] = whole.mask[from];
        }
    }
  int seam_differences = 0;
  for (int ty = 0; ty < 2; ++ty) {
    for (int tx = 0; tx < 2; ++tx) {
      std::array<const Raster*, 8> nb{};
      int k = 0;
      for (int j = -1; j <= 1; ++j)
        for (int i = -1; i <= 1; ++i) {
          if (i == 0 && j == 0) continue;
          const int x = tx + i, y = ty + j;
          nb[k++] = (x >= 0 && x < 2 && y >= 0 && y < 2) ? &quarter[y][x] : nullptr;
        }
      const TileGeometry gt{30, 30, g.top - ty * t * 30};
      Raster framed = add_border(quarter[ty][tx], nb, 1);
      Result<Raster> with = render_tile(framed, -1.0, p, {}, &gt, 1);
      Result<Raster> without = render_tile(quarter[ty][tx], -1.0, p, {}, &gt);
      ASSERT_TRUE(with.is_ok()) << with.status().message();
      ASSERT_TRUE(without.is_ok());
      ASSERT_EQ(with->width, t);
      ASSERT_EQ(with->height, t);
      for (int y = 0; y < t; ++y)
        for (int x = 0; x < t; ++x) {
          const size_t whole_i = static_cast<size_t>(ty * t + y) * n + tx * t + x;
          const size_t i = static_cast<size_t>(y) * t + x;
          ASSERT_EQ(with->band_data(0)[i], full->band_data(0)[whole_i]) << tx << ty << x << y;
          ASSERT_EQ(with->mask[i], full->mask[whole_i]);
          seam_differences += without->band_data(0)[i] != full->band_data(0)[whole_i];
        }
    }
  }
  EXPECT_GT(seam_differences, 20);
  EXPECT_FALSE(render_tile(whole, -1.0, p, {}, &g, 16).is_ok());

  // Other renders keep the interior too.
  Raster small = tile_of<uint16_t>(4, 4, {0, 10, 20, 30, 40});
  Result<Raster> inner =
      render_tile(small, std::nullopt, params_for("rescale=0,40", 1), {}, nullptr, 1);
  ASSERT_TRUE(inner.is_ok());
  ASSERT_EQ(inner->width, 2);
  EXPECT_EQ(inner->band_data(0)[0], rescale_value(small.band_as<uint16_t>(0)[5], Range{0, 40}));
  EXPECT_EQ(inner->band_data(0)[3], rescale_value(small.band_as<uint16_t>(0)[10], Range{0, 40}));
}

TEST(Render, MercatorGeometry) {
  TileGeometry g = mercator_tile_geometry(0, 0, 256);
  EXPECT_NEAR(g.pixel_width, 156543.03392804097, 1e-6);
  EXPECT_NEAR(g.top, 20037508.342789244, 1e-6);
  g = mercator_tile_geometry(1, 1, 256);
  EXPECT_NEAR(g.top, 0, 1e-6);
}

TEST(Percentiles, FromAStoredHistogram) {
  // 100 values, one per bucket over [0, 100]: the p-th percentile is p.
  StoredHistogram h{0, 100, std::vector<uint64_t>(100, 1)};
  EXPECT_DOUBLE_EQ(*histogram_percentile(h, 2), 2);
  EXPECT_DOUBLE_EQ(*histogram_percentile(h, 98), 98);
  EXPECT_DOUBLE_EQ(*histogram_percentile(h, 0), 0);
  EXPECT_DOUBLE_EQ(*histogram_percentile(h, 100), 100);
  EXPECT_FALSE(histogram_percentile(h, 101).is_ok());
  EXPECT_FALSE(histogram_percentile(StoredHistogram{0, 1, {0, 0}}, 50).is_ok());

  nlohmann::json meta = {
      {"statistics",
       {{{"band", 1}, {"histogram", {{"min", 0}, {"max", 100}, {"buckets", h.buckets}}}},
        {{"band", 2},
         {"histogram", {{"min", 7}, {"max", 7}, {"buckets", nlohmann::json::array({5})}}}}}}};
  Result<std::vector<Range>> r = default_rescale(meta);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_DOUBLE_EQ((*r)[0].min, 2);
  EXPECT_DOUBLE_EQ((*r)[0].max, 98);
  EXPECT_DOUBLE_EQ((*r)[1].min, 7);
  EXPECT_DOUBLE_EQ((*r)[1].max, 8);  // a constant band gets a span of 1

  EXPECT_FALSE(default_rescale(nlohmann::json::object()).is_ok());
  meta["statistics"][0]["histogram"]["buckets"] = {"x"};
  Result<std::vector<Range>> bad = default_rescale(meta);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("statistics[0].histogram"), std::string::npos);
}

TEST(TileDecoder, RoundTripsATifTileWithNodata) {
  Raster t = tile_of<float>(5, 3, {1.5f, -9999.f, std::numeric_limits<float>::quiet_NaN(), 4.f});
  EncodeOptions o;
  o.format = TileFormat::kTiff;
  o.nodata = -9999.0;
  TileGeoref geo{{100, 2, 0, 500, 0, -2}, ""};
  Result<std::string> bytes = encode_tiff(t, o, geo);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  Result<DecodedTile> d = decode_tif_tile(*bytes);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_EQ(d->raster.width, 5);
  EXPECT_EQ(d->raster.height, 3);
  EXPECT_EQ(d->raster.type, CellType::kFloat32);
  ASSERT_TRUE(d->nodata);
  EXPECT_EQ(*d->nodata, -9999.0);
  EXPECT_TRUE(d->has_geotransform);
  EXPECT_EQ(d->geotransform[0], 100);
  EXPECT_EQ(d->geotransform[5], -2);
  for (size_t i = 0; i < 15; ++i) {
    EXPECT_EQ(d->raster.mask[i], (i % 4 == 1 || i % 4 == 2) ? 0 : 255) << i;
  }
  EXPECT_EQ(d->raster.band_as<float>(0)[0], 1.5f);
}

TEST(TileDecoder, RoundTripsTheInternalMask) {
  Raster t = tile_of<uint16_t>(4, 4, {300, 400}, 2);
  t.mask[5] = 0;
  EncodeOptions o;
  o.format = TileFormat::kTiff;
  Result<std::string> bytes = encode_tiff(t, o, TileGeoref{{0, 1, 0, 0, 0, -1}, ""});
  ASSERT_TRUE(bytes.is_ok());
  Result<DecodedTile> d = decode_tif_tile(*bytes);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_FALSE(d->nodata);
  EXPECT_EQ(d->raster.bands, 2);
  EXPECT_EQ(d->raster.mask[5], 0);
  EXPECT_EQ(d->raster.mask[4], 255);
  EXPECT_EQ(d->raster.band_as<uint16_t>(1)[0], 400);
}

TEST(TileDecoder, RefusesWhatIsNotATif) {
  for (std::string junk : {std::string(), std::string("II*\0garbage", 11), std::string(1000, 'x'),
                           std::string("\x89PNG\r\n\x1a\n", 8)}) {
    Result<DecodedTile> d = decode_tif_tile(junk);
    ASSERT_FALSE(d.is_ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInputError);
    EXPECT_NE(d.status().message().find("tif tile:"), std::string::npos);
  }
}

TEST(EncodeImage, PngAndWebpDecodeToTheRenderedPixels) {
  // Flat colour (lossy WebP blurs sharp detail), one transparent pixel.
  Raster t = tile_of<uint16_t>(16, 16, {500});
  t.mask[3] = 0;
  RenderParams p = params_for("rescale=0,1000&colormap=terrain", 1);
  Result<Raster> img = render_tile(t, std::nullopt, p, {}, nullptr);
  ASSERT_TRUE(img.is_ok());
  for (ImageFormat f : {ImageFormat::kPng, ImageFormat::kWebp}) {
    Result<std::string> bytes = encode_image(*img, f);
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    init_gdal();
    const std::string name = std::string("/vsimem/render_test.") + image_format_name(f);
    VSIFCloseL(VSIFileFromMemBuffer(name.c_str(),
                                    reinterpret_cast<GByte*>(const_cast<char*>(bytes->data())),
                                    bytes->size(), FALSE));
    DatasetPtr ds(GDALDataset::Open(name.c_str(), GDAL_OF_RASTER));
    ASSERT_TRUE(ds) << image_format_name(f);
    // PNG: RGB with a tRNS colour key (GDAL: NODATA_VALUES); WebP: RGBA.
    ASSERT_EQ(ds->GetRasterCount(), f == ImageFormat::kPng ? 3 : 4);
    uint8_t px[3];
    for (int b = 0; b < 3; ++b) {
      ASSERT_EQ(ds->GetRasterBand(b + 1)->RasterIO(GF_Read, 1, 0, 1, 1, &px[b], 1, 1, GDT_Byte, 0,
                                                   0, nullptr),
                CE_None);
    }
    const int tol = f == ImageFormat::kPng ? 0 : 12;  // lossy WebP
    EXPECT_NEAR(px[0], img->band_data(0)[1], tol);
    EXPECT_NEAR(px[1], img->band_data(1)[1], tol);
    EXPECT_NEAR(px[2], img->band_data(2)[1], tol);
    // Transparency as GDAL (and a browser) reads it: the mask.
    GDALRasterBand* mask = ds->GetRasterBand(1)->GetMaskBand();
    uint8_t seen[2] = {1, 1};
    ASSERT_EQ(mask->RasterIO(GF_Read, 1, 0, 1, 1, &seen[0], 1, 1, GDT_Byte, 0, 0, nullptr),
              CE_None);
    ASSERT_EQ(mask->RasterIO(GF_Read, 3, 0, 1, 1, &seen[1], 1, 1, GDT_Byte, 0, 0, nullptr),
              CE_None);
    EXPECT_EQ(seen[0], 255) << image_format_name(f);
    EXPECT_EQ(seen[1], 0) << image_format_name(f);
    ds.reset();
    VSIUnlink(name.c_str());
  }
}

// Grey images take a free grey level as their key; one that uses all 256
// levels keeps an alpha channel. Either way valid pixels keep their values.
TEST(EncodeImage, GreyColourKeyOrAlphaWhenEveryLevelIsUsed) {
  init_gdal();
  for (int levels : {200, 256}) {
    Raster img(32, 32, 1, CellType::kUInt8);
    for (size_t i = 0; i < img.pixels(); ++i) {
      img.band_data(0)[i] = static_cast<uint8_t>(i % levels);
      img.mask[i] = i % 97 == 5 ? 0 : 255;
    }
    // The masked pixels' own values must not count as used.
    Result<std::string> bytes = encode_image(img, ImageFormat::kPng);
    ASSERT_TRUE(bytes.is_ok());
    const std::string name = "/vsimem/render_test_grey.png";
    VSIFCloseL(VSIFileFromMemBuffer(name.c_str(),
                                    reinterpret_cast<GByte*>(const_cast<char*>(bytes->data())),
                                    bytes->size(), FALSE));
    DatasetPtr ds(GDALDataset::Open(name.c_str(), GDAL_OF_RASTER));
    ASSERT_TRUE(ds);
    EXPECT_EQ(ds->GetRasterCount(), levels == 256 ? 2 : 1) << levels;
    std::vector<uint8_t> grey(img.pixels()), mask(img.pixels());
    ASSERT_EQ(ds->GetRasterBand(1)->RasterIO(GF_Read, 0, 0, 32, 32, grey.data(), 32, 32, GDT_Byte,
                                             0, 0, nullptr),
              CE_None);
    ASSERT_EQ(ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, 32, 32, mask.data(), 32,
                                                            32, GDT_Byte, 0, 0, nullptr),
              CE_None);
    for (size_t i = 0; i < img.pixels(); ++i) {
      EXPECT_EQ(mask[i], img.mask[i]) << levels << " " << i;
      if (img.mask[i]) {
        EXPECT_EQ(grey[i], img.band_data(0)[i]) << levels << " " << i;
      }
    }
    ds.reset();
    VSIUnlink(name.c_str());
  }
}

}  // namespace
}  // namespace kiln::render

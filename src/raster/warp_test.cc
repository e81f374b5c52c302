// WarpSource against GDAL's own gdalwarp (GDALWarp from gdal_utils.h) on a
// real scene: same tile, same pixels, same validity.
#include "raster/warp.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gdal_utils.h>
#include <gtest/gtest.h>

#include "raster/footprint.h"
#include "raster/gdal_env.h"
#include "raster/test_data.h"
#include "raster/tile_grid.h"

namespace kiln {
namespace {

constexpr int kZoom = 12;

// argv for the GDAL utilities, owned.
class Args {
 public:
  Args(std::vector<std::string> args) : store_(std::move(args)) {
    for (auto& s : store_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
  }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> store_;
  std::vector<char*> ptrs_;
};

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

class WarpTest : public testing::Test {
 protected:
  void SetUp() override {
    init_gdal();
    path_ = test_data_path("L7_ETMs.tif");
    SourceRequest req;
    req.uri = path_;
    req.bands = {3, 2, 1};
    auto info = inspect_source(req);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    info_ = *info;
    auto fp = web_mercator_footprint(info_);
    ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
    env_ = envelope_of(**fp);
    // The z12 tile under the scene's centre: the scene (~10 km) covers much
    // but not all of it (~9.8 km), so both valid and invalid pixels occur.
    select_tile(kZoom, 0.5);
  }

  // The tile at zoom `z` under the point `f` of the way across the scene's
  // envelope (0.5: the centre).
  void select_tile(int z, double f) {
    const double cx = env_.min_x + f * (env_.max_x - env_.min_x);
    const double cy = env_.min_y + f * (env_.max_y - env_.min_y);
    const TileRange r = grid_.tiles_covering(z, {cx - 1, cy - 1, cx + 1, cy + 1});
    ASSERT_FALSE(r.empty());
    tile_ = {z, r.min_x, r.min_y};
    region_.geotransform = grid_.geotransform(z, tile_.x, tile_.y);
    region_.width = region_.height = 256;
  }

  // Kiln's warp of the tile.
  Raster kiln_warp(WarpResample resample) {
    WarpOptions opts;
    opts.resample = resample;
    auto ws = WarpSource::open(info_, grid_.crs_wkt(), opts);
    EXPECT_TRUE(ws.is_ok()) << ws.status().to_string();
    Raster out;
    if (!ws.is_ok()) return out;
    auto hit = (*ws)->warp(region_, CellType::kUInt8, &out);
    EXPECT_TRUE(hit.is_ok()) << hit.status().to_string();
    EXPECT_TRUE(hit.is_ok() && *hit) << "the scene does not reach its own centre tile";
    kiln_scale_ = (*ws)->last_kernel_scale();
    return out;
  }

  // gdalwarp of a bands-3,2,1 VRT into the same tile, with -dstalpha; the
  // alpha band is returned in `alpha`.
  Raster gdal_warp(const char* resample, std::vector<uint8_t>* alpha,
                   std::array<double, 2> scale = {0, 0}) {
    Raster out(256, 256, 3, CellType::kUInt8);
    Args targs({"-of", "VRT", "-b", "3", "-b", "2", "-b", "1"});
    GDALTranslateOptions* topts = GDALTranslateOptionsNew(targs.argv(), nullptr);
    DatasetPtr src(open_raster(path_).value().release());
    int usage = 0;
    const std::string vrt_name = "/vsimem/kiln_warp_test_" + std::string(resample) + ".vrt";
    DatasetPtr vrt(GDALDataset::FromHandle(
        GDALTranslate(vrt_name.c_str(), GDALDataset::ToHandle(src.get()), topts, &usage)));
    GDALTranslateOptionsFree(topts);
    EXPECT_NE(vrt, nullptr) << last_gdal_error();
    if (!vrt) return out;

    const Bounds b = grid_.tile_bounds(tile_);
    std::vector<std::string> wargs = {
        "-of",        "MEM", "-t_srs", "EPSG:3857", "-te", num(b.min_x), num(b.min_y), num(b.max_x),
        num(b.max_y), "-ts", "256",    "256",       "-r",  resample,     "-dstalpha"};
    if (scale[0] > 0) {
      // GDAL takes its filter stretch from each warp chunk's source window
      // clipped to the source, which for a tile the scene only partly covers
      // is not the tile's real scale. Give it Kiln's (the tile's size over
      // the source span it covers) so that the arithmetic is what is compared.
      for (std::string a : std::vector<std::string>{"-wo", "XSCALE=" + num(scale[0]), "-wo",
                                                    "YSCALE=" + num(scale[1])})
        wargs.push_back(a);
    }
    Args wa(std::move(wargs));
    GDALWarpAppOptions* wopts = GDALWarpAppOptionsNew(wa.argv(), nullptr);
    GDALDatasetH in = GDALDataset::ToHandle(vrt.get());
    DatasetPtr warped(GDALDataset::FromHandle(GDALWarp("", nullptr, 1, &in, wopts, &usage)));
    GDALWarpAppOptionsFree(wopts);
    EXPECT_NE(warped, nullptr) << last_gdal_error();
    if (!warped) return out;
    EXPECT_EQ(warped->GetRasterCount(), 4);
    int bands[3] = {1, 2, 3};
    EXPECT_EQ(warped->RasterIO(GF_Read, 0, 0, 256, 256, out.data.data(), 256, 256, GDT_Byte, 3,
                               bands, 0, 0, 0, nullptr),
              CE_None);
    alpha->assign(256 * 256, 0);
    EXPECT_EQ(warped->GetRasterBand(4)->RasterIO(GF_Read, 0, 0, 256, 256, alpha->data(), 256, 256,
                                                 GDT_Byte, 0, 0, nullptr),
              CE_None);
    vrt.reset();
    VSIUnlink(vrt_name.c_str());
    return out;
  }

  // Compares both warps pixel for pixel.
  // `off_by_one` > 0 lets that fraction of the values differ by 1 (and no
  // more): rounding where GDAL's formulas order the arithmetic differently.
  void expect_same_as_gdalwarp(WarpResample resample, const char* gdal_name,
                               double off_by_one = 0) {
    const Raster k = kiln_warp(resample);
    ASSERT_EQ(k.width, 256);
    ASSERT_EQ(k.height, 256);
    ASSERT_EQ(k.bands, 3);
    ASSERT_EQ(k.type, CellType::kUInt8);
    std::vector<uint8_t> alpha;
    const Raster g = gdal_warp(gdal_name, &alpha, kiln_scale_);
    ASSERT_EQ(alpha.size(), k.mask.size());
    int valid = 0, invalid = 0, mask_diff = 0, value_diff = 0, rounding_diff = 0;
    std::string first;
    for (size_t i = 0; i < k.pixels(); ++i) {
      const bool kv = k.mask[i] > 0, gv = alpha[i] > 0;
      if (kv != gv) {
        if (mask_diff++ == 0 && first.empty())
          first = "mask at (" + std::to_string(i % 256) + "," + std::to_string(i / 256) + ")";
        continue;
      }
      if (!kv) {
        ++invalid;
        continue;
      }
      ++valid;
      for (int b = 0; b < 3; ++b) {
        const int d = std::abs(int(k.band_data(b)[i]) - int(g.band_data(b)[i]));
        if (d == 1 && off_by_one > 0) {
          ++rounding_diff;
        } else if (d != 0) {
          if (value_diff++ == 0 && first.empty()) {
            first = "band " + std::to_string(b + 1) + " at (" + std::to_string(i % 256) + "," +
                    std::to_string(i / 256) + "): kiln " + std::to_string(k.band_data(b)[i]) +
                    ", gdalwarp " + std::to_string(g.band_data(b)[i]);
          }
        }
      }
    }
    // The tile is partly covered: both kinds of pixel must be present, and
    // enough valid ones to mean something.
    EXPECT_GT(valid, 256 * 256 / 8);
    EXPECT_GT(invalid, 0);
    EXPECT_EQ(mask_diff, 0) << "validity differs from gdalwarp's alpha; first: " << first;
    EXPECT_EQ(value_diff, 0) << "values differ from gdalwarp; first: " << first;
    EXPECT_LE(rounding_diff, off_by_one * valid * 3) << "values off by one: " << rounding_diff;
  }

  TileGrid grid_ = TileGrid::web_mercator(256);
  std::array<double, 2> kiln_scale_{0, 0};
  Bounds env_;
  std::string path_;
  SourceInfo info_;
  TileKey tile_;
  Region region_;
};

TEST_F(WarpTest, NearestMatchesGdalwarp) {
  expect_same_as_gdalwarp(WarpResample::kNearest, "near");
}

TEST_F(WarpTest, BilinearMatchesGdalwarp) {
  expect_same_as_gdalwarp(WarpResample::kBilinear, "bilinear");
}

TEST_F(WarpTest, CubicMatchesGdalwarp) { expect_same_as_gdalwarp(WarpResample::kCubic, "cubic"); }

TEST_F(WarpTest, LanczosMatchesGdalwarpWhenUpsampling) {
  // When it downsamples, GDAL's Lanczos weighs the taps by their distance
  // from the centre pixel, not from the sample point (its weights do not
  // depend on the sub-pixel offset); Kiln's follow the sample point. At z14
  // (about 9.5 m pixels from 28.5 m) both run the same filter. The z14 tile
  // 3.5% of the way across the scene reaches its south-western corner.
  select_tile(14, 0.035);
  expect_same_as_gdalwarp(WarpResample::kLanczos, "lanczos", 0.005);
}

TEST_F(WarpTest, CubicMatchesGdalwarpWhenUpsampling) {
  // gdalwarp's four-tap cubic, which falls back to bilinear at the scene's
  // edge; Kiln does the same.
  select_tile(14, 0.035);
  expect_same_as_gdalwarp(WarpResample::kCubic, "cubic", 0.005);
}

TEST_F(WarpTest, FilterIsStretchedByTheTilesRealScale) {
  // 28.5 m Landsat pixels into z12 tiles of about 38 m at 8 degrees south:
  // each output pixel spans about 1.33 source pixels, so the filter must be
  // stretched to a scale near 0.75 on both axes, not left at 1 as gdalwarp
  // does for this partly covered tile.
  kiln_warp(WarpResample::kBilinear);
  EXPECT_GT(kiln_scale_[0], 0.70);
  EXPECT_LT(kiln_scale_[0], 0.80);
  EXPECT_GT(kiln_scale_[1], 0.70);
  EXPECT_LT(kiln_scale_[1], 0.80);
}

TEST_F(WarpTest, BandsComeOutInTheRequestedOrder) {
  // Bands 3,2,1 of the scene differ, so a swap shows up as a different mean.
  const Raster k = kiln_warp(WarpResample::kNearest);
  ASSERT_EQ(k.bands, 3);
  std::vector<uint8_t> alpha;
  const Raster g = gdal_warp("near", &alpha);
  for (int b = 0; b < 3; ++b) {
    uint64_t ks = 0, gs = 0;
    for (size_t i = 0; i < k.pixels(); ++i) {
      if (k.mask[i] && alpha[i]) {
        ks += k.band_data(b)[i];
        gs += g.band_data(b)[i];
      }
    }
    EXPECT_EQ(ks, gs) << "band " << b + 1;
  }
}

TEST_F(WarpTest, RegionTheSceneDoesNotReachReturnsFalse) {
  auto ws = WarpSource::open(info_, grid_.crs_wkt(), WarpOptions{});
  ASSERT_TRUE(ws.is_ok()) << ws.status().to_string();
  Raster out(3, 3, 1, CellType::kUInt8);
  out.data[0] = 42;
  // The tile at the top-left corner of the world, and a neighbour of the
  // scene's tile five tiles east (~50 km away).
  for (const TileKey& far : {TileKey{kZoom, 0, 0}, TileKey{kZoom, tile_.x + 5, tile_.y}}) {
    Region r{grid_.geotransform(far.z, far.x, far.y), 256, 256};
    auto hit = (*ws)->warp(r, CellType::kUInt8, &out);
    ASSERT_TRUE(hit.is_ok()) << hit.status().to_string();
    EXPECT_FALSE(*hit) << "tile " << far.x << "," << far.y;
    // `out` is left untouched.
    EXPECT_EQ(out.width, 3);
    EXPECT_EQ(out.data[0], 42);
  }
}

TEST_F(WarpTest, OneSourceServesManyRegions) {
  // The same WarpSource warps the centre tile twice to identical results,
  // with another region in between (per-region state must be reset).
  auto ws = WarpSource::open(info_, grid_.crs_wkt(), WarpOptions{});
  ASSERT_TRUE(ws.is_ok()) << ws.status().to_string();
  Raster a, b, other;
  ASSERT_TRUE((*ws)->warp(region_, CellType::kUInt8, &a).value());
  Region left{grid_.geotransform(kZoom, tile_.x - 1, tile_.y), 256, 256};
  auto hit = (*ws)->warp(left, CellType::kUInt8, &other);
  ASSERT_TRUE(hit.is_ok());
  ASSERT_TRUE((*ws)->warp(region_, CellType::kUInt8, &b).value());
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.mask, b.mask);
}

TEST_F(WarpTest, FarZoomedOutRegionReadsADecimatedWindowWithTheSameResult) {
  // At zoom 9 a 256-px region holds the whole scene in a few dozen pixels.
  // With a tiny window budget the source is read at 1/8 resolution (like
  // gdalwarp picking an overview); the result must still cover the same
  // pixels with nearly the same values as the full-resolution read.
  constexpr int kOutZoom = 9;
  auto fp = web_mercator_footprint(info_);
  ASSERT_TRUE(fp.is_ok());
  const Bounds env = envelope_of(**fp);
  const double cx = (env.min_x + env.max_x) / 2, cy = (env.min_y + env.max_y) / 2;
  const TileRange r = grid_.tiles_covering(kOutZoom, {cx - 1, cy - 1, cx + 1, cy + 1});
  Region region{grid_.geotransform(kOutZoom, r.min_x, r.min_y), 256, 256};

  WarpOptions full;
  WarpOptions small = full;
  small.max_window_pixels = 2000;  // the ~350x350 window must be decimated
  auto a = WarpSource::open(info_, grid_.crs_wkt(), full);
  auto b = WarpSource::open(info_, grid_.crs_wkt(), small);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  Raster ra, rb;
  ASSERT_TRUE((*a)->warp(region, CellType::kUInt8, &ra).value());
  ASSERT_TRUE((*b)->warp(region, CellType::kUInt8, &rb).value());
  EXPECT_LT((*b)->last_read_bytes(), (*a)->last_read_bytes() / 16) << "no decimation happened";
  int64_t both = 0, only_one = 0, diff_sum = 0;
  for (size_t i = 0; i < ra.pixels(); ++i) {
    const bool va = ra.mask[i] != 0, vb = rb.mask[i] != 0;
    if (va != vb) ++only_one;
    if (!(va && vb)) continue;
    ++both;
    for (int band = 0; band < 3; ++band) {
      diff_sum += std::abs(int(ra.band_as<uint8_t>(band)[i]) - int(rb.band_as<uint8_t>(band)[i]));
    }
  }
  ASSERT_GT(both, 100);
  // Edges may shift by a decimated pixel; interior values are local means.
  EXPECT_LE(only_one, both / 5);
  EXPECT_LT(static_cast<double>(diff_sum) / (3 * both), 12.0);
}

}  // namespace
}  // namespace kiln

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
  Args(std::initializer_list<std::string> args) : store_(args) {
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
    ASSERT_FALSE(path_.empty()) << "data/L7_ETMs.tif is missing from the source tree";
    SourceRequest req;
    req.uri = path_;
    req.bands = {3, 2, 1};
    auto info = inspect_source(req);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    info_ = *info;
    auto fp = web_mercator_footprint(info_);
    ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
    // The z12 tile under the scene's centre: the scene (~10 km) covers much
    // but not all of it (~9.8 km), so both valid and invalid pixels occur.
    const Bounds env = envelope_of(**fp);
    const double cx = (env.min_x + env.max_x) / 2, cy = (env.min_y + env.max_y) / 2;
    const TileRange r = grid_.tiles_covering(kZoom, {cx - 1, cy - 1, cx + 1, cy + 1});
    ASSERT_FALSE(r.empty());
    tile_ = {kZoom, r.min_x, r.min_y};
    region_.geotransform = grid_.geotransform(kZoom, tile_.x, tile_.y);
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
    return out;
  }

  // gdalwarp of a bands-3,2,1 VRT into the same tile, with -dstalpha; the
  // alpha band is returned in `alpha`.
  Raster gdal_warp(const char* resample, std::vector<uint8_t>* alpha) {
    Raster out(256, 256, 3, CellType::kUInt8);
    Args targs{"-of", "VRT", "-b", "3", "-b", "2", "-b", "1"};
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
    Args wargs{"-of",        "MEM",        "-t_srs",     "EPSG:3857",  "-te",
               num(b.min_x), num(b.min_y), num(b.max_x), num(b.max_y), "-ts",
               "256",        "256",        "-r",         resample,     "-dstalpha"};
    GDALWarpAppOptions* wopts = GDALWarpAppOptionsNew(wargs.argv(), nullptr);
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
  void expect_same_as_gdalwarp(WarpResample resample, const char* gdal_name) {
    const Raster k = kiln_warp(resample);
    ASSERT_EQ(k.width, 256);
    ASSERT_EQ(k.height, 256);
    ASSERT_EQ(k.bands, 3);
    ASSERT_EQ(k.type, CellType::kUInt8);
    std::vector<uint8_t> alpha;
    const Raster g = gdal_warp(gdal_name, &alpha);
    ASSERT_EQ(alpha.size(), k.mask.size());
    int valid = 0, invalid = 0, mask_diff = 0, value_diff = 0;
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
        if (k.band_data(b)[i] != g.band_data(b)[i]) {
          if (value_diff++ == 0 && first.empty()) {
            first = "band " + std::to_string(b + 1) + " at (" + std::to_string(i % 256) + "," +
                    std::to_string(i / 256) + "): kiln " + std::to_string(k.band_data(b)[i]) +
                    ", gdalwarp " + std::to_string(g.band_data(b)[i]);
          }
        }
      }
    }
    // The tile is partly covered: both kinds of pixel must be present.
    EXPECT_GT(valid, 256 * 256 / 2);
    EXPECT_GT(invalid, 0);
    EXPECT_EQ(mask_diff, 0) << "validity differs from gdalwarp's alpha; first: " << first;
    EXPECT_EQ(value_diff, 0) << "values differ from gdalwarp; first: " << first;
  }

  TileGrid grid_ = TileGrid::web_mercator(256);
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

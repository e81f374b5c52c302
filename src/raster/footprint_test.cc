// Footprints in Web Mercator: a real UTM scene, and synthetic scenes that
// cross the antimeridian, hold a pole, lie beyond Web Mercator's latitude
// limit, sit on Mars or lack georeferencing.
#include "raster/footprint.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "raster/gdal_env.h"
#include "raster/test_data.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr double kHalf = TileGrid::kWebMercatorHalf;

// A scratch directory under /tmp, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/kiln-unit-XXXXXX";
    const char* made = mkdtemp(tmpl);
    EXPECT_NE(made, nullptr) << "cannot create a directory under /tmp";
    if (made) path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct SceneSpec {
  std::string crs;                            // "" = none
  std::optional<std::array<double, 4>> ullr;  // ulx, uly, lrx, lry; none = no geotransform
  int size = 100;
};

// Writes a one-band byte GeoTIFF of size x size pixels (all 1) at `path`.
void write_scene(const std::string& path, const SceneSpec& spec) {
  init_gdal();
  GDALDriver* drv = GetGDALDriverManager()->GetDriverByName("GTiff");
  ASSERT_NE(drv, nullptr);
  DatasetPtr ds(drv->Create(path.c_str(), spec.size, spec.size, 1, GDT_Byte, nullptr));
  ASSERT_NE(ds, nullptr) << path;
  if (spec.ullr) {
    const auto& e = *spec.ullr;
    double gt[6] = {e[0], (e[2] - e[0]) / spec.size, 0, e[1], 0, (e[3] - e[1]) / spec.size};
    ASSERT_EQ(ds->SetGeoTransform(gt), CE_None);
  }
  if (!spec.crs.empty()) {
    OGRSpatialReference srs;
    ASSERT_EQ(srs.SetFromUserInput(spec.crs.c_str()), OGRERR_NONE) << spec.crs;
    ASSERT_EQ(ds->SetSpatialRef(&srs), CE_None) << spec.crs;
  }
  ASSERT_EQ(ds->GetRasterBand(1)->Fill(1), CE_None);
}

class FootprintTest : public testing::Test {
 protected:
  void SetUp() override { init_gdal(); }

  // Writes the scene and inspects it as a source.
  SourceInfo scene(const std::string& name, const SceneSpec& spec) {
    const std::string path = dir_.file(name);
    write_scene(path, spec);
    auto info = inspect_source({.uri = path});
    EXPECT_TRUE(info.is_ok()) << info.status().to_string();
    return info.is_ok() ? *info : SourceInfo{};
  }

  ScratchDir dir_;
};

SourceInfo l7_info() {
  auto info = inspect_source({.uri = test_data_path("L7_ETMs.tif")});
  EXPECT_TRUE(info.is_ok()) << info.status().to_string();
  return info.is_ok() ? *info : SourceInfo{};
}

// Transforms (x, y) from `src_wkt` to EPSG:3857 with OGR.
std::array<double, 2> to_web_mercator(const std::string& src_wkt, double x, double y) {
  OGRSpatialReference src, dst;
  src.importFromWkt(src_wkt.c_str());
  src.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  dst.importFromEPSG(3857);
  dst.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  CoordinateTransformationPtr ct(OGRCreateCoordinateTransformation(&src, &dst));
  EXPECT_NE(ct, nullptr);
  if (ct) {
    EXPECT_TRUE(ct->Transform(1, &x, &y));
  }
  return {x, y};
}

TEST_F(FootprintTest, RealUtmSceneLandsWhereOgrPutsIt) {
  const SourceInfo info = l7_info();
  ASSERT_EQ(info.width, 349);
  auto fp = web_mercator_footprint(info);
  ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
  const Bounds env = envelope_of(**fp);
  const auto& g = info.geotransform;
  // The scene's centre, transformed by OGR, is inside the footprint.
  const auto c =
      to_web_mercator(info.crs_wkt, g[0] + g[1] * info.width / 2, g[3] + g[5] * info.height / 2);
  EXPECT_GT(c[0], env.min_x);
  EXPECT_LT(c[0], env.max_x);
  EXPECT_GT(c[1], env.min_y);
  EXPECT_LT(c[1], env.max_y);
  OGRPoint centre(c[0], c[1]);
  EXPECT_TRUE((*fp)->Contains(&centre));
  // ~10 km across (349 x 28.5 m, stretched ~1% by Mercator at 8 S).
  EXPECT_GT(env.width(), 9900);
  EXPECT_LT(env.width(), 10300);
  EXPECT_GT(env.height(), 9900);
  EXPECT_LT(env.height(), 10300);
  // The envelope is the corners' envelope: UTM edges are almost straight.
  double min_x = HUGE_VAL, max_x = -HUGE_VAL, min_y = HUGE_VAL, max_y = -HUGE_VAL;
  for (int px : {0, info.width}) {
    for (int py : {0, info.height}) {
      const auto p = to_web_mercator(info.crs_wkt, g[0] + g[1] * px, g[3] + g[5] * py);
      min_x = std::min(min_x, p[0]);
      max_x = std::max(max_x, p[0]);
      min_y = std::min(min_y, p[1]);
      max_y = std::max(max_y, p[1]);
    }
  }
  EXPECT_NEAR(env.min_x, min_x, 5);
  EXPECT_NEAR(env.max_x, max_x, 5);
  EXPECT_NEAR(env.min_y, min_y, 5);
  EXPECT_NEAR(env.max_y, max_y, 5);
}

TEST_F(FootprintTest, Wgs84EnvelopeOfTheRealSceneMatchesGdalinfoCorners) {
  const SourceInfo info = l7_info();
  auto fp = web_mercator_footprint(info);
  ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
  const auto env = wgs84_envelope(**fp, TileGrid::web_mercator(256).crs_wkt());
  ASSERT_TRUE(env.has_value());
  // gdalinfo: UL 34d54'58.20"W 7d56'59.36"S, LL 34d54'59.72"W 8d2'25.86"S,
  //           UR 34d49'33.48"W 7d57'0.82"S,  LR 34d49'34.93"W 8d2'27.34"S.
  EXPECT_NEAR((*env)[0], -(34 + 54 / 60.0 + 59.72 / 3600), 1e-4);
  EXPECT_NEAR((*env)[1], -(8 + 2 / 60.0 + 27.34 / 3600), 1e-4);
  EXPECT_NEAR((*env)[2], -(34 + 49 / 60.0 + 33.48 / 3600), 1e-4);
  EXPECT_NEAR((*env)[3], -(7 + 56 / 60.0 + 59.36 / 3600), 1e-4);
  EXPECT_FALSE(wgs84_envelope(**fp, "").has_value());
}

TEST_F(FootprintTest, NativeFootprintIsThePixelCorners) {
  const SourceInfo info = l7_info();
  const GeometryPtr fp = native_footprint(info);
  const Bounds b = envelope_of(*fp);
  EXPECT_DOUBLE_EQ(b.min_x, 288776.250000803149305);
  EXPECT_NEAR(b.max_x, 298722.75, 1e-3);
  EXPECT_NEAR(b.min_y, 9110728.75, 1e-3);
  EXPECT_DOUBLE_EQ(b.max_y, 9120760.750028736889362);
  EXPECT_NEAR(fp->toPolygon()->get_Area(), 349 * 352 * 28.5 * 28.5, 1);
}

TEST_F(FootprintTest, AntimeridianSceneSplitsIntoTwoParts) {
  // UTM 60S (central meridian 177 E): eastings 800-870 km run from about
  // 179.8 E across 180 to about 179.5 W.
  const SourceInfo info =
      scene("antimeridian.tif",
            {.crs = "EPSG:32760", .ullr = std::array<double, 4>{800000, 8000000, 870000, 7930000}});
  auto fp = web_mercator_footprint(info);
  ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
  ASSERT_EQ(wkbFlatten((*fp)->getGeometryType()), wkbMultiPolygon);
  const OGRMultiPolygon* mp = (*fp)->toMultiPolygon();
  ASSERT_EQ(mp->getNumGeometries(), 2);
  bool east = false, west = false;
  for (const OGRPolygon* part : *mp) {
    const Bounds b = envelope_of(*part);
    EXPECT_FALSE(b.empty());
    // Every part hugs one edge of the world: nothing in between.
    const bool at_east = std::abs(b.max_x - kHalf) < 1 && b.min_x > kHalf - 100000;
    const bool at_west = std::abs(b.min_x + kHalf) < 1 && b.max_x < -kHalf + 100000;
    EXPECT_TRUE(at_east || at_west) << "part spans x " << b.min_x << " .. " << b.max_x;
    east |= at_east;
    west |= at_west;
    // Around 18 S: y near -2.0e6.
    EXPECT_LT(b.max_y, -1.9e6);
    EXPECT_GT(b.min_y, -2.2e6);
  }
  EXPECT_TRUE(east);
  EXPECT_TRUE(west);
  // Together the parts are the scene: 70 km x 70 km, stretched by Mercator.
  const double area = mp->get_Area();
  EXPECT_GT(area, 70000.0 * 70000 * 1.05);
  EXPECT_LT(area, 70000.0 * 70000 * 1.15);
}

// Regression test: when the ring is closed through the pole
// (footprint.cc, "Closing the ring"), it runs from the last densified point
// straight to (first lon +- 360, pole) and never revisits the first point on
// the unwrapped side, so a wedge one edge step wide is cut off. Here the
// ring starts at the corner on the antimeridian and the footprint stops at
// 179.83 W (x = -20018451) instead of 180 W.
TEST_F(FootprintTest, SceneHoldingThePoleReachesTheTopAndEveryLongitude) {
  // NSIDC polar stereographic north, a 1000 km square centred on the pole.
  const SourceInfo info =
      scene("pole.tif",
            {.crs = "EPSG:3413", .ullr = std::array<double, 4>{-500000, 500000, 500000, -500000}});
  auto fp = web_mercator_footprint(info);
  ASSERT_TRUE(fp.is_ok()) << fp.status().to_string();
  const Bounds b = envelope_of(**fp);
  EXPECT_NEAR(b.max_y, kHalf, 1.0);
  EXPECT_NEAR(b.min_x, -kHalf, 1.0);
  EXPECT_NEAR(b.max_x, kHalf, 1.0);
  // The square's corners are about 707 km from the pole, near 83.6 N.
  OGRSpatialReference geo;
  geo.importFromEPSG(4326);
  char* wkt = nullptr;
  geo.exportToWkt(&wkt);
  const std::string geo_wkt = wkt;
  CPLFree(wkt);
  EXPECT_GT(b.min_y, to_web_mercator(geo_wkt, 0, 83)[1]);
  EXPECT_LT(b.min_y, to_web_mercator(geo_wkt, 0, 84.5)[1]);
}

TEST_F(FootprintTest, SceneBeyondWebMercatorLatitudesIsEmpty) {
  const SourceInfo info =
      scene("arctic.tif", {.crs = "EPSG:4326", .ullr = std::array<double, 4>{-10, 89, 10, 86}});
  auto fp = web_mercator_footprint(info);
  ASSERT_FALSE(fp.is_ok());
  EXPECT_EQ(fp.status().code(), StatusCode::kEmpty) << fp.status().to_string();
  EXPECT_NE(fp.status().message().find("arctic.tif"), std::string::npos) << fp.status().message();
}

TEST_F(FootprintTest, MarsIsNotOnEarth) {
  const SourceInfo info =
      scene("mars.tif", {.crs = "IAU_2015:49900", .ullr = std::array<double, 4>{10, 20, 11, 19}});
  auto fp = web_mercator_footprint(info);
  ASSERT_FALSE(fp.is_ok());
  EXPECT_EQ(fp.status().code(), StatusCode::kInputError);
  EXPECT_NE(fp.status().message().find("not on Earth"), std::string::npos) << fp.status().message();
  EXPECT_NE(fp.status().message().find("mars.tif"), std::string::npos) << fp.status().message();
}

TEST_F(FootprintTest, MissingGeotransformOrCrsIsAnInputError) {
  const SourceInfo no_gt = scene("no_gt.tif", {.crs = "EPSG:32618", .ullr = std::nullopt});
  EXPECT_FALSE(no_gt.has_geotransform);
  auto a = web_mercator_footprint(no_gt);
  ASSERT_FALSE(a.is_ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInputError);
  EXPECT_NE(a.status().message().find("no_gt.tif"), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("geotransform"), std::string::npos) << a.status().message();

  const SourceInfo no_crs = scene(
      "no_crs.tif", {.crs = "", .ullr = std::array<double, 4>{500000, 4000000, 501000, 3999000}});
  EXPECT_TRUE(no_crs.has_geotransform);
  EXPECT_TRUE(no_crs.crs_wkt.empty());
  auto b = web_mercator_footprint(no_crs);
  ASSERT_FALSE(b.is_ok());
  EXPECT_EQ(b.status().code(), StatusCode::kInputError);
  EXPECT_NE(b.status().message().find("no_crs.tif"), std::string::npos) << b.status().message();
  EXPECT_NE(b.status().message().find("no CRS"), std::string::npos) << b.status().message();
}

TEST_F(FootprintTest, RotatedSceneNativeFootprintFollowsItsCorners) {
  auto info = inspect_source({.uri = test_data_path("rotated.tif")});
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  ASSERT_FALSE(info->north_up());
  const GeometryPtr fp = native_footprint(*info);
  const OGRLinearRing* ring = fp->toPolygon()->getExteriorRing();
  ASSERT_EQ(ring->getNumPoints(), 5);  // four corners, closed
  const auto& g = info->geotransform;
  // The third corner is pixel (width, height).
  EXPECT_NEAR(ring->getX(2), g[0] + info->width * g[1] + info->height * g[2], 1e-6);
  EXPECT_NEAR(ring->getY(2), g[3] + info->width * g[4] + info->height * g[5], 1e-6);
  // Area is |det| x pixels.
  EXPECT_NEAR(fp->toPolygon()->get_Area(),
              std::abs(g[1] * g[5] - g[2] * g[4]) * info->width * info->height, 1e-6);
}

}  // namespace
}  // namespace kiln

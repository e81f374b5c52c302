// TileGrid: the Web Mercator (XYZ) quadtree and the floating layout's grid
// anchored at a layer's top-left corner.
#include "raster/tile_grid.h"

#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

namespace kiln {
namespace {

constexpr double kHalf = 20037508.342789244;

TEST(TileGridWebMercator, ZoomZeroTileIsTheWholeSquare) {
  const TileGrid g = TileGrid::web_mercator(256);
  EXPECT_TRUE(g.is_web_mercator());
  const Bounds b = g.tile_bounds({0, 0, 0});
  EXPECT_DOUBLE_EQ(b.min_x, -kHalf);
  EXPECT_DOUBLE_EQ(b.max_x, kHalf);
  EXPECT_DOUBLE_EQ(b.min_y, -kHalf);
  EXPECT_DOUBLE_EQ(b.max_y, kHalf);
  EXPECT_EQ(g.matrix_width(0), 1);
  EXPECT_EQ(g.matrix_height(0), 1);
}

TEST(TileGridWebMercator, ZoomOneTileZeroZeroIsTheNorthWestQuadrant) {
  const TileGrid g = TileGrid::web_mercator(256);
  const Bounds nw = g.tile_bounds({1, 0, 0});
  EXPECT_DOUBLE_EQ(nw.min_x, -kHalf);
  EXPECT_DOUBLE_EQ(nw.max_x, 0);
  EXPECT_DOUBLE_EQ(nw.min_y, 0);
  EXPECT_DOUBLE_EQ(nw.max_y, kHalf);
  // y grows south: row 1 is the southern half.
  const Bounds se = g.tile_bounds({1, 1, 1});
  EXPECT_DOUBLE_EQ(se.min_x, 0);
  EXPECT_DOUBLE_EQ(se.max_x, kHalf);
  EXPECT_DOUBLE_EQ(se.min_y, -kHalf);
  EXPECT_DOUBLE_EQ(se.max_y, 0);
}

TEST(TileGridWebMercator, ResolutionHalvesPerZoom) {
  const TileGrid g = TileGrid::web_mercator(256);
  // gdal2tiles' initialResolution: 2 * pi * 6378137 / tile_size.
  EXPECT_NEAR(g.resolution_x(0), 156543.03392804097, 1e-8);
  EXPECT_NEAR(g.resolution_x(12), 38.21851416, 1e-7);
  for (int z = 1; z <= 24; ++z) {
    EXPECT_DOUBLE_EQ(g.resolution_x(z), g.resolution_x(z - 1) / 2) << "z=" << z;
    EXPECT_DOUBLE_EQ(g.resolution_y(z), g.resolution_x(z)) << "z=" << z;
    EXPECT_EQ(g.matrix_width(z), int64_t{1} << z);
    EXPECT_EQ(g.matrix_height(z), int64_t{1} << z);
  }
  // 512-pixel tiles: the same extent in half as many pixels' worth of size.
  EXPECT_DOUBLE_EQ(TileGrid::web_mercator(512).resolution_x(0), g.resolution_x(1));
}

TEST(TileGridWebMercator, GeotransformOfATile) {
  const TileGrid g = TileGrid::web_mercator(256);
  const auto gt = g.geotransform(1, 1, 0);
  EXPECT_DOUBLE_EQ(gt[0], 0);
  EXPECT_DOUBLE_EQ(gt[1], g.resolution_x(1));
  EXPECT_EQ(gt[2], 0);
  EXPECT_DOUBLE_EQ(gt[3], kHalf);
  EXPECT_EQ(gt[4], 0);
  EXPECT_DOUBLE_EQ(gt[5], -g.resolution_y(1));
  // The tile's far corner is 256 pixels away and matches tile_bounds.
  const Bounds b = g.tile_bounds({5, 7, 11});
  const auto t = g.geotransform(5, 7, 11);
  EXPECT_DOUBLE_EQ(t[0], b.min_x);
  EXPECT_DOUBLE_EQ(t[3], b.max_y);
  EXPECT_NEAR(t[0] + 256 * t[1], b.max_x, 1e-6);
  EXPECT_NEAR(t[3] + 256 * t[5], b.min_y, 1e-6);
}

TEST(TileGridWebMercator, SmallBoxIsCoveredByTheTileHoldingIt) {
  const TileGrid g = TileGrid::web_mercator(256);
  // Just north-east of (0, 0): at z2 that is column 2, row 1.
  const TileRange r = g.tiles_covering(2, {1000, 1000, 2000, 2000});
  EXPECT_EQ(r.z, 2);
  EXPECT_EQ(r.min_x, 2);
  EXPECT_EQ(r.max_x, 2);
  EXPECT_EQ(r.min_y, 1);
  EXPECT_EQ(r.max_y, 1);
  EXPECT_EQ(r.count(), 1);
  // A box around the origin touches all four z1 tiles.
  const TileRange all = g.tiles_covering(1, {-1, -1, 1, 1});
  EXPECT_EQ(all.min_x, 0);
  EXPECT_EQ(all.max_x, 1);
  EXPECT_EQ(all.min_y, 0);
  EXPECT_EQ(all.max_y, 1);
  EXPECT_EQ(all.count(), 4);
}

TEST(TileGridWebMercator, BoxTouchingATileEdgeDoesNotIncludeTheNeighbour) {
  const TileGrid g = TileGrid::web_mercator(256);
  // The box's west and south edges lie on the z1 tile boundaries x=0, y=0.
  const TileRange r = g.tiles_covering(1, {0, 0, 1000, 1000});
  EXPECT_EQ(r.min_x, 1);
  EXPECT_EQ(r.max_x, 1);
  EXPECT_EQ(r.min_y, 0);
  EXPECT_EQ(r.max_y, 0);
  // And east/north edges on a boundary: [-1000, 0] x [-1000, 0] is tile (0, 1).
  const TileRange s = g.tiles_covering(1, {-1000, -1000, 0, 0});
  EXPECT_EQ(s.min_x, 0);
  EXPECT_EQ(s.max_x, 0);
  EXPECT_EQ(s.min_y, 1);
  EXPECT_EQ(s.max_y, 1);
}

// Regression test: tile_grid.cc tiles_covering floors/ceils
// (edge - origin) / tile_span with no tolerance, so the rounding in
// tile_bounds (origin + (x + 1) * span lands an ulp past the edge) makes the
// bounds of tile 3/0/0 "cover" its neighbours 3/1/0, 3/0/1 and 3/1/1.
TEST(TileGridWebMercator, ExactTileBoundsCoverOnlyThatTile) {
  const TileGrid g = TileGrid::web_mercator(256);
  for (int z : {3, 7, 12}) {
    const int64_t n = int64_t{1} << z;
    for (int64_t x : {int64_t{0}, n / 3, n - 1}) {
      for (int64_t y : {int64_t{0}, n / 2 + 1, n - 1}) {
        const TileRange r = g.tiles_covering(z, g.tile_bounds({z, x, y}));
        EXPECT_EQ(r.count(), 1) << z << "/" << x << "/" << y;
        EXPECT_EQ(r.min_x, x) << z << "/" << x << "/" << y;
        EXPECT_EQ(r.min_y, y) << z << "/" << x << "/" << y;
      }
    }
  }
}

TEST(TileGridWebMercator, BoxesOutsideOrEmptyCoverNothing) {
  const TileGrid g = TileGrid::web_mercator(256);
  EXPECT_TRUE(g.tiles_covering(3, {kHalf + 10, 0, kHalf + 20, 10}).empty());
  EXPECT_TRUE(g.tiles_covering(3, {5, 5, 5, 10}).empty());  // zero width
  EXPECT_EQ(g.tiles_covering(3, {5, 5, 5, 10}).count(), 0);
  // A box larger than the world is clamped to the matrix.
  const TileRange r = g.tiles_covering(2, {-3 * kHalf, -3 * kHalf, 3 * kHalf, 3 * kHalf});
  EXPECT_EQ(r.min_x, 0);
  EXPECT_EQ(r.min_y, 0);
  EXPECT_EQ(r.max_x, 3);
  EXPECT_EQ(r.max_y, 3);
}

TEST(TileGridFloating, LevelsNeededForOneTileAtZoomZero) {
  EXPECT_EQ(TileGrid::floating_levels(1, 1, 256), 0);
  EXPECT_EQ(TileGrid::floating_levels(256, 256, 256), 0);
  EXPECT_EQ(TileGrid::floating_levels(257, 10, 256), 1);
  EXPECT_EQ(TileGrid::floating_levels(10, 513, 256), 2);
  EXPECT_EQ(TileGrid::floating_levels(1000, 600, 256), 2);
  EXPECT_EQ(TileGrid::floating_levels(349, 352, 256), 1);
  EXPECT_EQ(TileGrid::floating_levels(349, 352, 512), 0);
}

class TileGridFloatingTest : public testing::Test {
 protected:
  // 1000 x 600 pixels of 10 m (x) by 20 m (y) at max zoom, 256-pixel tiles.
  const int max_zoom_ = TileGrid::floating_levels(1000, 600, 256);
  const TileGrid g_ =
      TileGrid::floating(500000, 4000000, 10, 20, 1000, 600, max_zoom_, 256, "LOCAL_CS[\"x\"]");
};

TEST_F(TileGridFloatingTest, OriginAndCrs) {
  EXPECT_FALSE(g_.is_web_mercator());
  EXPECT_EQ(g_.origin_x(), 500000);
  EXPECT_EQ(g_.origin_y(), 4000000);
  EXPECT_EQ(g_.crs_wkt(), "LOCAL_CS[\"x\"]");
  EXPECT_EQ(g_.tile_size(), 256);
}

TEST_F(TileGridFloatingTest, MatrixSizesCoverThePixels) {
  ASSERT_EQ(max_zoom_, 2);
  EXPECT_EQ(g_.matrix_width(2), 4);   // ceil(1000 / 256)
  EXPECT_EQ(g_.matrix_height(2), 3);  // ceil(600 / 256)
  EXPECT_EQ(g_.matrix_width(1), 2);   // ceil(1000 / 512)
  EXPECT_EQ(g_.matrix_height(1), 2);  // ceil(600 / 512)
  EXPECT_EQ(g_.matrix_width(0), 1);
  EXPECT_EQ(g_.matrix_height(0), 1);
}

TEST_F(TileGridFloatingTest, ResolutionIsTheSourcesAtMaxZoom) {
  EXPECT_DOUBLE_EQ(g_.resolution_x(2), 10);
  EXPECT_DOUBLE_EQ(g_.resolution_y(2), 20);
  EXPECT_DOUBLE_EQ(g_.resolution_x(1), 20);
  EXPECT_DOUBLE_EQ(g_.resolution_y(0), 80);
}

TEST_F(TileGridFloatingTest, GeotransformAndBoundsOfATile) {
  const auto gt = g_.geotransform(2, 1, 2);
  EXPECT_DOUBLE_EQ(gt[0], 500000 + 256 * 10);
  EXPECT_DOUBLE_EQ(gt[1], 10);
  EXPECT_EQ(gt[2], 0);
  EXPECT_DOUBLE_EQ(gt[3], 4000000 - 2 * 256 * 20);
  EXPECT_EQ(gt[4], 0);
  EXPECT_DOUBLE_EQ(gt[5], -20);
  const auto top = g_.geotransform(0, 0, 0);
  EXPECT_DOUBLE_EQ(top[0], 500000);
  EXPECT_DOUBLE_EQ(top[1], 40);
  EXPECT_DOUBLE_EQ(top[3], 4000000);
  EXPECT_DOUBLE_EQ(top[5], -80);
  const Bounds b = g_.tile_bounds({2, 3, 0});
  EXPECT_DOUBLE_EQ(b.min_x, 500000 + 3 * 2560);
  EXPECT_DOUBLE_EQ(b.max_x, 500000 + 4 * 2560);
  EXPECT_DOUBLE_EQ(b.max_y, 4000000);
  EXPECT_DOUBLE_EQ(b.min_y, 4000000 - 5120);
}

TEST_F(TileGridFloatingTest, TilesCoveringIsClampedToTheLayer) {
  // The layer's full extent: 10 km east, 12 km south of the origin.
  const Bounds layer{500000, 4000000 - 12000, 510000, 4000000};
  const TileRange r = g_.tiles_covering(2, layer);
  EXPECT_EQ(r.min_x, 0);
  EXPECT_EQ(r.min_y, 0);
  EXPECT_EQ(r.max_x, 3);
  EXPECT_EQ(r.max_y, 2);
  EXPECT_EQ(r.count(), 12);
  // A box west of the origin covers nothing.
  EXPECT_TRUE(g_.tiles_covering(2, {490000, 3990000, 499000, 3999000}).empty());
}

}  // namespace
}  // namespace kiln

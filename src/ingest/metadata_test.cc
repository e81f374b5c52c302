// layer.xml's data window: the layer's tiles at max zoom, its corner
// aligned so that GDAL's overviews land on the stored lower zooms, and no
// more than twice the data's side.
#include "ingest/metadata.h"

#include <gtest/gtest.h>

namespace kiln::ingest {
namespace {

TileRange range(int64_t min_x, int64_t min_y, int64_t max_x, int64_t max_y) {
  TileRange r;
  r.z = 12;
  r.min_x = min_x;
  r.min_y = min_y;
  r.max_x = max_x;
  r.max_y = max_y;
  return r;
}

TEST(WmsWindow, OneTileHasNoOverview) {
  const WmsWindow w = wms_window(range(1651, 2139, 1651, 2139), 12);
  EXPECT_EQ(w.tile_x, 1651);
  EXPECT_EQ(w.tile_y, 2139);
  EXPECT_EQ(w.tiles_x, 1);
  EXPECT_EQ(w.tiles_y, 1);
  EXPECT_EQ(w.overviews, 0);
}

TEST(WmsWindow, CornerAlignedToItsOverviews) {
  // 5 x 3 tiles from an odd corner: 2 overviews need a corner on a
  // multiple of 4.
  const WmsWindow w = wms_window(range(1001, 2003, 1005, 2005), 12);
  EXPECT_EQ(w.overviews, 2);
  EXPECT_EQ(w.tile_x, 1000);
  EXPECT_EQ(w.tile_y, 2000);
  EXPECT_EQ(w.tiles_x, 6);
  EXPECT_EQ(w.tiles_y, 6);
  EXPECT_EQ(w.tile_x % (int64_t{1} << w.overviews), 0);
  EXPECT_EQ(w.tile_y % (int64_t{1} << w.overviews), 0);
}

TEST(WmsWindow, NoMoreOverviewsThanStoredZooms) {
  const WmsWindow w = wms_window(range(1001, 2003, 1100, 2100), 3);
  EXPECT_EQ(w.overviews, 3);
  EXPECT_EQ(w.tile_x, 1000);
  EXPECT_EQ(w.tile_y, 2000);
}

TEST(WmsWindow, AtMostTwiceTheDataPerSide) {
  for (int64_t min_x = 0; min_x < 70; ++min_x) {
    for (int64_t width = 1; width < 70; width += 3) {
      const WmsWindow w = wms_window(range(min_x, 5, min_x + width - 1, 5), 20);
      EXPECT_LE(w.tile_x, min_x);
      EXPECT_EQ(w.tile_x + w.tiles_x, min_x + width);
      EXPECT_LE(w.tiles_x, 2 * width);
      EXPECT_EQ(w.tile_x % (int64_t{1} << w.overviews), 0);
    }
  }
}

}  // namespace
}  // namespace kiln::ingest

// The ingest plan for the real scene data/L7_ETMs.tif (349 x 352 pixels of
// 28.5 m, 6 bands uint8, UTM 25S), built from definitions made in code.
#include "ingest/plan.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/curve.h"
#include "raster/test_data.h"

namespace kiln::ingest {
namespace {

// Layer "t" from L7_ETMs.tif bands 3,2,1 into output bands 0,1,2.
IngestDefinition l7_definition() {
  IngestDefinition def;
  def.layer = "t";
  SourceDef src;
  src.uri = test_data_path("L7_ETMs.tif");
  src.bands = {BandMap{3, 0}, BandMap{2, 1}, BandMap{1, 2}};
  def.sources.push_back(src);
  def.output.catalog = "/tmp/x";
  return def;
}

class PlanTest : public testing::Test {
 protected:
  void SetUp() override {
    // test_data_path says what to do when the scene is missing.
    ASSERT_TRUE(std::filesystem::is_regular_file(test_data_path("L7_ETMs.tif")));
  }
};

TEST(ZoomForPixelSize, MatchesGdal2tiles) {
  // gdal2tiles: the first zoom i whose resolution is finer than the pixel
  // size gives i - 1 (never below 0). At 256 px, res(12) = 38.22 m and
  // res(13) = 19.109 m.
  EXPECT_EQ(zoom_for_pixel_size(30, 256), 12);
  EXPECT_EQ(zoom_for_pixel_size(28.5, 256), 12);
  EXPECT_EQ(zoom_for_pixel_size(19.2, 256), 12);  // coarser than z13
  EXPECT_EQ(zoom_for_pixel_size(19.0, 256), 13);  // z13's 19.109 m is not finer than 19 m
  EXPECT_EQ(zoom_for_pixel_size(38.3, 256), 11);
  EXPECT_EQ(zoom_for_pixel_size(1.0, 256), 17);  // res(17) = 1.194, res(18) = 0.597
  EXPECT_EQ(zoom_for_pixel_size(0.1, 256), 20);  // res(20) = 0.149, res(21) = 0.075
  // Pixels coarser than the whole-world tile: zoom 0, not -1.
  EXPECT_EQ(zoom_for_pixel_size(200000, 256), 0);
  EXPECT_EQ(zoom_for_pixel_size(1e9, 256), 0);
  // 512-pixel tiles halve every resolution: one zoom less.
  EXPECT_EQ(zoom_for_pixel_size(30, 512), 11);
  EXPECT_EQ(zoom_for_pixel_size(19.0, 512), 12);
  // A resolution exactly equal to a zoom's is that zoom.
  const double res13 = 2 * M_PI * 6378137.0 / 256 / 8192;
  EXPECT_EQ(zoom_for_pixel_size(res13, 256), 13);
}

TEST_F(PlanTest, WarnsWhenTheMaxZoomOversamplesTheSourceByMoreThanTwoLevels) {
  IngestDefinition def = l7_definition();
  auto native = make_plan(def, PlanOptions{});
  ASSERT_TRUE(native.is_ok()) << native.status().to_string();
  EXPECT_EQ(native->native_zoom, 12);
  EXPECT_TRUE(plan_warnings(*native).empty());

  def.output.max_zoom = 12 + kOversampleLevelsWarned;
  auto two = make_plan(def, PlanOptions{});
  ASSERT_TRUE(two.is_ok()) << two.status().to_string();
  EXPECT_EQ(two->native_zoom, 12);
  EXPECT_TRUE(plan_warnings(*two).empty());

  def.output.max_zoom = 15;
  auto three = make_plan(def, PlanOptions{});
  ASSERT_TRUE(three.is_ok()) << three.status().to_string();
  const std::vector<std::string> w = plan_warnings(*three);
  ASSERT_EQ(w.size(), 1u);
  int64_t finer = 0;
  for (const LevelPlan& l : three->levels)
    if (l.zoom > 12) finer += l.tiles;
  EXPECT_NE(w[0].find("max zoom 15 oversamples the sources by 3 levels"), std::string::npos)
      << w[0];
  EXPECT_NE(w[0].find("gives zoom 12"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find(std::to_string(finer) + " of the " + std::to_string(three->total_tiles())),
            std::string::npos)
      << w[0];
  EXPECT_EQ(plan_to_json(*three)["warnings"], nlohmann::json(w));
  EXPECT_EQ(plan_to_json(*three)["zoom"]["native"], 12);
}

// A definition as `kiln ingest FILE --layer t` makes it: every field default.
IngestDefinition flagless_definition(const std::string& file) {
  auto defs = parse_definition(nlohmann::json{{"layer", "t"},
                                              {"sources", {{{"uri", test_data_path(file)}}}},
                                              {"output", {{"catalog", "/tmp/x"}}}});
  EXPECT_TRUE(defs.is_ok()) << defs.status().to_string();
  return defs.is_ok() ? defs->front() : IngestDefinition{};
}

TEST_F(PlanTest, TheDefaultFormatHoldsTheLayer) {
  struct Case {
    const char* file;
    std::vector<BandMap> bands;  // empty: every band
    TileFormat format;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"L7_ETMs.tif", {{3, 0}, {2, 1}, {1, 2}}, TileFormat::kPng, "it holds 3 bands of uint8"},
           {"L7_ETMs.tif", {}, TileFormat::kTiff, "not 6 bands of uint8"},
           {"dem-hills.crop.tif", {}, TileFormat::kTiff, "not 1 band of float32"},
           {"rt_scene_band1.crop.tif", {}, TileFormat::kTiff, "not 1 band of uint16"},
           {"RGBA.uint16.tif",
            {{1, 0}, {2, 1}, {3, 2}},
            TileFormat::kTiff,
            "the default png is for 1 or 3 bands of uint8, not 3 bands of uint16"}}) {
    SCOPED_TRACE(c.file + std::string(c.bands.empty() ? " all bands" : " 3 bands"));
    IngestDefinition def = flagless_definition(c.file);
    def.sources[0].bands = c.bands;
    auto plan = make_plan(def, PlanOptions{});
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_EQ(plan->def.output.encoding.format, c.format);
    EXPECT_EQ(plan_to_json(*plan)["format"], tile_extension(c.format));
    EXPECT_NE(format_choice(*plan).find(c.says), std::string::npos) << format_choice(*plan);
    EXPECT_EQ(format_choice(*plan).rfind(tile_extension(c.format), 0), 0u) << format_choice(*plan);
  }
}

TEST_F(PlanTest, AFormatAskedForIsKeptAndARefusalNamesTheFile) {
  IngestDefinition def = flagless_definition("dem-hills.crop.tif");
  def.output.auto_format = false;
  def.output.encoding.format = TileFormat::kPng;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("png tiles hold"), std::string::npos);
  EXPECT_NE(plan.status().message().find(test_data_path("dem-hills.crop.tif")), std::string::npos)
      << plan.status().message();

  def.output.encoding.format = TileFormat::kTiff;
  auto tif = make_plan(def, PlanOptions{});
  ASSERT_TRUE(tif.is_ok()) << tif.status().to_string();
  EXPECT_EQ(format_choice(*tif), "");  // named, not chosen

  // The JSON form keeps the choice open, so a step's tasks pick the same.
  IngestDefinition open = flagless_definition("dem-hills.crop.tif");
  EXPECT_EQ(to_json(open)["output"]["encoding"]["format"], "auto");
}

TEST_F(PlanTest, AnUnfedOutputBandIsNamedCountingFromZero) {
  // The first source feeds output bands 0-5 (all six of its bands); the
  // second feeds band 7: band 6, as docs/definition.md counts, is missing.
  IngestDefinition def = l7_definition();
  def.sources[0].bands.clear();
  SourceDef second = def.sources[0];
  second.bands = {BandMap{1, 7}};
  def.sources.push_back(second);
  def.output.auto_format = true;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().message().rfind("output band 6 has no source band feeding it", 0), 0u)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("count from 0"), std::string::npos);
}

TEST_F(PlanTest, ZoomedPlanForTheRealScene) {
  auto plan = make_plan(l7_definition(), PlanOptions{});
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const Plan& p = *plan;
  EXPECT_TRUE(p.grid.is_web_mercator());
  EXPECT_EQ(p.max_zoom, 12);  // 28.5 m UTM is ~28.8 m in Web Mercator at 8 S
  EXPECT_EQ(p.min_zoom, 0);
  EXPECT_EQ(p.bands, 3);
  EXPECT_EQ(p.cell_type, CellType::kUInt8);
  EXPECT_FALSE(p.nodata.has_value());
  EXPECT_EQ(p.band_names, (std::vector<std::string>{"band 3", "band 2", "band 1"}));
  ASSERT_EQ(p.sources.size(), 1u);
  EXPECT_EQ(p.sources[0].info.bands, (std::vector<int>{3, 2, 1}));
  EXPECT_LE(p.region_zoom, p.max_zoom);
  EXPECT_EQ(p.top_zoom, std::max(p.region_zoom, p.min_zoom));

  // One level per zoom, min to max; every level has tiles, z0 exactly one,
  // and a level never has more tiles than the one below it.
  ASSERT_EQ(p.levels.size(), 13u);
  int64_t sum = 0;
  for (size_t i = 0; i < p.levels.size(); ++i) {
    const LevelPlan& l = p.levels[i];
    EXPECT_EQ(l.zoom, static_cast<int>(i));
    EXPECT_GE(l.tiles, 1) << "z" << l.zoom;
    EXPECT_LE(l.tiles, l.range.count()) << "z" << l.zoom;
    EXPECT_DOUBLE_EQ(l.resolution, p.grid.resolution_x(l.zoom));
    if (i > 0) {
      EXPECT_GE(l.tiles, p.levels[i - 1].tiles) << "z" << l.zoom;
    }
    sum += l.tiles;
  }
  EXPECT_EQ(p.levels[0].tiles, 1);
  EXPECT_EQ(p.total_tiles(), sum);
  // ~10 km of scene on 9.8 km tiles: 2 to 3 tiles each way at z12.
  EXPECT_GE(p.levels.back().tiles, 4);
  EXPECT_LE(p.levels.back().tiles, 9);

  // The scene's footprint is where OGR puts it (see footprint_test), and
  // every planned max-zoom tile touches it.
  EXPECT_GT(p.extent.width(), 9900);
  EXPECT_LT(p.extent.width(), 10300);
  const TileRange around = p.grid.tiles_covering(12, p.extent);
  const TileRange& r12 = p.levels.back().range;
  EXPECT_GE(r12.min_x, around.min_x - 1);
  EXPECT_LE(r12.max_x, around.max_x + 1);
  EXPECT_GE(r12.min_y, around.min_y - 1);
  EXPECT_LE(r12.max_y, around.max_y + 1);
  ASSERT_TRUE(p.wgs84.has_value());
  EXPECT_NEAR((*p.wgs84)[0], -34.917, 0.01);
  EXPECT_NEAR((*p.wgs84)[3], -7.950, 0.01);

  // Partitions: non-empty, each a tile at region_zoom reached by the
  // source, indexed in order along the Z curve.
  ASSERT_FALSE(p.partitions.empty());
  int64_t partition_tiles = 0;
  for (size_t i = 0; i < p.partitions.size(); ++i) {
    const PartitionPlan& part = p.partitions[i];
    EXPECT_EQ(part.index, static_cast<int64_t>(i));
    EXPECT_EQ(part.region.z, p.region_zoom);
    EXPECT_EQ(part.sources, (std::vector<int>{0}));
    EXPECT_GE(part.tiles, 1);
    partition_tiles += part.tiles;
    if (i > 0) {
      const TileKey& a = p.partitions[i - 1].region;
      const TileKey& b = part.region;
      EXPECT_LT(morton_index(static_cast<uint32_t>(a.x), static_cast<uint32_t>(a.y)),
                morton_index(static_cast<uint32_t>(b.x), static_cast<uint32_t>(b.y)))
          << "partition " << i;
    }
  }
  // Partitions build levels max..top; together they plan exactly those.
  int64_t upper = 0;
  for (const LevelPlan& l : p.levels)
    if (l.zoom >= p.top_zoom) upper += l.tiles;
  EXPECT_EQ(partition_tiles, upper);
  EXPECT_GT(p.read_bytes, 0u);
}

// At z14 (2.4 km tiles) with many threads the scene spans several 2x2-tile
// partitions, so their order is observable.
Plan many_partitions(Curve curve) {
  IngestDefinition def = l7_definition();
  def.output.curve = curve;
  def.output.max_zoom = 14;
  PlanOptions opts;
  opts.threads = 8;
  auto plan = make_plan(def, opts);
  EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
  return plan.is_ok() ? *plan : Plan{};
}

TEST_F(PlanTest, ZOrderCurveOrdersPartitions) {
  const Plan p = many_partitions(Curve::kZOrder);
  EXPECT_EQ(p.region_zoom, 13);
  ASSERT_GE(p.partitions.size(), 4u);
  for (size_t i = 1; i < p.partitions.size(); ++i) {
    const TileKey& a = p.partitions[i - 1].region;
    const TileKey& b = p.partitions[i].region;
    EXPECT_LT(morton_index(static_cast<uint32_t>(a.x), static_cast<uint32_t>(a.y)),
              morton_index(static_cast<uint32_t>(b.x), static_cast<uint32_t>(b.y)))
        << "partition " << i;
  }
}

TEST_F(PlanTest, HilbertCurveOrdersPartitionsAlongIt) {
  const Plan p = many_partitions(Curve::kHilbert);
  ASSERT_GE(p.partitions.size(), 4u);
  const int order = std::max(1, p.region_zoom);
  for (size_t i = 1; i < p.partitions.size(); ++i) {
    const TileKey& a = p.partitions[i - 1].region;
    const TileKey& b = p.partitions[i].region;
    EXPECT_LT(hilbert_index(order, static_cast<uint32_t>(a.x), static_cast<uint32_t>(a.y)),
              hilbert_index(order, static_cast<uint32_t>(b.x), static_cast<uint32_t>(b.y)))
        << "partition " << i;
    EXPECT_EQ(p.partitions[i].index, static_cast<int64_t>(i));
  }
  // Same partitions as the Z-order plan, only in another order.
  const Plan z = many_partitions(Curve::kZOrder);
  ASSERT_EQ(z.partitions.size(), p.partitions.size());
  std::vector<std::pair<int64_t, int64_t>> hk, zk;
  for (const auto& part : p.partitions) hk.emplace_back(part.region.x, part.region.y);
  for (const auto& part : z.partitions) zk.emplace_back(part.region.x, part.region.y);
  std::sort(hk.begin(), hk.end());
  std::sort(zk.begin(), zk.end());
  EXPECT_EQ(hk, zk);
}

TEST_F(PlanTest, FloatingLayoutKeepsTheScenesGrid) {
  IngestDefinition def = l7_definition();
  def.output.layout = Layout::kFloating;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const Plan& p = *plan;
  EXPECT_FALSE(p.grid.is_web_mercator());
  EXPECT_EQ(p.max_zoom, TileGrid::floating_levels(349, 352, 256));
  EXPECT_EQ(p.max_zoom, 1);
  EXPECT_EQ(p.min_zoom, 0);
  EXPECT_NEAR(p.grid.origin_x(), 288776.25, 1e-3);
  EXPECT_NEAR(p.grid.origin_y(), 9120760.75, 1e-3);
  EXPECT_NEAR(p.grid.resolution_x(1), 28.5, 1e-6);
  EXPECT_NEAR(p.grid.resolution_y(1), 28.5, 1e-6);
  EXPECT_EQ(p.grid.matrix_width(1), 2);
  EXPECT_EQ(p.grid.matrix_height(1), 2);
  EXPECT_EQ(p.grid.crs_wkt(), p.sources[0].info.crs_wkt);
  ASSERT_EQ(p.levels.size(), 2u);
  EXPECT_EQ(p.levels[0].tiles, 1);
  EXPECT_EQ(p.levels[1].tiles, 4);
  EXPECT_FALSE(p.partitions.empty());
}

TEST_F(PlanTest, FloatingMaxZoomFinerThanTheSourceIsRefused) {
  IngestDefinition def = l7_definition();
  def.output.layout = Layout::kFloating;
  def.output.max_zoom = 2;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("output.zoom.max"), std::string::npos)
      << plan.status().message();
}

TEST_F(PlanTest, ExplicitZoomsAndNoPyramid) {
  IngestDefinition def = l7_definition();
  def.output.min_zoom = 8;
  def.output.max_zoom = 10;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->min_zoom, 8);
  EXPECT_EQ(plan->max_zoom, 10);
  ASSERT_EQ(plan->levels.size(), 3u);
  EXPECT_EQ(plan->levels.front().zoom, 8);
  EXPECT_EQ(plan->levels.back().zoom, 10);

  IngestDefinition flat = l7_definition();
  flat.output.pyramid = false;
  auto only_max = make_plan(flat, PlanOptions{});
  ASSERT_TRUE(only_max.is_ok()) << only_max.status().to_string();
  EXPECT_EQ(only_max->min_zoom, 12);
  EXPECT_EQ(only_max->max_zoom, 12);
  ASSERT_EQ(only_max->levels.size(), 1u);
  EXPECT_EQ(only_max->levels[0].zoom, 12);
}

TEST_F(PlanTest, BandOutOfRangeNamesTheBandAndTheSource) {
  IngestDefinition def = l7_definition();
  def.sources[0].bands = {BandMap{3, 0}, BandMap{7, 1}, BandMap{1, 2}};
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInputError);
  EXPECT_NE(plan.status().message().find("band 7"), std::string::npos) << plan.status().message();
  EXPECT_NE(plan.status().message().find("L7_ETMs.tif"), std::string::npos)
      << plan.status().message();
}

TEST_F(PlanTest, MinZoomAboveMaxIsAnInvalidArgument) {
  // Above the automatic max zoom (12).
  IngestDefinition def = l7_definition();
  def.output.min_zoom = 13;
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("13"), std::string::npos) << plan.status().message();
  EXPECT_NE(plan.status().message().find("12"), std::string::npos) << plan.status().message();
  // Above an explicit max zoom.
  def.output.max_zoom = 5;
  auto explicit_max = make_plan(def, PlanOptions{});
  ASSERT_FALSE(explicit_max.is_ok());
  EXPECT_EQ(explicit_max.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PlanTest, MissingSourceIsAnInputErrorNamingIt) {
  IngestDefinition def = l7_definition();
  def.sources[0].uri = "/nonexistent/kiln/scene.tif";
  auto plan = make_plan(def, PlanOptions{});
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInputError);
  EXPECT_NE(plan.status().message().find("/nonexistent/kiln/scene.tif"), std::string::npos)
      << plan.status().message();
}

TEST_F(PlanTest, PlanJsonSummarisesThePlan) {
  auto plan = make_plan(l7_definition(), PlanOptions{});
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const nlohmann::json j = plan_to_json(*plan);
  EXPECT_EQ(j["layer"], "t");
  EXPECT_EQ(j["layout"], "zoomed");
  EXPECT_EQ(j["bands"], 3);
  EXPECT_EQ(j["cell_type"], "uint8");
  EXPECT_EQ(j["zoom"]["max"], 12);
  EXPECT_EQ(j["tiles"], plan->total_tiles());
  EXPECT_EQ(j["levels"].size(), plan->levels.size());
  EXPECT_EQ(j["partitions"], plan->partitions.size());
}

}  // namespace
}  // namespace kiln::ingest

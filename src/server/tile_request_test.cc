// The tile door's request parsing: layer references and tile addresses are
// read strictly (no sign, leading zero, path characters or out-of-matrix
// index gets through), ETags name the version and tile and If-None-Match
// compares them as RFC 9110 says, and the extent check follows levels[].
#include "server/tile_request.h"

#include <gtest/gtest.h>

namespace kiln::server {
namespace {

TEST(ParseLayerRef, NameAndOptionalVersion) {
  auto r = parse_layer_ref("ortho");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->layer, "ortho");
  EXPECT_FALSE(r->version.has_value());
  r = parse_layer_ref("ortho.v2@17");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->layer, "ortho.v2");
  EXPECT_EQ(*r->version, 17);
  r = parse_layer_ref("a@999999");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r->version, 999999);
}

TEST(ParseLayerRef, RefusesUnsafeNamesAndBadVersions) {
  for (const char* s : {"", "..", ".hidden", "a/b", "../x", "a b", "a@", "a@0", "a@01", "a@-1",
                        "a@+1", "a@1000000", "a@1@2", "a@v000001", "@1", "a@1 "}) {
    EXPECT_FALSE(parse_layer_ref(s).is_ok()) << s;
  }
  auto r = parse_layer_ref("../x");
  EXPECT_NE(r.status().message().find("'../x'"), std::string::npos) << r.status().message();
}

TEST(ParseTileAddress, ReadsZxyAndExtension) {
  auto t = parse_tile_address("12", "2047", "1365.png");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->z, 12);
  EXPECT_EQ(t->x, 2047);
  EXPECT_EQ(t->y, 1365);
  EXPECT_EQ(t->ext, "png");
  t = parse_tile_address("0", "0", "0.tif");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->ext, "tif");
  t = parse_tile_address("30", "1073741823", "1073741823.webp");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->x, 1073741823);
}

TEST(ParseTileAddress, RefusesAnythingNotStrictlyDecimalOrOutsideTheMatrix) {
  struct Case {
    const char *z, *x, *y;
  };
  for (const Case& c : std::initializer_list<Case>{{"01", "0", "0.png"},
                                                   {"-1", "0", "0.png"},
                                                   {"+1", "0", "0.png"},
                                                   {"31", "0", "0.png"},
                                                   {"1", "2", "0.png"},
                                                   {"1", "0", "2.png"},
                                                   {"1", "00", "0.png"},
                                                   {"1", " 0", "0.png"},
                                                   {"1", "0x1", "0.png"},
                                                   {"1", "0", "0"},
                                                   {"1", "0", "0.jpg"},
                                                   {"1", "0", "0.png.png"},
                                                   {"1", "0", ".png"},
                                                   {"1", "0", "0.PNG"},
                                                   {"", "0", "0.png"},
                                                   {"1", "..", "0.png"},
                                                   {"99999999999999999999", "0", "0.png"}}) {
    EXPECT_FALSE(parse_tile_address(c.z, c.x, c.y).is_ok()) << c.z << "/" << c.x << "/" << c.y;
  }
  auto t = parse_tile_address("2", "4", "0.png");
  EXPECT_NE(t.status().message().find("0-3 at zoom 2"), std::string::npos) << t.status().message();
}

TEST(VersionOfLink, OnlyVersionsSlashVSixDigits) {
  EXPECT_EQ(version_of_link("versions/v000003"), 3);
  EXPECT_EQ(version_of_link("versions/v999999"), 999999);
  for (const char* s :
       {"versions/v000000", "versions/v00003", "/abs/versions/v000003", "../other/versions/v000003",
        "versions/v00000a", "versions/v0000031", "versions/../v000003", ""}) {
    EXPECT_FALSE(version_of_link(s).has_value()) << s;
  }
  EXPECT_EQ(version_dir_name(42), "v000042");
}

TEST(Etag, NamesVersionCommitTimeAndTile) {
  TileAddress t{5, 10, 12, "png"};
  const std::string e = tile_etag(3, "2024-05-01T12:34:56Z", t);
  EXPECT_EQ(e, "\"v3-20240501T123456Z-5-10-12.png\"");
  // A layer made again restarts at version 1 with another commit time.
  EXPECT_NE(tile_etag(1, "2024-05-01T12:34:56Z", t), tile_etag(1, "2024-05-02T00:00:00Z", t));
  TileAddress u = t;
  u.y = 13;
  EXPECT_NE(tile_etag(3, "2024-05-01T12:34:56Z", u), e);
}

TEST(IfNoneMatch, ComparesWeaklyOverAList) {
  const std::string e = "\"v3-x\"";
  EXPECT_TRUE(if_none_match("\"v3-x\"", e));
  EXPECT_TRUE(if_none_match("W/\"v3-x\"", e));
  EXPECT_TRUE(if_none_match("\"a\", \"v3-x\"", e));
  EXPECT_TRUE(if_none_match("\"a\",W/\"v3-x\" ", e));
  EXPECT_TRUE(if_none_match("*", e));
  EXPECT_FALSE(if_none_match("", e));
  EXPECT_FALSE(if_none_match("\"v3-y\"", e));
  EXPECT_FALSE(if_none_match("v3-x", e));
  EXPECT_FALSE(if_none_match("\"v3-x", e));
  EXPECT_FALSE(if_none_match(",", e));
}

constexpr char kMetadata[] = R"({
  "version": 2, "created_at": "2024-05-01T12:34:56Z", "format": "png", "layout": "zoomed",
  "tile_size": 256, "zoom": {"min": 3, "max": 4},
  "levels": [
    {"zoom": 3, "tiles": 1, "min_x": 2, "min_y": 3, "max_x": 2, "max_y": 3},
    {"zoom": 4, "tiles": 4, "min_x": 4, "min_y": 6, "max_x": 5, "max_y": 7}],
  "extent": {"wgs84": [-80, -10, -70, 0], "layer_crs": [1, 2, 3, 4]},
  "statistics": []})";

TEST(LayerInfo, ExtentFollowsLevels) {
  auto info = parse_layer_info(kMetadata);
  ASSERT_TRUE(info.is_ok()) << info.status().message();
  EXPECT_EQ(info->version, 2);
  EXPECT_EQ(info->format, "png");
  EXPECT_TRUE(info->zoomed());
  EXPECT_EQ(info->min_zoom, 3);
  EXPECT_EQ(info->max_zoom, 4);
  ASSERT_TRUE(info->wgs84.has_value());
  EXPECT_EQ((*info->wgs84)[0], -80);
  EXPECT_TRUE(info->inside(3, 2, 3));
  EXPECT_TRUE(info->inside(4, 4, 6));
  EXPECT_TRUE(info->inside(4, 5, 7));
  EXPECT_FALSE(info->inside(4, 6, 7));
  EXPECT_FALSE(info->inside(4, 3, 6));
  EXPECT_FALSE(info->inside(4, 4, 8));
  EXPECT_FALSE(info->inside(2, 1, 1));   // below min zoom
  EXPECT_FALSE(info->inside(5, 8, 12));  // above max zoom
}

TEST(LayerInfo, EmptyLevelHasNoTileInside) {
  auto info = parse_layer_info(R"({"version": 1, "format": "tiff", "tile_size": 512,
    "zoom": {"min": 0, "max": 0}, "layout": "floating",
    "levels": [{"zoom": 0, "tiles": 0, "min_x": null, "min_y": null, "max_x": null,
                "max_y": null}]})");
  ASSERT_TRUE(info.is_ok()) << info.status().message();
  EXPECT_EQ(info->format, "tif");
  EXPECT_FALSE(info->zoomed());
  EXPECT_FALSE(info->inside(0, 0, 0));
}

TEST(LayerInfo, RefusesWhatNoIngestWrites) {
  EXPECT_FALSE(parse_layer_info("not json").is_ok());
  EXPECT_FALSE(parse_layer_info("[]").is_ok());
  EXPECT_FALSE(parse_layer_info(R"({"format": "png"})").is_ok());
  auto r = parse_layer_info(R"({"version": 1, "format": "png", "tile_size": 256})");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("zoom"), std::string::npos);
}

}  // namespace
}  // namespace kiln::server

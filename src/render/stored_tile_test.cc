#include "render/stored_tile.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "raster/tiff_encoder.h"
#include "render/render.h"

namespace kiln::render {
namespace {

namespace fs = std::filesystem;

// A version directory in a temp dir with uint16 tiles written by the
// ingest's own encoder, and a metadata.json with one band's histogram.
class StoredTile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kiln-stored-tile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = fs::path(tmpl) / "versions" / "v000001";
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_.parent_path().parent_path()); }

  void write_tile(int z, int x, int y, uint16_t value) {
    Raster t(8, 8, 1, CellType::kUInt16);
    for (size_t i = 0; i < t.pixels(); ++i) t.band_as<uint16_t>(0)[i] = value;
    std::fill(t.mask.begin(), t.mask.end(), 255);
    EncodeOptions o;
    o.format = TileFormat::kTiff;
    Result<std::string> bytes = encode_tiff(t, o, TileGeoref{{0, 10, 0, 80, 0, -10}, ""});
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    const fs::path p = dir_ / std::to_string(z) / std::to_string(x) / (std::to_string(y) + ".tif");
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << *bytes;
  }
  void write_metadata(double lo, double hi) {
    // 100 equal buckets between lo and hi: percentiles 2 and 98 fall at
    // lo + 2% and lo + 98% of the span.
    nlohmann::json h = {{"min", lo}, {"max", hi}, {"buckets", std::vector<int>(100, 10)}};
    nlohmann::json m = {{"statistics", {{{"histogram", h}}}}};
    std::ofstream(dir_ / "metadata.json") << m.dump();
  }
  StoredTileRequest request(int z, int x, int y, std::string query) {
    StoredTileRequest r;
    r.version_dir = dir_.string();
    r.z = z;
    r.x = x;
    r.y = y;
    r.query = std::move(query);
    return r;
  }

  fs::path dir_;
};

TEST_F(StoredTile, RendersAsTheQuerySaysAndTheDefaultsFromMetadata) {
  write_tile(3, 1, 2, 1000);
  write_metadata(0, 2000);
  StoredTileRenderer renderer;
  Result<std::string> png = renderer.render(request(3, 1, 2, "rescale=0,2000"));
  ASSERT_TRUE(png.is_ok()) << png.status().message();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // Same pixels with the metadata's percentiles (40..1960): 1000 -> 128;
  // with 0..2000: 1000 -> 128 too (floor(127.5 + 0.5)). The images agree.
  Result<std::string> by_default = renderer.render(request(3, 1, 2, ""));
  ASSERT_TRUE(by_default.is_ok()) << by_default.status().message();
  EXPECT_EQ(*by_default, *png);
  // Another stretch, another picture.
  Result<std::string> other = renderer.render(request(3, 1, 2, "rescale=0,1000"));
  ASSERT_TRUE(other.is_ok());
  EXPECT_NE(*other, *png);
}

TEST_F(StoredTile, MissingTileIsNotFoundAndBadQueriesNameTheParameter) {
  write_tile(3, 1, 2, 1000);
  StoredTileRenderer renderer;
  Result<std::string> none = renderer.render(request(3, 1, 3, "rescale=0,1"));
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  Result<std::string> bidx = renderer.render(request(3, 1, 2, "bidx=2&rescale=0,1"));
  ASSERT_FALSE(bidx.is_ok());
  EXPECT_EQ(bidx.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bidx.status().message().find("bidx"), std::string::npos) << bidx.status().message();
  // No rescale and no statistics for uint16 data: the refusal names rescale.
  Result<std::string> bare = renderer.render(request(3, 1, 2, ""));
  ASSERT_FALSE(bare.is_ok());
  EXPECT_NE(bare.status().message().find("rescale"), std::string::npos) << bare.status().message();
}

TEST_F(StoredTile, ACorruptTileIsAnInputErrorNamingTheFile) {
  write_tile(3, 1, 2, 1000);
  const fs::path p = dir_ / "3" / "1" / "2.tif";
  std::ofstream(p, std::ios::binary | std::ios::trunc) << "II*\0 not a tiff at all";
  StoredTileRenderer renderer;
  Result<std::string> r = renderer.render(request(3, 1, 2, "rescale=0,1"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInputError);
  EXPECT_NE(r.status().message().find(p.string()), std::string::npos) << r.status().message();
}

TEST_F(StoredTile, HillshadeReadsTheNeighbours) {
  // A flat tile among flat neighbours shades as flat ground everywhere; a
  // neighbour much higher makes the shared edge a slope.
  for (int x = 0; x <= 2; ++x)
    for (int y = 0; y <= 2; ++y) write_tile(2, x, y, 100);
  StoredTileRenderer renderer;
  Result<std::string> flat = renderer.render(request(2, 1, 1, "hillshade=true"));
  ASSERT_TRUE(flat.is_ok()) << flat.status().message();
  write_tile(2, 2, 1, 5000);
  Result<std::string> edge = renderer.render(request(2, 1, 1, "hillshade=true"));
  ASSERT_TRUE(edge.is_ok()) << edge.status().message();
  EXPECT_NE(*flat, *edge);
}

TEST(RenderProtocol, RequestsAndRepliesRoundTrip) {
  StoredTileRequest r;
  r.version_dir = "/srv/catalog/production/dem/versions/v000002";
  r.z = 12;
  r.x = 1234;
  r.y = 2345;
  r.query = "rescale=0,3000&colormap=viridis";
  r.format = ImageFormat::kWebp;
  const std::string line = encode_render_request(r);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  Result<StoredTileRequest> back = decode_render_request(line.substr(0, line.size() - 1));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->version_dir, r.version_dir);
  EXPECT_EQ(back->x, 1234);
  EXPECT_EQ(back->y, 2345);
  EXPECT_EQ(back->query, r.query);
  EXPECT_EQ(back->format, ImageFormat::kWebp);

  for (const char* bad : {"", "[]", R"({"dir":"rel","z":1,"x":0,"y":0,"query":"","format":"png"})",
                          R"({"dir":"/a","z":1,"x":2,"y":0,"query":"","format":"png"})",
                          R"({"dir":"/a","z":1,"x":0,"y":0,"query":"","format":"gif"})"}) {
    EXPECT_FALSE(decode_render_request(bad).is_ok()) << bad;
  }

  size_t bytes = 0;
  Status carried;
  std::string h = encode_render_reply(Status::ok(), 74374);
  ASSERT_TRUE(decode_render_reply(h.substr(0, h.size() - 1), &bytes, &carried).is_ok());
  EXPECT_TRUE(carried.is_ok());
  EXPECT_EQ(bytes, 74374u);
  h = encode_render_reply(invalid_argument("bidx: 9 is not a band"), 0);
  ASSERT_TRUE(decode_render_reply(h.substr(0, h.size() - 1), &bytes, &carried).is_ok());
  EXPECT_EQ(carried.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(carried.message(), "bidx: 9 is not a band");
  EXPECT_FALSE(decode_render_reply("garbage", &bytes, &carried).is_ok());
  EXPECT_FALSE(decode_render_reply(R"({"code":"ok","bytes":-1})", &bytes, &carried).is_ok());
  EXPECT_FALSE(
      decode_render_reply(R"({"code":"ok","bytes":99999999999})", &bytes, &carried).is_ok());
}

}  // namespace
}  // namespace kiln::render

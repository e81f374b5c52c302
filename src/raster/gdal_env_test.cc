// open_raster: a tenant's raster opens only with the allowed drivers, and
// no sibling file (a VRT dressed as x.tif.ovr) smuggles another driver in.
#include "raster/gdal_env.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "raster/test_data.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class OpenRasterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "kiln-open-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // A VRT of `w` x `h` whose one band reads `file`'s bytes raw.
  static std::string raw_vrt(const std::string& file, int w, int h) {
    return "<VRTDataset rasterXSize=\"" + std::to_string(w) + "\" rasterYSize=\"" +
           std::to_string(h) +
           "\"><VRTRasterBand dataType=\"Byte\" band=\"1\" subClass=\"VRTRawRasterBand\">"
           "<SourceFilename relativeToVRT=\"0\">" +
           file +
           "</SourceFilename><ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>"
           "<LineOffset>" +
           std::to_string(w) + "</LineOffset></VRTRasterBand></VRTDataset>";
  }
  fs::path dir_;
};

TEST_F(OpenRasterTest, OpensTheAllowedFormats) {
  for (const char* name : {"RGB.byte.crop.tif", "rc_image_webp.tif", "L7_ETMs.tif"}) {
    auto ds = open_raster(test_data_path(name));
    ASSERT_TRUE(ds.is_ok()) << name << ": " << ds.status().to_string();
    EXPECT_STREQ((*ds)->GetDriver()->GetDescription(), "GTiff");
  }
}

TEST_F(OpenRasterTest, RefusesVrtMemAndInlineXml) {
  const std::string secret = (dir_ / "secret.bin").string();
  std::ofstream(secret) << std::string(64, 'S');
  const std::string vrt = (dir_ / "scene.vrt").string();
  std::ofstream(vrt) << raw_vrt(secret, 8, 8);
  // The same VRT under a raster's name: the content decides the driver.
  const std::string disguised = (dir_ / "scene.tif").string();
  std::ofstream(disguised) << raw_vrt(secret, 8, 8);
  for (const std::string& uri : {vrt, disguised}) {
    auto ds = open_raster(uri);
    ASSERT_FALSE(ds.is_ok()) << uri;
    EXPECT_EQ(ds.status().code(), StatusCode::kInputError);
    EXPECT_TRUE(contains(ds.status().message(), "format sources may use")) << ds.status().message();
  }
  // Names no allowed driver claims: GDAL takes them for missing files.
  for (const std::string& uri :
       {raw_vrt(secret, 8, 8), std::string("MEM:::DATAPOINTER=0,PIXELS=1,LINES=1")}) {
    auto ds = open_raster(uri);
    ASSERT_FALSE(ds.is_ok()) << uri;
    EXPECT_EQ(ds.status().code(), StatusCode::kInputError);
  }
}

TEST_F(OpenRasterTest, IgnoresSiblingFilesSuchAsAVrtOverview) {
  const std::string secret = (dir_ / "secret.bin").string();
  std::ofstream(secret) << std::string(64 * 64, 'S');
  const fs::path scene = dir_ / "scene.tif";
  fs::copy_file(test_data_path("RGB.byte.crop.tif"), scene);
  auto plain = open_raster(scene.string());
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  const int own = (*plain)->GetRasterBand(1)->GetOverviewCount();
  const int w = (*plain)->GetRasterXSize() / 2, h = (*plain)->GetRasterYSize() / 2;
  plain->reset();
  // GDAL would open x.tif.ovr with any driver, this one with VRT.
  std::ofstream(scene.string() + ".ovr") << raw_vrt(secret, w, h);
  auto ds = open_raster(scene.string());
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  EXPECT_EQ((*ds)->GetRasterBand(1)->GetOverviewCount(), own);
}

}  // namespace
}  // namespace kiln

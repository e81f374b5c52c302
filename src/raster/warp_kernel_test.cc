// WarpKernel on hand-made rasters: what each filter does with valid,
// invalid and edge taps, and how values are stored per cell type.
#include "raster/warp_kernel.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

// A w x h single-band uint8 raster, all valid, filled by f(x, y).
template <typename F>
Raster make(int w, int h, F f) {
  Raster r(w, h, 1, CellType::kUInt8);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) r.data[y * w + x] = static_cast<uint8_t>(f(x, y));
  r.mask.assign(r.pixels(), 255);
  return r;
}

// Samples one point; returns false when the kernel leaves it invalid.
bool sample(const WarpKernel& k, const Raster& src, double x, double y, double* value) {
  int ok = 1;
  uint8_t m = 0;
  std::vector<double> out(src.bands);
  k.resample_row(src, src.all_valid(), SampleRow{1, &x, &y, &ok}, out.data(), 1, &m);
  *value = out[0];
  return m == 255;
}

TEST(WarpKernel, EveryFilterKeepsAConstantImageConstant) {
  const Raster src = make(16, 16, [](int, int) { return 77; });
  for (WarpResample m : {WarpResample::kNearest, WarpResample::kBilinear, WarpResample::kCubic,
                         WarpResample::kLanczos}) {
    for (double scale : {1.0, 0.7, 0.25}) {
      const WarpKernel k(m, scale, scale);
      for (double x : {0.2, 3.5, 7.9, 15.99}) {
        double v = 0;
        ASSERT_TRUE(sample(k, src, x, 5.3, &v));
        EXPECT_NEAR(v, 77.0, 1e-9) << warp_resample_name(m) << " scale " << scale << " x " << x;
      }
    }
  }
}

TEST(WarpKernel, BilinearInterpolatesBetweenPixelCentres) {
  // A ramp along x: value 10 * x at pixel centre x + 0.5.
  const Raster src = make(8, 4, [](int x, int) { return 10 * x; });
  const WarpKernel k(WarpResample::kBilinear, 1, 1);
  double v = 0;
  ASSERT_TRUE(sample(k, src, 2.5, 1.5, &v));
  EXPECT_DOUBLE_EQ(v, 20.0);
  ASSERT_TRUE(sample(k, src, 2.75, 1.5, &v));
  EXPECT_DOUBLE_EQ(v, 22.5);
}

TEST(WarpKernel, DownsamplingStretchesTheFilterOverMoreSourcePixels) {
  // A one-pixel spike two pixels left of the sample point: outside the
  // unstretched bilinear's reach, inside the one stretched for scale 1/3.
  const Raster src = make(16, 16, [](int x, int) { return x == 5 ? 255 : 0; });
  double sharp = -1, wide = -1;
  ASSERT_TRUE(sample(WarpKernel(WarpResample::kBilinear, 1, 1), src, 7.5, 7.5, &sharp));
  ASSERT_TRUE(sample(WarpKernel(WarpResample::kBilinear, 1.0 / 3, 1.0 / 3), src, 7.5, 7.5, &wide));
  EXPECT_EQ(sharp, 0.0);
  EXPECT_GT(wide, 10.0);
  EXPECT_EQ(WarpKernel(WarpResample::kBilinear, 1.0 / 3, 1.0 / 3).radius_x(), 3);
}

TEST(WarpKernel, InvalidTapsNeverBleedIntoTheValue) {
  // Left half valid 100, right half invalid holding 0 (nodata).
  Raster src = make(8, 8, [](int x, int) { return x < 4 ? 100 : 0; });
  for (int y = 0; y < 8; ++y)
    for (int x = 4; x < 8; ++x) src.mask[y * 8 + x] = 0;
  for (WarpResample m : {WarpResample::kBilinear, WarpResample::kCubic, WarpResample::kLanczos}) {
    const WarpKernel k(m, 0.5, 0.5);
    double v = 0;
    // Centre on the last valid column: half the taps are invalid.
    ASSERT_TRUE(sample(k, src, 3.9, 4.0, &v)) << warp_resample_name(m);
    EXPECT_NEAR(v, 100.0, 1e-9) << warp_resample_name(m);
    // Centre on an invalid pixel: the output pixel is invalid.
    EXPECT_FALSE(sample(k, src, 4.1, 4.0, &v)) << warp_resample_name(m);
  }
}

TEST(WarpKernel, PointsOffTheWindowOrFailedAreLeftInvalid) {
  const Raster src = make(4, 4, [](int, int) { return 9; });
  const WarpKernel k(WarpResample::kBilinear, 1, 1);
  double xs[] = {-0.01, 4.01, 1.0, NAN, 2.0};
  double ys[] = {1.0, 1.0, -3.0, 1.0, 2.0};
  int ok[] = {1, 1, 1, 1, 0};
  std::vector<double> out(5, -1);
  std::vector<uint8_t> m(5, 0);
  k.resample_row(src, true, SampleRow{5, xs, ys, ok}, out.data(), 5, m.data());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(m[i], 0) << "point " << i;
}

TEST(WarpKernel, ScaleFollowsGdal) {
  EXPECT_EQ(warp_kernel_scale(256, 200), 1.0);  // upsampling: no stretch
  EXPECT_DOUBLE_EQ(warp_kernel_scale(256, 341.5), 256 / 341.5);
  EXPECT_DOUBLE_EQ(warp_kernel_scale(256, 510), 0.5);  // within 0.05 of 1/2
  // Bilinear and cubic stay unstretched down to 0.95 on both axes.
  EXPECT_EQ(WarpKernel(WarpResample::kBilinear, 0.96, 0.97).scale_x(), 1.0);
  EXPECT_EQ(WarpKernel(WarpResample::kBilinear, 0.96, 0.9).scale_x(), 0.96);
  EXPECT_EQ(WarpKernel(WarpResample::kLanczos, 0.96, 0.97).scale_x(), 0.96);
}

TEST(WarpKernel, StoreRowRoundsHalfUpAndClampsPerCellType) {
  const double v[] = {-3.5, -0.4, 2.5, 300.7, 65535.6};
  const uint8_t valid[] = {255, 255, 255, 255, 0};
  uint8_t u8[5] = {1, 1, 1, 1, 42};
  store_row(v, 5, valid, CellType::kUInt8, u8);
  EXPECT_EQ(std::vector<int>(u8, u8 + 5), (std::vector<int>{0, 0, 3, 255, 0}));  // invalid: 0
  int16_t i16[5] = {};
  store_row(v, 4, valid, CellType::kInt16, i16);
  EXPECT_EQ(std::vector<int>(i16, i16 + 4), (std::vector<int>{-3, 0, 3, 301}));
  float f[4] = {};
  store_row(v, 4, valid, CellType::kFloat32, f);
  EXPECT_FLOAT_EQ(f[3], 300.7f);
  uint64_t u64[1] = {};
  const double big[] = {1e30};
  store_row(big, 1, valid, CellType::kUInt64, u64);
  EXPECT_EQ(u64[0], std::numeric_limits<uint64_t>::max());
}

}  // namespace
}  // namespace kiln

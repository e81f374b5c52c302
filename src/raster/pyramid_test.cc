// Pyramid levels in memory: downsample_2x per method and validity rule,
// crop/paste and fill_invalid.
#include "raster/pyramid.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

constexpr PyramidResample kAllMethods[] = {PyramidResample::kAverage, PyramidResample::kMode,
                                           PyramidResample::kMin,     PyramidResample::kMax,
                                           PyramidResample::kMedian,  PyramidResample::kNearest};

// A 2x2 one-band raster: values in order top-left, top-right, bottom-left,
// bottom-right; `valid` likewise (all valid when empty).
template <typename T>
Raster block(CellType type, std::initializer_list<T> values, std::vector<bool> valid = {}) {
  Raster r(2, 2, 1, type);
  int i = 0;
  for (T v : values) {
    r.band_as<T>(0)[i] = v;
    r.mask[i] = valid.empty() || valid[i] ? 255 : 0;
    ++i;
  }
  return r;
}

// The single output pixel of downsampling a 2x2 block.
template <typename T>
T reduce_one(const Raster& r, PyramidResample method, std::optional<double> nodata = {}) {
  Raster out = downsample_2x(r, method, nodata);
  EXPECT_EQ(out.width, 1);
  EXPECT_EQ(out.height, 1);
  EXPECT_EQ(out.bands, r.bands);
  EXPECT_EQ(out.type, r.type);
  return out.band_as<T>(0)[0];
}

uint8_t u8(std::initializer_list<uint8_t> v, PyramidResample m) {
  return reduce_one<uint8_t>(block<uint8_t>(CellType::kUInt8, v), m);
}

TEST(Downsample, AverageRoundsHalfAwayFromZeroOnIntegers) {
  EXPECT_EQ(u8({1, 2, 2, 2}, PyramidResample::kAverage), 2);  // 1.75
  EXPECT_EQ(u8({1, 1, 2, 2}, PyramidResample::kAverage), 2);  // 1.5 -> 2, not 1
  EXPECT_EQ(u8({1, 1, 1, 2}, PyramidResample::kAverage), 1);  // 1.25
  EXPECT_EQ(u8({0, 0, 0, 1}, PyramidResample::kAverage), 0);  // 0.25
  EXPECT_EQ(u8({255, 255, 255, 254}, PyramidResample::kAverage), 255);
  // Negative values round away from zero too: -1.5 -> -2.
  EXPECT_EQ(reduce_one<int16_t>(block<int16_t>(CellType::kInt16, {-1, -1, -2, -2}),
                                PyramidResample::kAverage),
            -2);
  // Sums beyond the type's range do not overflow.
  EXPECT_EQ(reduce_one<uint16_t>(block<uint16_t>(CellType::kUInt16, {65535, 65535, 65535, 65533}),
                                 PyramidResample::kAverage),
            65535);  // 65534.5 -> 65535
}

TEST(Downsample, AverageOfFloatsIsNotRounded) {
  EXPECT_FLOAT_EQ(
      reduce_one<float>(block<float>(CellType::kFloat32, {1, 1, 2, 2}), PyramidResample::kAverage),
      1.5f);
  EXPECT_NEAR(reduce_one<double>(block<double>(CellType::kFloat64, {0.1, 0.2, 0.3, 0.4}),
                                 PyramidResample::kAverage),
              0.25, 1e-12);
  // Three valid floats: the mean of those three.
  EXPECT_DOUBLE_EQ(reduce_one<double>(
                       block<double>(CellType::kFloat64, {1, 2, 999, 6}, {true, true, false, true}),
                       PyramidResample::kAverage),
                   3.0);
}

TEST(Downsample, ModeTakesTheMostFrequentAndTheSmallestOnTies) {
  EXPECT_EQ(u8({7, 3, 7, 9}, PyramidResample::kMode), 7);
  EXPECT_EQ(u8({9, 3, 9, 3}, PyramidResample::kMode), 3);  // 2-2 tie
  EXPECT_EQ(u8({8, 6, 4, 2}, PyramidResample::kMode), 2);  // all differ
  EXPECT_EQ(u8({5, 5, 5, 1}, PyramidResample::kMode), 5);
}

TEST(Downsample, MinAndMax) {
  EXPECT_EQ(u8({7, 3, 9, 4}, PyramidResample::kMin), 3);
  EXPECT_EQ(u8({7, 3, 9, 4}, PyramidResample::kMax), 9);
  EXPECT_EQ(
      reduce_one<int32_t>(block<int32_t>(CellType::kInt32, {-5, 3, -7, 0}), PyramidResample::kMin),
      -7);
  EXPECT_FLOAT_EQ(reduce_one<float>(block<float>(CellType::kFloat32, {-0.5f, 2.5f, 1, 0}),
                                    PyramidResample::kMax),
                  2.5f);
}

TEST(Downsample, MedianIsTheLowerMedian) {
  EXPECT_EQ(u8({1, 5, 3, 9}, PyramidResample::kMedian), 3);  // sorted 1 3 5 9
  EXPECT_EQ(u8({4, 4, 8, 8}, PyramidResample::kMedian), 4);
  // Three valid values: the middle one.
  EXPECT_EQ(reduce_one<uint8_t>(
                block<uint8_t>(CellType::kUInt8, {10, 200, 30, 40}, {true, false, true, true}),
                PyramidResample::kMedian),
            30);
}

TEST(Downsample, NearestTakesTheFirstValidOfTlTrBlBr) {
  EXPECT_EQ(u8({11, 22, 33, 44}, PyramidResample::kNearest), 11);
  auto first_valid = [](std::vector<bool> valid) {
    return reduce_one<uint8_t>(block<uint8_t>(CellType::kUInt8, {11, 22, 33, 44}, valid),
                               PyramidResample::kNearest);
  };
  EXPECT_EQ(first_valid({false, true, true, true}), 22);
  EXPECT_EQ(first_valid({false, false, true, true}), 33);
  EXPECT_EQ(first_valid({false, false, false, true}), 44);
  EXPECT_EQ(first_valid({false, true, false, false}), 22);
}

TEST(Downsample, OneValidChildGivesThatChildForEveryMethod) {
  for (PyramidResample m : kAllMethods) {
    for (int k = 0; k < 4; ++k) {
      std::vector<bool> valid(4, false);
      valid[k] = true;
      Raster in = block<uint8_t>(CellType::kUInt8, {0, 0, 0, 0}, valid);
      in.band_as<uint8_t>(0)[k] = 77;
      Raster out = downsample_2x(in, m, 0.0);
      EXPECT_EQ(out.mask[0], 255) << pyramid_resample_name(m) << " child " << k;
      EXPECT_EQ(out.band_as<uint8_t>(0)[0], 77) << pyramid_resample_name(m) << " child " << k;
    }
  }
}

TEST(Downsample, NoValidChildGivesAnInvalidPixelHoldingNodata) {
  for (PyramidResample m : kAllMethods) {
    Raster in = block<uint8_t>(CellType::kUInt8, {1, 2, 3, 4}, {false, false, false, false});
    Raster out = downsample_2x(in, m, 9.0);
    EXPECT_EQ(out.mask[0], 0) << pyramid_resample_name(m);
    EXPECT_EQ(out.band_as<uint8_t>(0)[0], 9) << pyramid_resample_name(m);
    // No nodata: invalid pixels hold 0.
    Raster zero = downsample_2x(in, m, std::nullopt);
    EXPECT_EQ(zero.mask[0], 0) << pyramid_resample_name(m);
    EXPECT_EQ(zero.band_as<uint8_t>(0)[0], 0) << pyramid_resample_name(m);
  }
  // NaN nodata on floats.
  Raster f = block<float>(CellType::kFloat32, {1, 2, 3, 4}, {false, false, false, false});
  Raster out = downsample_2x(f, PyramidResample::kAverage, std::nan(""));
  EXPECT_EQ(out.mask[0], 0);
  EXPECT_TRUE(std::isnan(out.band_as<float>(0)[0]));
}

TEST(Downsample, NodataNeverBleedsIntoValidPixels) {
  // Three valid 10s and an invalid child holding nodata 0.
  for (PyramidResample m : kAllMethods) {
    Raster in = block<uint8_t>(CellType::kUInt8, {10, 0, 10, 10}, {true, false, true, true});
    Raster out = downsample_2x(in, m, 0.0);
    EXPECT_EQ(out.mask[0], 255) << pyramid_resample_name(m);
    EXPECT_EQ(out.band_as<uint8_t>(0)[0], 10) << pyramid_resample_name(m);
  }
  // Float with a NaN under the invalid child.
  Raster f = block<float>(CellType::kFloat32, {2, 4, std::nanf(""), 6}, {true, true, false, true});
  Raster out = downsample_2x(f, PyramidResample::kAverage, std::nan(""));
  EXPECT_EQ(out.mask[0], 255);
  EXPECT_FLOAT_EQ(out.band_as<float>(0)[0], 4.0f);
}

TEST(Downsample, EveryBandAndEveryBlockIsReducedInPlace) {
  // 4x2 pixels, 2 bands: two output pixels per band.
  Raster in(4, 2, 2, CellType::kUInt16);
  const uint16_t band0[] = {1, 3, 100, 100, 5, 7, 100, 104};
  for (int i = 0; i < 8; ++i) {
    in.band_as<uint16_t>(0)[i] = band0[i];
    in.band_as<uint16_t>(1)[i] = static_cast<uint16_t>(band0[i] * 10);
    in.mask[i] = 255;
  }
  Raster out = downsample_2x(in, PyramidResample::kAverage, std::nullopt);
  ASSERT_EQ(out.width, 2);
  ASSERT_EQ(out.height, 1);
  ASSERT_EQ(out.bands, 2);
  EXPECT_EQ(out.band_as<uint16_t>(0)[0], 4);    // (1+3+5+7)/4
  EXPECT_EQ(out.band_as<uint16_t>(0)[1], 101);  // (100+100+100+104)/4
  EXPECT_EQ(out.band_as<uint16_t>(1)[0], 40);
  EXPECT_EQ(out.band_as<uint16_t>(1)[1], 1010);
  EXPECT_EQ(out.mask[0], 255);
  EXPECT_EQ(out.mask[1], 255);
}

Raster numbered(int w, int h, int bands, CellType type) {
  Raster r(w, h, bands, type);
  dispatch_cell_type(type, [&]<typename T>() {
    for (int b = 0; b < bands; ++b)
      for (int i = 0; i < w * h; ++i) r.band_as<T>(b)[i] = static_cast<T>(i + 1000 * b);
  });
  for (int i = 0; i < w * h; ++i) r.mask[i] = (i % 3 == 0) ? 0 : 255;
  return r;
}

TEST(CropPaste, CropTakesTheBlockAndPasteRestoresIt) {
  const Raster src = numbered(8, 6, 2, CellType::kInt32);
  const Raster tile = crop(src, 3, 2, 4, 3);
  ASSERT_EQ(tile.width, 4);
  ASSERT_EQ(tile.height, 3);
  ASSERT_EQ(tile.bands, 2);
  for (int b = 0; b < 2; ++b) {
    for (int y = 0; y < 3; ++y) {
      for (int x = 0; x < 4; ++x) {
        const int si = (y + 2) * 8 + (x + 3);
        EXPECT_EQ(tile.band_as<int32_t>(b)[y * 4 + x], src.band_as<int32_t>(b)[si]);
        EXPECT_EQ(tile.mask[y * 4 + x], src.mask[si]);
      }
    }
  }
  // Pasting the crop into a blank raster reproduces exactly that block and
  // leaves everything else untouched.
  Raster dst(8, 6, 2, CellType::kInt32);
  paste(tile, 3, 2, &dst);
  for (int b = 0; b < 2; ++b) {
    for (int y = 0; y < 6; ++y) {
      for (int x = 0; x < 8; ++x) {
        const int i = y * 8 + x;
        const bool inside = x >= 3 && x < 7 && y >= 2 && y < 5;
        EXPECT_EQ(dst.band_as<int32_t>(b)[i], inside ? src.band_as<int32_t>(b)[i] : 0)
            << b << " " << x << "," << y;
        if (b == 0) {
          EXPECT_EQ(dst.mask[i], inside ? src.mask[i] : 0) << x << "," << y;
        }
      }
    }
  }
  // Cropping the pasted block gives the tile back byte for byte.
  const Raster again = crop(dst, 3, 2, 4, 3);
  EXPECT_EQ(again.data, tile.data);
  EXPECT_EQ(again.mask, tile.mask);
}

TEST(FillInvalid, WritesNodataUnderInvalidPixelsOnly) {
  Raster r = numbered(6, 1, 2, CellType::kUInt16);  // pixels 0 and 3 invalid
  fill_invalid(&r, 7.0);
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < 6; ++i) {
      const uint16_t want = (i % 3 == 0) ? 7 : static_cast<uint16_t>(i + 1000 * b);
      EXPECT_EQ(r.band_as<uint16_t>(b)[i], want) << "band " << b << " pixel " << i;
    }
  }
  fill_invalid(&r, std::nullopt);
  EXPECT_EQ(r.band_as<uint16_t>(0)[0], 0);
  EXPECT_EQ(r.band_as<uint16_t>(1)[3], 0);
  EXPECT_EQ(r.band_as<uint16_t>(1)[4], 1004);

  Raster f = numbered(3, 1, 1, CellType::kFloat64);
  fill_invalid(&f, std::nan(""));
  EXPECT_TRUE(std::isnan(f.band_as<double>(0)[0]));
  EXPECT_EQ(f.band_as<double>(0)[1], 1);
}

}  // namespace
}  // namespace kiln

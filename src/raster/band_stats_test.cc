// Band statistics: per-partition moments and fine histograms over valid
// pixels, merged into a layer histogram.
#include "raster/band_stats.h"

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace kiln {
namespace {

// A one-row raster holding `values` in every band (band b adds 100*b), with
// the pixels listed in `invalid` masked out.
template <typename T>
Raster row(CellType type, const std::vector<T>& values, int bands = 1,
           const std::vector<int>& invalid = {}) {
  Raster r(static_cast<int>(values.size()), 1, bands, type);
  for (int b = 0; b < bands; ++b)
    for (size_t i = 0; i < values.size(); ++i)
      r.band_as<T>(b)[i] = static_cast<T>(values[i] + 100 * b);
  std::fill(r.mask.begin(), r.mask.end(), 255);
  for (int i : invalid) r.mask[i] = 0;
  return r;
}

uint64_t total(const std::vector<uint64_t>& v) {
  return std::accumulate(v.begin(), v.end(), uint64_t{0});
}

TEST(BandStats, MomentsCoverValidPixelsOnly) {
  // 250 sits under an invalid pixel and must not show up anywhere.
  const Raster r = row<uint8_t>(CellType::kUInt8, {10, 20, 250, 30}, 2, {2});
  const auto stats = compute_band_stats(r);
  ASSERT_EQ(stats.size(), 2u);
  EXPECT_EQ(stats[0].count, 3u);
  EXPECT_EQ(stats[0].min, 10);
  EXPECT_EQ(stats[0].max, 30);
  EXPECT_DOUBLE_EQ(stats[0].mean(), 20);
  // Population standard deviation, as GDAL's statistics report it.
  EXPECT_NEAR(stats[0].stddev(), std::sqrt(200.0 / 3), 1e-9);
  EXPECT_EQ(total(stats[0].bins), 3u);
  // The second band is its own: same pixels, values +100.
  EXPECT_EQ(stats[1].count, 3u);
  EXPECT_EQ(stats[1].min, 110);
  EXPECT_EQ(stats[1].max, 130);
  EXPECT_DOUBLE_EQ(stats[1].mean(), 120);
}

TEST(BandStats, NoValidPixelsGivesAnEmptyBand) {
  const Raster r = row<uint8_t>(CellType::kUInt8, {1, 2}, 1, {0, 1});
  const auto stats = compute_band_stats(r);
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].count, 0u);
  EXPECT_EQ(stats[0].mean(), 0);
  EXPECT_EQ(stats[0].stddev(), 0);
  EXPECT_EQ(total(stats[0].bins), 0u);
}

TEST(BandStats, IntegerFineBinsAreExactValues) {
  const Raster r = row<int16_t>(CellType::kInt16, {-3, -3, 0, 4, 4, 4}, 1);
  const auto s = compute_band_stats(r)[0];
  EXPECT_EQ(s.min, -3);
  EXPECT_EQ(s.max, 4);
  EXPECT_EQ(s.bin_width, 1);
  ASSERT_EQ(s.bins.size(), 8u);  // -3..4
  EXPECT_EQ(s.bins[0], 2u);      // -3
  EXPECT_EQ(s.bins[3], 1u);      // 0
  EXPECT_EQ(s.bins[7], 3u);      // 4
  EXPECT_EQ(total(s.bins), 6u);
}

TEST(BandStats, FloatMoments) {
  const Raster r = row<float>(CellType::kFloat32, {0.5f, 1.5f, -2.0f, 8.0f}, 1, {3});
  const auto s = compute_band_stats(r)[0];
  EXPECT_EQ(s.count, 3u);
  EXPECT_FLOAT_EQ(s.min, -2.0);
  EXPECT_FLOAT_EQ(s.max, 1.5);
  EXPECT_NEAR(s.mean(), 0.0, 1e-12);
  EXPECT_NEAR(s.stddev(), std::sqrt((0.25 + 2.25 + 4.0) / 3), 1e-9);
  EXPECT_EQ(total(s.bins), 3u);
}

// uint8 values 0..255, each once, split over two partitions.
TEST(MergeBandStats, TwoPartitionsOfUint8GiveOneValuePerBucket) {
  std::vector<uint8_t> low, high;
  for (int v = 0; v < 128; ++v) low.push_back(static_cast<uint8_t>(v));
  for (int v = 128; v < 256; ++v) high.push_back(static_cast<uint8_t>(v));
  const auto a = compute_band_stats(row<uint8_t>(CellType::kUInt8, low))[0];
  const auto b = compute_band_stats(row<uint8_t>(CellType::kUInt8, high))[0];
  Histogram h;
  const BandStats m = merge_band_stats({&a, &b}, 256, &h);
  EXPECT_EQ(m.count, 256u);
  EXPECT_EQ(m.min, 0);
  EXPECT_EQ(m.max, 255);
  EXPECT_DOUBLE_EQ(m.mean(), 127.5);
  EXPECT_NEAR(m.stddev(), std::sqrt((256.0 * 256 - 1) / 12), 1e-9);
  EXPECT_EQ(h.min, 0);
  EXPECT_EQ(h.max, 255);
  ASSERT_EQ(h.buckets.size(), 256u);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(h.buckets[i], 1u) << "bucket " << i;
}

TEST(MergeBandStats, OverlappingRangesLandInTheRightBuckets) {
  // a: 0..199 once each; b: 50..255 twice each.
  std::vector<uint8_t> va, vb;
  for (int v = 0; v < 200; ++v) va.push_back(static_cast<uint8_t>(v));
  for (int v = 50; v < 256; ++v) vb.insert(vb.end(), 2, static_cast<uint8_t>(v));
  const auto a = compute_band_stats(row<uint8_t>(CellType::kUInt8, va))[0];
  const auto b = compute_band_stats(row<uint8_t>(CellType::kUInt8, vb))[0];
  Histogram h;
  const BandStats m = merge_band_stats({&a, &b}, 256, &h);
  EXPECT_EQ(m.count, 200u + 2 * 206);
  ASSERT_EQ(h.buckets.size(), 256u);
  EXPECT_EQ(total(h.buckets), m.count);
  for (int v = 0; v < 256; ++v) {
    const uint64_t want = (v < 200 ? 1 : 0) + (v >= 50 ? 2 : 0);
    EXPECT_EQ(h.buckets[v], want) << "value " << v;
  }
  // Sixteen buckets over 0..255: sixteen values each from a, and so on.
  Histogram coarse;
  merge_band_stats({&a, &b}, 16, &coarse);
  ASSERT_EQ(coarse.buckets.size(), 16u);
  for (int k = 0; k < 16; ++k) {
    uint64_t want = 0;
    for (int v = 16 * k; v < 16 * (k + 1); ++v) want += (v < 200 ? 1 : 0) + (v >= 50 ? 2 : 0);
    EXPECT_EQ(coarse.buckets[k], want) << "bucket " << k;
  }
}

TEST(MergeBandStats, EmptyPartitionsAreIgnored) {
  const auto a = compute_band_stats(row<uint8_t>(CellType::kUInt8, {5, 6, 7}))[0];
  const auto none = compute_band_stats(row<uint8_t>(CellType::kUInt8, {200}, 1, {0}))[0];
  Histogram h;
  const BandStats m = merge_band_stats({&none, &a, &none}, 3, &h);
  EXPECT_EQ(m.count, 3u);
  EXPECT_EQ(m.min, 5);  // 200 was invalid
  EXPECT_EQ(m.max, 7);
  EXPECT_EQ(h.buckets, (std::vector<uint64_t>{1, 1, 1}));
  Histogram empty;
  const BandStats e = merge_band_stats({&none}, 4, &empty);
  EXPECT_EQ(e.count, 0u);
  EXPECT_EQ(empty.buckets, (std::vector<uint64_t>(4, 0)));
}

TEST(MergeBandStats, WideIntegerRangesAreExactToOneFineBin) {
  // uint16 0..65535 once each over two partitions: 256 values per bucket,
  // give or take one fine bin (65535 / 4096 ~ 16 values).
  std::vector<uint16_t> va, vb;
  for (int v = 0; v < 30000; ++v) va.push_back(static_cast<uint16_t>(v));
  for (int v = 30000; v < 65536; ++v) vb.push_back(static_cast<uint16_t>(v));
  const auto a = compute_band_stats(row<uint16_t>(CellType::kUInt16, va))[0];
  const auto b = compute_band_stats(row<uint16_t>(CellType::kUInt16, vb))[0];
  Histogram h;
  const BandStats m = merge_band_stats({&a, &b}, 256, &h);
  EXPECT_EQ(m.count, 65536u);
  EXPECT_EQ(total(h.buckets), 65536u);
  for (int k = 0; k < 256; ++k) EXPECT_NEAR(static_cast<double>(h.buckets[k]), 256, 17) << k;
}

TEST(MergeBandStats, FloatPartitions) {
  // a: 0.000..0.999, b: 1.000..1.999 in steps of 0.001.
  std::vector<double> va, vb;
  for (int i = 0; i < 1000; ++i) {
    va.push_back(i / 1000.0);
    vb.push_back(1 + i / 1000.0);
  }
  const auto a = compute_band_stats(row<double>(CellType::kFloat64, va))[0];
  const auto b = compute_band_stats(row<double>(CellType::kFloat64, vb))[0];
  Histogram h;
  const BandStats m = merge_band_stats({&a, &b}, 4, &h);
  EXPECT_EQ(m.count, 2000u);
  EXPECT_DOUBLE_EQ(m.min, 0);
  EXPECT_DOUBLE_EQ(m.max, 1.999);
  EXPECT_NEAR(m.mean(), 0.9995, 1e-9);
  EXPECT_DOUBLE_EQ(h.min, 0);
  EXPECT_DOUBLE_EQ(h.max, 1.999);
  ASSERT_EQ(h.buckets.size(), 4u);
  // Bucket edges at 0.49975, 0.9995, 1.49925: 500 values each, within a fine bin.
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(static_cast<double>(h.buckets[k]), 500, 2) << k;
  EXPECT_EQ(total(h.buckets), 2000u);
}

// Regression test: a float partition whose valid pixels all
// hold one non-integer value gets bin_width 1 and is merged at min + 0.5
// (band_stats.cc, merge_band_stats: the "centre of a wide bin" offset), so
// its pixels land half a unit too high in the layer histogram.
TEST(MergeBandStats, ConstantFloatPartitionLandsInItsOwnBucket) {
  const auto flat =
      compute_band_stats(row<float>(CellType::kFloat32, std::vector<float>(100, 0.3f)))[0];
  const auto ends = compute_band_stats(row<float>(CellType::kFloat32, {0.0f, 1.0f}))[0];
  Histogram h;
  merge_band_stats({&flat, &ends}, 10, &h);
  ASSERT_EQ(h.buckets.size(), 10u);
  EXPECT_EQ(h.buckets[0], 1u);    // 0.0
  EXPECT_EQ(h.buckets[3], 100u);  // 0.3 is in [0.3, 0.4)
  EXPECT_EQ(h.buckets[9], 1u);    // 1.0 (the top edge belongs to the last bucket)
  EXPECT_EQ(total(h.buckets), 102u);
}

}  // namespace
}  // namespace kiln

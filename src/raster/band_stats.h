// Per-band statistics over valid pixels, computed per partition and merged
// once at the end (so partitions can run anywhere).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "raster/raster.h"

namespace kiln {

struct BandStats {
  // Fine histogram resolution per partition; the merged histogram is rebinned
  // from it once, so bucket counts are exact to within one fine bin.
  static constexpr int kFineBins = 4096;

  uint64_t count = 0;
  double sum = 0;
  double sum_sq = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  // Fine histogram over [min, max]: bin i holds values v with
  // floor((v - min) / bin_width) == i. When integer data spans at most
  // kFineBins values, bin_width is 1 and bins are exact values.
  double bin_width = 1;
  std::vector<uint64_t> bins;

  double mean() const { return count ? sum / count : 0; }
  double stddev() const;
};

// Statistics of every band of `r` over its valid pixels.
std::vector<BandStats> compute_band_stats(const Raster& r);

struct Histogram {
  double min = 0;
  double max = 0;
  std::vector<uint64_t> buckets;
};

// Merges per-partition statistics of one band into one (count, moments,
// min, max) and a histogram of `buckets` equal buckets over [min, max].
BandStats merge_band_stats(const std::vector<const BandStats*>& parts, int buckets,
                           Histogram* histogram);

}  // namespace kiln

#include "raster/band_stats.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace kiln {

double BandStats::stddev() const {
  if (count == 0) return 0;
  double m = mean();
  return std::sqrt(std::max(0.0, sum_sq / count - m * m));
}

std::vector<BandStats> compute_band_stats(const Raster& r) {
  std::vector<BandStats> out(r.bands);
  dispatch_cell_type(r.type, [&]<typename T>() {
    const size_t n = r.pixels();
    for (int b = 0; b < r.bands; ++b) {
      BandStats& s = out[b];
      const T* d = r.band_as<T>(b);
      if constexpr (std::is_same_v<T, uint8_t>) {
        // One pass into a value histogram; every statistic follows from it
        // exactly (sums of at most 2^32 values below 256 fit a double).
        uint64_t counts[256] = {};
        for (size_t i = 0; i < n; ++i) counts[d[i]] += r.mask[i] != 0;
        int lo = 256, hi = -1;
        for (int v = 0; v < 256; ++v) {
          if (!counts[v]) continue;
          lo = std::min(lo, v);
          hi = v;
          s.count += counts[v];
          s.sum += static_cast<double>(counts[v]) * v;
          s.sum_sq += static_cast<double>(counts[v]) * v * v;
        }
        if (s.count == 0) continue;
        s.min = lo;
        s.max = hi;
        s.bin_width = 1;
        s.bins.assign(counts + lo, counts + hi + 1);
        continue;
      }
      for (size_t i = 0; i < n; ++i) {
        if (!r.mask[i]) continue;
        double v = static_cast<double>(d[i]);
        ++s.count;
        s.sum += v;
        s.sum_sq += v * v;
        s.min = std::min(s.min, v);
        s.max = std::max(s.max, v);
      }
      if (s.count == 0) continue;
      const double span = s.max - s.min;
      int nbins = BandStats::kFineBins;
      if (span == 0) {
        s.bin_width = 1;
        nbins = 1;
      } else if (!is_float(r.type) && span + 1 <= BandStats::kFineBins) {
        s.bin_width = 1;
        nbins = static_cast<int>(span) + 1;
      } else {
        s.bin_width = span / BandStats::kFineBins;
      }
      s.bins.assign(nbins, 0);
      for (size_t i = 0; i < n; ++i) {
        if (!r.mask[i]) continue;
        int bin = static_cast<int>((static_cast<double>(d[i]) - s.min) / s.bin_width);
        ++s.bins[std::clamp(bin, 0, nbins - 1)];
      }
    }
  });
  return out;
}

BandStats merge_band_stats(const std::vector<const BandStats*>& parts, int buckets,
                           Histogram* histogram) {
  BandStats m;
  for (const BandStats* p : parts) {
    if (p->count == 0) continue;
    m.count += p->count;
    m.sum += p->sum;
    m.sum_sq += p->sum_sq;
    m.min = std::min(m.min, p->min);
    m.max = std::max(m.max, p->max);
  }
  histogram->buckets.assign(buckets, 0);
  if (m.count == 0) {
    histogram->min = histogram->max = 0;
    return m;
  }
  histogram->min = m.min;
  histogram->max = m.max;
  const double width = (m.max - m.min) / buckets;
  for (const BandStats* p : parts) {
    for (size_t i = 0; i < p->bins.size(); ++i) {
      if (!p->bins[i]) continue;
      // Exact-value bins (integers, or one value) map by their value; wide
      // bins by their centre.
      const bool exact = p->bins.size() == 1 || (p->bin_width == 1 && std::floor(p->min) == p->min);
      double v = p->min + i * p->bin_width + (exact ? 0 : p->bin_width / 2);
      int b = width > 0 ? static_cast<int>((v - m.min) / width) : 0;
      histogram->buckets[std::clamp(b, 0, buckets - 1)] += p->bins[i];
    }
  }
  return m;
}

}  // namespace kiln

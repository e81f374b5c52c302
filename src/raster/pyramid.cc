#include "raster/pyramid.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace kiln {
namespace {

template <typename T>
T cast_nodata(std::optional<double> nodata) {
  if (!nodata) return T{0};
  if constexpr (std::is_floating_point_v<T>) return static_cast<T>(*nodata);
  return std::isnan(*nodata) ? T{0} : static_cast<T>(*nodata);
}

// Insertion sort: the right tool for at most four values (and it keeps GCC
// 12 -O3 from a false -Warray-bounds inside std::sort's introsort).
template <typename T>
void sort_small(T* v, int n) {
  for (int i = 1; i < n; ++i) {
    T x = v[i];
    int j = i - 1;
    while (j >= 0 && x < v[j]) {
      v[j + 1] = v[j];
      --j;
    }
    v[j + 1] = x;
  }
}

template <typename T>
T summarise(T* v, int n, PyramidResample method) {
  assert(n >= 1 && n <= 4);  // the children of one 2x2 block
  switch (method) {
    case PyramidResample::kAverage: {
      if constexpr (std::is_floating_point_v<T>) {
        double s = 0;
        for (int i = 0; i < n; ++i) s += v[i];
        return static_cast<T>(s / n);
      } else {
        if constexpr (sizeof(T) <= 4) {
          // Integer mean rounded half away from zero, in exact integer math.
          int64_t s = 0;
          for (int i = 0; i < n; ++i) s += v[i];
          const int64_t q = (2 * (s < 0 ? -s : s) + n) / (2 * n);
          return static_cast<T>(s < 0 ? -q : q);
        } else {
          // 64-bit values: long double holds the sum of four exactly enough.
          long double s = 0;
          for (int i = 0; i < n; ++i) s += static_cast<long double>(v[i]);
          return static_cast<T>(std::roundl(s / n));
        }
      }
    }
    case PyramidResample::kMin:
      return *std::min_element(v, v + n);
    case PyramidResample::kMax:
      return *std::max_element(v, v + n);
    case PyramidResample::kMedian:
      sort_small(v, n);
      return v[(n - 1) / 2];
    case PyramidResample::kMode: {
      sort_small(v, n);
      T best = v[0];
      int best_count = 0;
      for (int i = 0; i < n;) {
        int j = i;
        while (j < n && v[j] == v[i]) ++j;
        if (j - i > best_count) {
          best_count = j - i;
          best = v[i];
        }
        i = j;
      }
      return best;
    }
    case PyramidResample::kNearest:
      return v[0];
  }
  return v[0];
}

template <typename T>
void downsample_typed(const Raster& src, PyramidResample method, std::optional<double> nodata,
                      Raster* dst) {
  const size_t sw = src.width;
  const int dw = dst->width, dh = dst->height;
  const T fill = cast_nodata<T>(nodata);
  for (int b = 0; b < src.bands; ++b) {
    const T* s = src.band_as<T>(b);
    T* d = dst->band_as<T>(b);
    for (int y = 0; y < dh; ++y) {
      const T* r0 = s + 2 * y * sw;
      const T* r1 = r0 + sw;
      const uint8_t* m0 = src.mask.data() + 2 * y * sw;
      const uint8_t* m1 = m0 + sw;
      T* out = d + static_cast<size_t>(y) * dw;
      for (int x = 0; x < dw; ++x) {
        const int n4 =
            (m0[2 * x] != 0) + (m0[2 * x + 1] != 0) + (m1[2 * x] != 0) + (m1[2 * x + 1] != 0);
        if (n4 == 0) {
          out[x] = fill;
          continue;
        }
        if (n4 == 4 && method == PyramidResample::kAverage) {
          // The common case, kept branch-light: four valid children.
          if constexpr (std::is_floating_point_v<T>) {
            out[x] = static_cast<T>(
                (static_cast<double>(r0[2 * x]) + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]) / 4);
          } else if constexpr (sizeof(T) <= 4) {
            const int64_t sum =
                static_cast<int64_t>(r0[2 * x]) + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1];
            const int64_t q = ((sum < 0 ? -sum : sum) + 2) / 4;
            out[x] = static_cast<T>(sum < 0 ? -q : q);
          } else {
            T v[4] = {r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]};
            out[x] = summarise(v, 4, method);
          }
          continue;
        }
        T v[4];
        int n = 0;
        if (m0[2 * x]) v[n++] = r0[2 * x];
        if (m0[2 * x + 1]) v[n++] = r0[2 * x + 1];
        if (m1[2 * x]) v[n++] = r1[2 * x];
        if (m1[2 * x + 1]) v[n++] = r1[2 * x + 1];
        out[x] = summarise(v, n, method);
      }
    }
  }
  for (int y = 0; y < dh; ++y) {
    const uint8_t* m0 = src.mask.data() + 2 * y * sw;
    const uint8_t* m1 = m0 + sw;
    uint8_t* out = dst->mask.data() + static_cast<size_t>(y) * dw;
    for (int x = 0; x < dw; ++x) {
      out[x] = (m0[2 * x] | m0[2 * x + 1] | m1[2 * x] | m1[2 * x + 1]) ? 255 : 0;
    }
  }
}

}  // namespace

Raster downsample_2x(const Raster& src, PyramidResample method, std::optional<double> nodata) {
  assert(src.width % 2 == 0 && src.height % 2 == 0);
  Raster dst(src.width / 2, src.height / 2, src.bands, src.type);
  dispatch_cell_type(src.type,
                     [&]<typename T>() { downsample_typed<T>(src, method, nodata, &dst); });
  return dst;
}

Raster crop(const Raster& src, int x0, int y0, int w, int h) {
  Raster out(w, h, src.bands, src.type);
  const size_t cb = cell_bytes(src.type);
  for (int b = 0; b < src.bands; ++b) {
    const uint8_t* s = src.band_data(b);
    uint8_t* d = out.band_data(b);
    for (int y = 0; y < h; ++y) {
      std::memcpy(d + static_cast<size_t>(y) * w * cb,
                  s + (static_cast<size_t>(y0 + y) * src.width + x0) * cb, w * cb);
    }
  }
  for (int y = 0; y < h; ++y) {
    std::memcpy(out.mask.data() + static_cast<size_t>(y) * w,
                src.mask.data() + static_cast<size_t>(y0 + y) * src.width + x0, w);
  }
  return out;
}

void paste(const Raster& tile, int x0, int y0, Raster* dst) {
  assert(tile.bands == dst->bands && tile.type == dst->type);
  const size_t cb = cell_bytes(tile.type);
  for (int b = 0; b < tile.bands; ++b) {
    const uint8_t* s = tile.band_data(b);
    uint8_t* d = dst->band_data(b);
    for (int y = 0; y < tile.height; ++y) {
      std::memcpy(d + (static_cast<size_t>(y0 + y) * dst->width + x0) * cb,
                  s + static_cast<size_t>(y) * tile.width * cb, tile.width * cb);
    }
  }
  for (int y = 0; y < tile.height; ++y) {
    std::memcpy(dst->mask.data() + static_cast<size_t>(y0 + y) * dst->width + x0,
                tile.mask.data() + static_cast<size_t>(y) * tile.width, tile.width);
  }
}

void fill_invalid(Raster* r, std::optional<double> nodata) {
  if (r->all_valid()) return;
  dispatch_cell_type(r->type, [&]<typename T>() {
    const T fill = cast_nodata<T>(nodata);
    const size_t n = r->pixels();
    for (int b = 0; b < r->bands; ++b) {
      T* d = r->band_as<T>(b);
      for (size_t i = 0; i < n; ++i)
        if (!r->mask[i]) d[i] = fill;
    }
  });
}

}  // namespace kiln

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

template <typename T>
T summarise(T* v, int n, PyramidResample method) {
  // At most the four children of a 2x2 block; telling the compiler keeps
  // GCC 12 -O3 from a false -Warray-bounds on the sorts below.
  if (n < 1 || n > 4) __builtin_unreachable();
  switch (method) {
    case PyramidResample::kAverage: {
      if constexpr (std::is_floating_point_v<T>) {
        double s = 0;
        for (int i = 0; i < n; ++i) s += v[i];
        return static_cast<T>(s / n);
      } else {
        // Integer mean rounded half away from zero; long double holds the
        // sum of four 64-bit values exactly enough.
        long double s = 0;
        for (int i = 0; i < n; ++i) s += static_cast<long double>(v[i]);
        return static_cast<T>(std::roundl(s / n));
      }
    }
    case PyramidResample::kMin:
      return *std::min_element(v, v + n);
    case PyramidResample::kMax:
      return *std::max_element(v, v + n);
    case PyramidResample::kMedian:
      std::sort(v, v + n);
      return v[(n - 1) / 2];
    case PyramidResample::kMode: {
      std::sort(v, v + n);
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
  const int sw = src.width, dw = dst->width, dh = dst->height;
  const T fill = cast_nodata<T>(nodata);
  for (int y = 0; y < dh; ++y) {
    for (int x = 0; x < dw; ++x) {
      const size_t idx[4] = {static_cast<size_t>(2 * y) * sw + 2 * x,
                             static_cast<size_t>(2 * y) * sw + 2 * x + 1,
                             static_cast<size_t>(2 * y + 1) * sw + 2 * x,
                             static_cast<size_t>(2 * y + 1) * sw + 2 * x + 1};
      int valid[4];
      int n = 0;
      for (int k = 0; k < 4; ++k)
        if (src.mask[idx[k]]) valid[n++] = k;
      const size_t o = static_cast<size_t>(y) * dw + x;
      dst->mask[o] = n ? 255 : 0;
      for (int b = 0; b < src.bands; ++b) {
        const T* s = src.band_as<T>(b);
        T* d = dst->band_as<T>(b);
        if (n == 0) {
          d[o] = fill;
          continue;
        }
        if (n == 4 && method == PyramidResample::kAverage) {
          if constexpr (std::is_floating_point_v<T>) {
            d[o] = static_cast<T>(
                (static_cast<double>(s[idx[0]]) + s[idx[1]] + s[idx[2]] + s[idx[3]]) / 4);
            continue;
          }
        }
        T v[4];
        for (int k = 0; k < n; ++k) v[k] = s[idx[valid[k]]];
        d[o] = summarise(v, n, method);
      }
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

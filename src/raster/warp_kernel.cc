#include "raster/warp_kernel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace kiln {
namespace {

inline double triangle(double x) {
  const double a = std::fabs(x);
  return a <= 1.0 ? 1.0 - a : 0.0;
}

// Keys' cubic convolution with a = -0.5 (Catmull-Rom).
inline double keys_cubic(double x) {
  const double a = std::fabs(x);
  const double x2 = x * x;
  if (a <= 1.0) return x2 * (1.5 * a - 2.5) + 1.0;
  if (a <= 2.0) return x2 * (-0.5 * a + 2.5) - 4.0 * a + 2.0;
  return 0.0;
}

inline double lanczos3(double x) {
  if (x == 0.0) return 1.0;
  if (std::fabs(x) >= 3.0) return 0.0;
  const double px = M_PI * x;
  const double px3 = px / 3.0;
  return std::sin(px) * std::sin(px3) / (px * px3);
}

template <WarpResample M>
inline double weight(double x) {
  if constexpr (M == WarpResample::kBilinear) {
    return triangle(x);
  } else if constexpr (M == WarpResample::kCubic) {
    return keys_cubic(x);
  } else {
    return lanczos3(x);
  }
}

// Weights of the taps `lo..hi` (relative to the tap left of the centre)
// for a centre `delta` past that tap, stretched by `scale`.
template <WarpResample M>
inline void tap_weights(int lo, int hi, double delta, double scale, double* w) {
  for (int i = lo; i <= hi; ++i) w[i - lo] = weight<M>((i - delta) * scale);
}

// Whether the 4x4 taps of an unstretched cubic at (px, py) are all on the
// source and valid (`mask` may be null: all valid).
inline bool all_taps_valid(const uint8_t* mask, int W, int H, double px, double py) {
  const int ix = static_cast<int>(px - 0.5), iy = static_cast<int>(py - 0.5);
  if (ix - 1 < 0 || ix + 2 >= W || iy - 1 < 0 || iy + 2 >= H) return false;
  if (!mask) return true;
  for (int j = -1; j <= 2; ++j) {
    const uint8_t* m = mask + static_cast<size_t>(iy + j) * W + ix - 1;
    if (!m[0] || !m[1] || !m[2] || !m[3]) return false;
  }
  return true;
}

// Bilinear over the valid ones of the 2x2 pixels around (px, py), as
// gdalwarp's four-sample bilinear; writes every band of output pixel i.
template <typename S>
void bilinear_fallback(const Raster& src, const uint8_t* mask, double px, double py, size_t n,
                       int i, double* out) {
  const int W = src.width, H = src.height;
  const int ix = static_cast<int>(std::floor(px - 0.5));
  const int iy = static_cast<int>(std::floor(py - 0.5));
  const double dx = px - 0.5 - ix, dy = py - 0.5 - iy;
  const double wxs[2] = {1.0 - dx, dx}, wys[2] = {1.0 - dy, dy};
  for (int b = 0; b < src.bands; ++b) {
    const S* p = src.band_as<S>(b);
    double acc = 0, wsum = 0;
    for (int j = 0; j < 2; ++j) {
      const int y = iy + j;
      if (y < 0 || y >= H) continue;
      for (int t = 0; t < 2; ++t) {
        const int x = ix + t;
        if (x < 0 || x >= W) continue;
        const size_t k = static_cast<size_t>(y) * W + x;
        if (mask && !mask[k]) continue;
        const double w = wxs[t] * wys[j];
        acc += static_cast<double>(p[k]) * w;
        wsum += w;
      }
    }
    out[static_cast<size_t>(b) * n + i] = wsum == 1.0 || wsum < 1e-5 ? acc : acc / wsum;
  }
}

// All NB bands of one output pixel with every tap valid: per band, the sum
// over rows of (the row's weighted sum) x (the row's weight), divided by
// `norm` -- GDAL's order of operations, so results match it bit for bit --
// with the bands interleaved in one pass over the taps. `p` points at band
// 0's first tap; band b's is band_px further each. Writes out[b * stride].
template <typename S, int NB>
inline void accumulate(const S* p, size_t band_px, int W, const double* wx, int nx,
                       const double* wy, int ny, double norm, double* out, size_t stride) {
  double acc[NB] = {};
  for (int j = 0; j < ny; ++j, p += W) {
    double r[NB] = {};
    for (int t = 0; t < nx; ++t) {
      const double w = wx[t];
      for (int b = 0; b < NB; ++b) r[b] += static_cast<double>(p[b * band_px + t]) * w;
    }
    for (int b = 0; b < NB; ++b) acc[b] += r[b] * wy[j];
  }
  for (int b = 0; b < NB; ++b) out[b * stride] = acc[b] / norm;
}

template <typename S, WarpResample M>
void resample_row_t(const WarpKernel& k, const Raster& src, bool all_valid, const SampleRow& row,
                    double* out, size_t n, uint8_t* out_mask) {
  const int W = src.width, H = src.height;
  const size_t band_px = src.pixels();
  const S* base = src.band_as<S>(0);
  const uint8_t* mask = all_valid ? nullptr : src.mask.data();
  const int bands = src.bands;
  const int rx = k.radius_x(), ry = k.radius_y();
  const double sx = k.scale_x(), sy = k.scale_y();
  thread_local std::vector<double> wx, wy;
  wx.resize(2 * rx + 2);
  wy.resize(2 * ry + 2);

  std::fill(out_mask, out_mask + row.count, uint8_t{0});
  for (int i = 0; i < row.count; ++i) {
    if (!row.ok[i]) continue;
    const double px = row.x[i], py = row.y[i];
    // NaN fails these comparisons too.
    if (!(px >= 0.0) || !(py >= 0.0) || px + 1e-10 > W || py + 1e-10 > H) continue;
    const int cx = std::min(static_cast<int>(px + 1e-10), W - 1);
    const int cy = std::min(static_cast<int>(py + 1e-10), H - 1);
    const size_t centre = static_cast<size_t>(cy) * W + cx;
    if (mask && !mask[centre]) continue;

    if constexpr (M == WarpResample::kNearest) {
      for (int b = 0; b < bands; ++b)
        out[static_cast<size_t>(b) * n + i] = base[b * band_px + centre];
      out_mask[i] = 255;
      continue;
    } else {
      if (W == 1 || H == 1) {  // no neighbourhood to filter (GDAL does the same)
        for (int b = 0; b < bands; ++b)
          out[static_cast<size_t>(b) * n + i] = base[b * band_px + centre];
        out_mask[i] = 255;
        continue;
      }
      const int ix = static_cast<int>(std::floor(px - 0.5));
      const int iy = static_cast<int>(std::floor(py - 0.5));
      const double dx = px - 0.5 - ix, dy = py - 0.5 - iy;
      int a0 = std::max(1 - rx, -ix), a1 = std::min(rx, W - 1 - ix);
      int b0 = std::max(1 - ry, -iy), b1 = std::min(ry, H - 1 - iy);
      tap_weights<M>(a0, a1, dx, sx, wx.data());
      tap_weights<M>(b0, b1, dy, sy, wy.data());
      // The stretched support rarely fills its whole tap range: skip the
      // taps at either end that weigh nothing (same sums, fewer reads).
      const double* wxp = wx.data();
      const double* wyp = wy.data();
      while (a0 < a1 && wxp[0] == 0.0) ++a0, ++wxp;
      while (a1 > a0 && wxp[a1 - a0] == 0.0) --a1;
      while (b0 < b1 && wyp[0] == 0.0) ++b0, ++wyp;
      while (b1 > b0 && wyp[b1 - b0] == 0.0) --b1;
      const int nx = a1 - a0 + 1, ny = b1 - b0 + 1;
      const size_t first = static_cast<size_t>(iy + b0) * W + (ix + a0);

      if constexpr (M == WarpResample::kCubic) {
        if (!mask && sx == 1.0 && sy == 1.0 && !all_taps_valid(nullptr, W, H, px, py)) {
          bilinear_fallback<S>(src, nullptr, px, py, n, i, out);
          out_mask[i] = 255;
          continue;
        }
      }
      if (!mask) {
        double sum_x = 0, sum_y = 0;
        for (int t = 0; t < nx; ++t) sum_x += wxp[t];
        for (int t = 0; t < ny; ++t) sum_y += wyp[t];
        const double norm = sum_x * sum_y;
        if (std::fabs(norm) < 1e-6) continue;
        switch (bands) {
          case 1:
            accumulate<S, 1>(base + first, band_px, W, wxp, nx, wyp, ny, norm, out + i, n);
            break;
          case 3:
            accumulate<S, 3>(base + first, band_px, W, wxp, nx, wyp, ny, norm, out + i, n);
            break;
          case 4:
            accumulate<S, 4>(base + first, band_px, W, wxp, nx, wyp, ny, norm, out + i, n);
            break;
          default:
            for (int b = 0; b < bands; ++b) {
              accumulate<S, 1>(base + b * band_px + first, band_px, W, wxp, nx, wyp, ny, norm,
                               out + static_cast<size_t>(b) * n + i, n);
            }
        }
        out_mask[i] = 255;
        continue;
      }

      if constexpr (M == WarpResample::kCubic) {
        // gdalwarp's cubic at scale 1 needs all 16 taps on the source and
        // valid, and falls back to bilinear otherwise; do the same so the
        // scene's edges come out as gdalwarp's do.
        if (sx == 1.0 && sy == 1.0 && !all_taps_valid(mask, W, H, px, py)) {
          bilinear_fallback<S>(src, mask, px, py, n, i, out);
          out_mask[i] = 255;
          continue;
        }
      }

      // Some taps may be invalid: weigh only the valid ones.
      double wsum = 0;
      {
        const uint8_t* m = mask + first;
        for (int j = 0; j < ny; ++j, m += W) {
          double r = 0;
          for (int t = 0; t < nx; ++t)
            if (m[t]) r += wxp[t];
          wsum += r * wyp[j];
        }
      }
      if (wsum < 1e-6) continue;
      const bool renorm = wsum < 0.99999 || wsum > 1.00001;
      for (int b = 0; b < bands; ++b) {
        const S* p = base + b * band_px + first;
        const uint8_t* m = mask + first;
        double acc = 0;
        for (int j = 0; j < ny; ++j, p += W, m += W) {
          double racc = 0;
          for (int t = 0; t < nx; ++t)
            if (m[t]) racc += static_cast<double>(p[t]) * wxp[t];
          acc += racc * wyp[j];
        }
        out[static_cast<size_t>(b) * n + i] = renorm ? acc / wsum : acc;
      }
      out_mask[i] = 255;
    }
  }
}

template <typename S>
void resample_row_dispatch(const WarpKernel& k, const Raster& src, bool all_valid,
                           const SampleRow& row, double* out, size_t n, uint8_t* out_mask) {
  switch (k.method()) {
    case WarpResample::kNearest:
      return resample_row_t<S, WarpResample::kNearest>(k, src, all_valid, row, out, n, out_mask);
    case WarpResample::kBilinear:
      return resample_row_t<S, WarpResample::kBilinear>(k, src, all_valid, row, out, n, out_mask);
    case WarpResample::kCubic:
      return resample_row_t<S, WarpResample::kCubic>(k, src, all_valid, row, out, n, out_mask);
    case WarpResample::kLanczos:
      return resample_row_t<S, WarpResample::kLanczos>(k, src, all_valid, row, out, n, out_mask);
  }
}

template <typename T>
T to_cell(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    // Bounds as doubles: the 64-bit limits round up, so compare with >=.
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
    constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
    if (!(v > lo)) return std::numeric_limits<T>::min();  // NaN lands here too
    if (v >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(std::floor(v + 0.5));
  }
}

}  // namespace

double warp_kernel_scale(int dst_size, double src_span) {
  if (!(src_span > 0) || dst_size <= 0) return 1.0;
  double s = dst_size / src_span;
  if (s >= 1.0) return 1.0;
  const double r = 1.0 / s;
  const double n = std::floor(r + 0.5);
  if (std::fabs(r - n) < 0.05) s = 1.0 / n;
  return s;
}

WarpKernel::WarpKernel(WarpResample method, double scale_x, double scale_y) : method_(method) {
  scale_x_ = std::min(scale_x, 1.0);
  scale_y_ = std::min(scale_y, 1.0);
  // GDAL filters bilinear and cubic at scale 1 unless both axes are
  // noticeably coarser (its four-sample formulas).
  if ((method == WarpResample::kBilinear || method == WarpResample::kCubic) && scale_x_ >= 0.95 &&
      scale_y_ >= 0.95) {
    scale_x_ = scale_y_ = 1.0;
  }
  const int r = warp_filter_radius(method);
  radius_x_ = scale_x_ < 1.0 ? static_cast<int>(std::ceil(r / scale_x_)) : r;
  radius_y_ = scale_y_ < 1.0 ? static_cast<int>(std::ceil(r / scale_y_)) : r;
}

void WarpKernel::resample_row(const Raster& src, bool src_all_valid, const SampleRow& row,
                              double* out, size_t band_stride, uint8_t* out_mask) const {
  dispatch_cell_type(src.type, [&]<typename S>() {
    resample_row_dispatch<S>(*this, src, src_all_valid, row, out, band_stride, out_mask);
  });
}

void store_row(const double* values, int n, const uint8_t* valid, CellType type, void* dst) {
  dispatch_cell_type(type, [&]<typename T>() {
    T* d = static_cast<T*>(dst);
    for (int i = 0; i < n; ++i) d[i] = valid[i] ? to_cell<T>(values[i]) : T{0};
  });
}

}  // namespace kiln

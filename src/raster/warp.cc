#include "raster/warp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <gdal_alg.h>

#include "raster/resample.h"
#include "raster/warp_kernel.h"

namespace kiln {

struct WarpSource::Impl {
  DatasetPtr ds;           // the real source
  TransformerPtr genimg;   // georeferenced layer coords <-> source pixels
  void* approx = nullptr;  // approximate (region pixel -> source pixel)
  WarpOptions options;
  const SourceInfo* info = nullptr;
  // Current region and window; set per warp() call.
  std::array<double, 6> region_gt{};
  double win_x0 = 0, win_y0 = 0;
  double factor_x = 1, factor_y = 1;  // source pixels per window pixel
  double wrap_px = 0;                 // 360 degrees in source pixels, for lon/lat sources
  bool exact_only = false;            // bypass the approximation for one call
  Raster window;                      // the decoded source window, reused
  std::vector<double> px, py, pz, values;
  std::vector<int> pok;

  ~Impl() {
    if (approx) GDALDestroyApproxTransformer(approx);
  }

  // The filter stretch for the block [x0, x0+w) x [y0, y0+h) of region
  // pixels: its size over the span of window pixels a 21x21 grid of its
  // points maps to (see warp_kernel_scale); 1 where nothing maps.
  std::pair<double, double> block_scale(int x0, int y0, int w, int h) {
    constexpr int kSteps = 20;
    double xs[kSteps + 1], ys[kSteps + 1], zs[kSteps + 1];
    int ok[kSteps + 1];
    double min_x = HUGE_VAL, min_y = HUGE_VAL, max_x = -HUGE_VAL, max_y = -HUGE_VAL;
    for (int j = 0; j <= kSteps; ++j) {
      for (int i = 0; i <= kSteps; ++i) {
        xs[i] = x0 + w * static_cast<double>(i) / kSteps;
        ys[i] = y0 + h * static_cast<double>(j) / kSteps;
        zs[i] = 0;
      }
      outer(this, TRUE, kSteps + 1, xs, ys, zs, ok);
      for (int i = 0; i <= kSteps; ++i) {
        if (!ok[i] || !std::isfinite(xs[i]) || !std::isfinite(ys[i])) continue;
        min_x = std::min(min_x, xs[i]);
        max_x = std::max(max_x, xs[i]);
        min_y = std::min(min_y, ys[i]);
        max_y = std::max(max_y, ys[i]);
      }
    }
    if (!(max_x >= min_x)) return {1.0, 1.0};
    return {warp_kernel_scale(w, max_x - min_x), warp_kernel_scale(h, max_y - min_y)};
  }

  // Region pixel <-> full-source pixel, exact.
  static int exact(void* arg, int dst_to_src, int n, double* x, double* y, double* z, int* ok) {
    auto* self = static_cast<Impl*>(arg);
    const auto& g = self->region_gt;
    if (dst_to_src) {
      for (int i = 0; i < n; ++i) {
        double px = x[i], py = y[i];
        x[i] = g[0] + px * g[1] + py * g[2];
        y[i] = g[3] + px * g[4] + py * g[5];
      }
      return GDALGenImgProjTransform(self->genimg.get(), TRUE, n, x, y, z, ok);
    }
    int r = GDALGenImgProjTransform(self->genimg.get(), FALSE, n, x, y, z, ok);
    for (int i = 0; i < n; ++i) {  // region grids are north-up
      x[i] = (x[i] - g[0]) / g[1];
      y[i] = (y[i] - g[3]) / g[5];
    }
    return r;
  }

  // What GDAL's warp kernel calls: region pixel <-> window pixel.
  static int outer(void* arg, int dst_to_src, int n, double* x, double* y, double* z, int* ok) {
    auto* self = static_cast<Impl*>(arg);
    if (!dst_to_src) {
      for (int i = 0; i < n; ++i) {
        x[i] = x[i] * self->factor_x + self->win_x0;
        y[i] = y[i] * self->factor_y + self->win_y0;
      }
    }
    int r = self->approx && !self->exact_only
                ? GDALApproxTransform(self->approx, dst_to_src, n, x, y, z, ok)
                : exact(arg, dst_to_src, n, x, y, z, ok);
    if (dst_to_src) {
      const double w = self->info->width;
      for (int i = 0; i < n; ++i) {
        if (self->wrap_px != 0 && ok[i]) {
          // A lon/lat source stored as 0..360 or across the antimeridian: the
          // same place may be 360 degrees away in its own longitudes.
          if (x[i] < 0 && x[i] + self->wrap_px <= w)
            x[i] += self->wrap_px;
          else if (x[i] > w && x[i] - self->wrap_px >= 0)
            x[i] -= self->wrap_px;
        }
        x[i] = (x[i] - self->win_x0) / self->factor_x;
        y[i] = (y[i] - self->win_y0) / self->factor_y;
      }
    }
    return r;
  }
};

Result<SourceTransform> source_to_crs(const SourceInfo& info, const std::string& dst_crs_wkt) {
  SourceTransform st;
  st.proxy = create_mem_dataset(info.width, info.height, 0, GDT_Byte);
  double gt[6];
  for (int i = 0; i < 6; ++i) gt[i] = info.geotransform[i];
  st.proxy->SetGeoTransform(gt);
  std::vector<std::string> opt_store;
  if (!info.crs_wkt.empty() && !dst_crs_wkt.empty()) {
    opt_store.push_back("SRC_SRS=" + info.crs_wkt);
    opt_store.push_back("DST_SRS=" + dst_crs_wkt);
  }
  std::vector<char*> opts;
  for (auto& s : opt_store) opts.push_back(s.data());
  opts.push_back(nullptr);
  clear_gdal_error();
  st.transformer.reset(GDALCreateGenImgProjTransformer2(GDALDataset::ToHandle(st.proxy.get()),
                                                        nullptr, opts.data()));
  if (!st.transformer) {
    return input_error("source '" + info.uri + "': cannot transform its coordinates into the " +
                       "layer CRS: " + last_gdal_error());
  }
  return st;
}

Result<std::unique_ptr<WarpSource>> WarpSource::open(const SourceInfo& info,
                                                     const std::string& layer_crs_wkt,
                                                     const WarpOptions& options) {
  std::unique_ptr<WarpSource> ws(new WarpSource());
  ws->info_ = info;
  ws->impl_ = std::make_unique<Impl>();
  Impl& im = *ws->impl_;
  im.options = options;
  im.info = &ws->info_;
  KILN_ASSIGN_OR_RETURN(im.ds, open_raster(info.uri));

  KILN_ASSIGN_OR_RETURN(SourceTransform st, source_to_crs(info, layer_crs_wkt));
  im.genimg = std::move(st.transformer);
  if (options.error_threshold > 0) {
    im.approx = GDALCreateApproxTransformer(&Impl::exact, &im, options.error_threshold);
  }
  if (info.geographic && info.north_up() && info.geotransform[1] > 0) {
    im.wrap_px = 360.0 / info.geotransform[1];
  }
  return ws;
}

WarpSource::~WarpSource() = default;

Result<bool> WarpSource::warp(const Region& region, CellType type, Raster* out) {
  Impl& im = *impl_;
  last_read_bytes_ = 0;
  im.region_gt = region.geotransform;
  im.win_x0 = 0;
  im.win_y0 = 0;
  im.factor_x = im.factor_y = 1;

  // 1. The source window the region needs: sample a grid of region points.
  constexpr int kSamples = 21;
  std::vector<double> xs, ys, zs;
  for (int j = 0; j < kSamples; ++j) {
    for (int i = 0; i < kSamples; ++i) {
      xs.push_back(region.width * static_cast<double>(i) / (kSamples - 1));
      ys.push_back(region.height * static_cast<double>(j) / (kSamples - 1));
    }
  }
  zs.assign(xs.size(), 0);
  std::vector<int> ok(xs.size(), 0);
  Impl::exact(&im, TRUE, static_cast<int>(xs.size()), xs.data(), ys.data(), zs.data(), ok.data());
  double min_x = std::numeric_limits<double>::infinity(), min_y = min_x;
  double max_x = -min_x, max_y = -min_x;
  const double W = info_.width, H = info_.height;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!ok[i] || !std::isfinite(xs[i]) || !std::isfinite(ys[i])) continue;
    double x = xs[i];
    if (im.wrap_px != 0) {
      if (x < 0 && x + im.wrap_px <= W)
        x += im.wrap_px;
      else if (x > W && x - im.wrap_px >= 0)
        x -= im.wrap_px;
    }
    min_x = std::min(min_x, x);
    max_x = std::max(max_x, x);
    min_y = std::min(min_y, ys[i]);
    max_y = std::max(max_y, ys[i]);
  }
  if (!(max_x >= min_x)) return false;
  // Samples every 1/20 of the region may miss a curved edge by a little:
  // widen by one sample step, plus the kernel reach at this scale.
  double scale = std::max((max_x - min_x) / region.width, (max_y - min_y) / region.height);
  double margin = warp_filter_radius(im.options.resample) * std::max(1.0, scale) + 2 +
                  std::max(max_x - min_x, max_y - min_y) / (kSamples - 1);
  int x0 = static_cast<int>(std::max(0.0, std::floor(min_x - margin)));
  int y0 = static_cast<int>(std::max(0.0, std::floor(min_y - margin)));
  int x1 = static_cast<int>(std::min(W, std::ceil(max_x + margin)));
  int y1 = static_cast<int>(std::min(H, std::ceil(max_y + margin)));
  if (x1 <= x0 || y1 <= y0) return false;

  // 2. Decode the window once, decimated if it is far larger than needed.
  int factor = 1;
  while (static_cast<int64_t>((x1 - x0) / factor) * ((y1 - y0) / factor) >
             im.options.max_window_pixels &&
         factor * 2 <= scale) {
    factor *= 2;
  }
  Raster& src = im.window;
  GDALRIOResampleAlg dalg =
      im.options.resample == WarpResample::kNearest ? GRIORA_NearestNeighbour : GRIORA_Average;
  KILN_RETURN_IF_ERROR(
      read_window(im.ds.get(), info_, x0, y0, x1 - x0, y1 - y0, factor, dalg, &src));
  last_read_bytes_ = src.data.size();
  if (!src.any_valid()) return false;
  im.win_x0 = x0;
  im.win_y0 = y0;
  // The decimated window's exact scale on each axis (sizes are rounded).
  im.factor_x = static_cast<double>(x1 - x0) / src.width;
  im.factor_y = static_cast<double>(y1 - y0) / src.height;

  // 3. Resample with Kiln's kernel (warp_kernel.h), stretched per tile (a
  // transform_span square) by the tile's size over the span of window pixels
  // it covers, as GDAL does per warp chunk. Per tile rather than per region,
  // because the scale can change a lot across a region (near a pole, far
  // from a projection's centre).
  const bool all_valid = src.all_valid();
  const int nb = src.bands, n = region.width;
  Raster& dst = *out;
  dst.reset(region.width, region.height, nb, type, /*zero=*/false);  // every pixel is written
  std::vector<double>&px = im.px, &py = im.py, &pz = im.pz, &values = im.values;
  std::vector<int>& pok = im.pok;
  px.resize(n);
  py.resize(n);
  pz.resize(n);
  pok.resize(n);
  values.resize(static_cast<size_t>(n) * nb);
  const size_t cell = cell_bytes(type);
  const int span = im.options.transform_span > 0 ? im.options.transform_span : n;
  const int blocks = (n + span - 1) / span;
  std::vector<WarpKernel> kernels;
  for (int row = 0; row < region.height; ++row) {
    if (row % span == 0) {
      kernels.clear();
      for (int bx = 0; bx < blocks; ++bx) {
        const int w = std::min(span, n - bx * span), h = std::min(span, region.height - row);
        const auto [kx, ky] = im.block_scale(bx * span, row, w, h);
        kernels.emplace_back(im.options.resample, kx, ky);
      }
      last_kernel_scale_ = {kernels[0].scale_x(), kernels[0].scale_y()};
    }
    for (int i = 0; i < n; ++i) {
      px[i] = i + 0.5;
      py[i] = row + 0.5;
      pz[i] = 0;
    }
    for (int s0 = 0; s0 < n; s0 += span) {
      Impl::outer(&im, TRUE, std::min(span, n - s0), &px[s0], &py[s0], &pz[s0], &pok[s0]);
    }
    // A point the approximation puts just off the window is transformed
    // again exactly, as GDAL's kernel does, so the edge of the scene lands
    // where gdalwarp puts it.
    for (int i = 0; i < n; ++i) {
      const bool near_x = (px[i] < 0 && px[i] > -1) || (px[i] > src.width && px[i] < src.width + 1);
      const bool near_y =
          (py[i] < 0 && py[i] > -1) || (py[i] > src.height && py[i] < src.height + 1);
      if (pok[i] && im.approx && (near_x || near_y)) {
        px[i] = i + 0.5;
        py[i] = row + 0.5;
        pz[i] = 0;
        im.exact_only = true;
        Impl::outer(&im, TRUE, 1, &px[i], &py[i], &pz[i], &pok[i]);
        im.exact_only = false;
      }
    }
    uint8_t* mrow = dst.mask.data() + static_cast<size_t>(row) * n;
    for (int bx = 0; bx < blocks; ++bx) {
      const int s0 = bx * span, w = std::min(span, n - s0);
      kernels[bx].resample_row(src, all_valid, SampleRow{w, &px[s0], &py[s0], &pok[s0]},
                               &values[s0], n, &mrow[s0]);
    }
    for (int b = 0; b < nb; ++b) {
      store_row(values.data() + static_cast<size_t>(b) * n, n, mrow, type,
                dst.band_data(b) + static_cast<size_t>(row) * n * cell);
    }
  }
  return true;
}

}  // namespace kiln

#include "render/render.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "raster/png_encoder.h"
#include "raster/webp_encoder.h"
#include "render/colormap.h"

namespace kiln::render {
namespace {

// WGS 84 semi-major axis: the sphere Web Mercator projects onto (EPSG:3857).
constexpr double kEarthRadius = 6378137.0;

// Copies band `b` of `tile` into doubles and clears `valid` where the band
// holds nodata or NaN.
void read_band(const Raster& tile, int b, std::optional<double> nodata, std::vector<double>* out,
               std::vector<uint8_t>* valid) {
  const size_t n = tile.pixels();
  out->resize(n);
  double* o = out->data();
  uint8_t* m = valid->data();
  dispatch_cell_type(tile.type, [&]<typename T>() {
    const T* d = tile.band_as<T>(b);
    for (size_t i = 0; i < n; ++i) o[i] = static_cast<double>(d[i]);
  });
  if (nodata) {
    const double nd = *nodata;
    for (size_t i = 0; i < n; ++i) m[i] &= (o[i] != nd) ? 0xff : 0;
  }
  if (is_float(tile.type)) {
    for (size_t i = 0; i < n; ++i) m[i] &= std::isnan(o[i]) ? 0 : 0xff;
  }
}

void rescale_band(const std::vector<double>& in, const Range& r, uint8_t* out) {
  const double lo = r.min;
  const double span = r.max - r.min;
  const size_t n = in.size();
  for (size_t i = 0; i < n; ++i) {
    // rescale_value()'s arithmetic; clamping before truncating equals
    // clamping floor() (the value is >= 0 by then) and, unlike floor(),
    // vectorises without SSE4.1. NaN fails both tests and lands on 0 (it
    // is transparent anyway).
    const double y = (in[i] - lo) * 255.0 / span + 0.5;
    const double x = y > 0 ? (y < 255 ? y : 255) : 0;
    out[i] = static_cast<uint8_t>(x);
  }
}

// Horn's (1981) 3x3 gradient and Lambertian shading of `elev` (elevation,
// rows north to south). Neighbours outside the tile or without data take the
// centre's value (so edges and nodata borders shade as locally flat in that
// direction). Ground pixel size is the Mercator size times cos(latitude) of
// each row's centre.
void hillshade(const std::vector<double>& elev, const std::vector<uint8_t>& valid, int w, int h,
               const HillshadeParams& p, const TileGeometry& g, uint8_t* out) {
  constexpr double kDeg = std::numbers::pi / 180.0;
  const double az = p.azimuth * kDeg;
  const double alt = p.altitude * kDeg;
  const double sin_alt = std::sin(alt);
  const double cos_alt = std::cos(alt);
  const double sin_az = std::sin(az);
  const double cos_az = std::cos(az);
  const double zf = p.z_factor;
  for (int y = 0; y < h; ++y) {
    const double northing = g.top - (y + 0.5) * g.pixel_height;
    const double lat = 2.0 * std::atan(std::exp(northing / kEarthRadius)) - std::numbers::pi / 2;
    const double scale = std::cos(lat);
    const double gx = g.pixel_width * scale;
    const double gy = g.pixel_height * scale;
    for (int x = 0; x < w; ++x) {
      const size_t c = static_cast<size_t>(y) * w + x;
      if (!valid[c]) {
        out[c] = 0;
        continue;
      }
      const double centre = elev[c];
      auto at = [&](int dx, int dy) {
        const int xx = x + dx, yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) return centre;
        const size_t i = static_cast<size_t>(yy) * w + xx;
        return valid[i] ? elev[i] : centre;
      };
      const double a = at(-1, -1), b = at(0, -1), cc = at(1, -1);
      const double d = at(-1, 0), f = at(1, 0);
      const double gg = at(-1, 1), hh = at(0, 1), ii = at(1, 1);
      const double dzdx = ((cc + 2 * f + ii) - (a + 2 * d + gg)) / (8 * gx);
      const double dzdy = ((gg + 2 * hh + ii) - (a + 2 * b + cc)) / (8 * gy);
      // Normal (-zf dz/dx, zf dz/dy, 1) (row y grows southward), light
      // (sin az cos alt, cos az cos alt, sin alt), east-north-up.
      const double lit = (sin_alt - zf * dzdx * sin_az * cos_alt + zf * dzdy * cos_az * cos_alt) /
                         std::sqrt(1 + zf * zf * (dzdx * dzdx + dzdy * dzdy));
      const double v = std::floor(255.0 * std::max(0.0, lit) + 0.5);
      out[c] = static_cast<uint8_t>(std::min(255.0, v));
    }
  }
}

}  // namespace

TileGeometry mercator_tile_geometry(int z, int y, int tile_size) {
  const double world = 2 * std::numbers::pi * kEarthRadius;
  const double tile_span = world / std::ldexp(1.0, z);
  TileGeometry g;
  g.pixel_width = g.pixel_height = tile_span / tile_size;
  g.top = world / 2 - y * tile_span;
  return g;
}

TileGeometry geometry_from_geotransform(const std::array<double, 6>& gt) {
  return TileGeometry{gt[1], -gt[5], gt[3]};
}

uint8_t rescale_value(double v, const Range& r) {
  double x = std::floor((v - r.min) * 255.0 / (r.max - r.min) + 0.5);
  x = x < 0 ? 0 : (x > 255 ? 255 : x);
  return static_cast<uint8_t>(x);
}

Result<Raster> render_tile(const Raster& tile, std::optional<double> nodata,
                           const RenderParams& params, const std::vector<Range>& defaults,
                           const TileGeometry* geometry, int border) {
  if (border < 0 || 2 * border >= tile.width || 2 * border >= tile.height) {
    return invalid_argument("border: " + std::to_string(border) + " leaves no interior in a " +
                            std::to_string(tile.width) + "x" + std::to_string(tile.height) +
                            " tile");
  }
  const int nsel = static_cast<int>(params.bidx.size());
  if (nsel != 1 && nsel != 3) return invalid_argument("bidx: select 1 or 3 bands");
  for (int b : params.bidx) {
    if (b < 1 || b > tile.bands) {
      return invalid_argument("bidx: band " + std::to_string(b) + " is not in this tile");
    }
  }
  std::vector<uint8_t> valid(tile.mask.begin(), tile.mask.end());
  std::vector<std::vector<double>> values(nsel);
  for (int s = 0; s < nsel; ++s) read_band(tile, params.bidx[s] - 1, nodata, &values[s], &valid);

  const size_t n = tile.pixels();
  std::vector<uint8_t> grey;  // one band's 0-255 values, before any colour map
  Raster out;
  if (params.hillshade) {
    if (!geometry) return invalid_argument("hillshade: needs the tile's position");
    TileGeometry buffered = *geometry;
    buffered.top += border * geometry->pixel_height;
    grey.resize(n);
    hillshade(values[0], valid, tile.width, tile.height, *params.hillshade, buffered, grey.data());
  } else {
    std::vector<Range> ranges(nsel);
    for (int s = 0; s < nsel; ++s) {
      const int layer_band = params.bidx[s] - 1;
      if (!params.rescale.empty()) {
        ranges[s] = params.rescale[params.rescale.size() == 1 ? 0 : s];
      } else if (layer_band < static_cast<int>(defaults.size())) {
        ranges[s] = defaults[layer_band];
      } else if (tile.type == CellType::kUInt8) {
        ranges[s] = Range{0, 255};
      } else {
        return invalid_argument("rescale: required (the layer has no statistics to default to)");
      }
      if (!(ranges[s].min < ranges[s].max)) {
        return invalid_argument("rescale: min must be less than max for band " +
                                std::to_string(layer_band + 1));
      }
    }
    if (nsel == 3) {
      out.reset(tile.width, tile.height, 3, CellType::kUInt8, /*zero=*/false);
      for (int s = 0; s < 3; ++s) rescale_band(values[s], ranges[s], out.band_data(s));
    } else {
      grey.resize(n);
      rescale_band(values[0], ranges[0], grey.data());
    }
  }
  if (!grey.empty()) {
    if (params.colormap.empty()) {
      out.reset(tile.width, tile.height, 1, CellType::kUInt8, /*zero=*/false);
      std::copy(grey.begin(), grey.end(), out.band_data(0));
    } else {
      const ColorTable& table = colormap_table(params.colormap);
      out.reset(tile.width, tile.height, 3, CellType::kUInt8, /*zero=*/false);
      uint8_t* r = out.band_data(0);
      uint8_t* g = out.band_data(1);
      uint8_t* b = out.band_data(2);
      for (size_t i = 0; i < n; ++i) {
        const Rgb& c = table[grey[i]];
        r[i] = c.r;
        g[i] = c.g;
        b[i] = c.b;
      }
    }
  }
  // Transparent pixels are written as 0 so the bytes depend on the data only.
  for (int s = 0; s < out.bands; ++s) {
    uint8_t* d = out.band_data(s);
    for (size_t i = 0; i < n; ++i) d[i] &= valid[i];
  }
  out.mask = std::move(valid);
  if (border == 0) return out;
  // Keep the interior; the frame only fed hillshade's neighbours.
  const int w = tile.width - 2 * border, h = tile.height - 2 * border;
  Raster inner(w, h, out.bands, CellType::kUInt8);
  for (int y = 0; y < h; ++y) {
    const size_t from = static_cast<size_t>(y + border) * tile.width + border;
    const size_t to = static_cast<size_t>(y) * w;
    for (int s = 0; s < out.bands; ++s) {
      std::copy_n(out.band_data(s) + from, w, inner.band_data(s) + to);
    }
    std::copy_n(out.mask.data() + from, w, inner.mask.data() + to);
  }
  return inner;
}

Raster add_border(const Raster& centre, const std::array<const Raster*, 8>& neighbours,
                  int border) {
  const int w = centre.width, h = centre.height, bw = w + 2 * border;
  const size_t cell = cell_bytes(centre.type);
  Raster out(bw, h + 2 * border, centre.bands, centre.type);  // all invalid
  // Copies rows [y0, y0 + rows) x columns [x0, x0 + cols) of `src` to
  // (dx, dy) of `out`.
  auto blit = [&](const Raster& src, int x0, int y0, int cols, int rows, int dx, int dy) {
    for (int y = 0; y < rows; ++y) {
      const size_t s = static_cast<size_t>(y0 + y) * w + x0;
      const size_t d = static_cast<size_t>(dy + y) * bw + dx;
      for (int b = 0; b < centre.bands; ++b) {
        std::memcpy(out.band_data(b) + d * cell, src.band_data(b) + s * cell, cols * cell);
      }
      std::memcpy(out.mask.data() + d, src.mask.data() + s, cols);
    }
  };
  blit(centre, 0, 0, w, h, border, border);
  // For each neighbour (column i, row j in -1..1): the strip of it that
  // touches the centre.
  int k = 0;
  for (int j = -1; j <= 1; ++j) {
    for (int i = -1; i <= 1; ++i) {
      if (i == 0 && j == 0) continue;
      const Raster* n = neighbours[k++];
      if (!n || n->width != w || n->height != h || n->type != centre.type ||
          n->bands != centre.bands) {
        continue;
      }
      const int x0 = i < 0 ? w - border : 0, cols = i == 0 ? w : border;
      const int y0 = j < 0 ? h - border : 0, rows = j == 0 ? h : border;
      const int dx = i < 0 ? 0 : (i == 0 ? border : border + w);
      const int dy = j < 0 ? 0 : (j == 0 ? border : border + h);
      blit(*n, x0, y0, cols, rows, dx, dy);
    }
  }
  return out;
}

Result<std::string> encode_image(const Raster& image, ImageFormat format, int png_level) {
  if (format == ImageFormat::kWebp) return encode_webp(image, /*lossless=*/false, 90);
  if (png_level < 0 || png_level > 12) {
    return invalid_argument("png level " + std::to_string(png_level) + " is not 0-12");
  }
  return encode_png(image, png_level, /*colour_key=*/true);
}

}  // namespace kiln::render

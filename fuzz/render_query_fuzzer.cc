// Fuzz target for the tile rendering parameters (render/render_params.h) and
// the renderer behind them: a tenant's query string, parsed, checked against
// a 3-band layer and rendered on a small float tile.
//
// Input: the query string ("bidx=1&rescale=0,1&..."), raw bytes.
//
// Refusals are expected and never a finding. What is: a crash or sanitizer
// report, a refusal that is not kInvalidArgument or names no parameter
// (no ':' in the message), an accepted query whose values break the
// documented bounds (bidx 1 or 3 indices in 1-65535, rescale pairs finite
// with min < max and one per band, hillshade angles in range, a colour map
// not among colormap_names()), or a rendered image whose size or alpha
// does not match the tile's.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "render/colormap.h"
#include "render/render.h"
#include "render/render_params.h"

namespace {

size_t g_checked = 0;  // queries accepted and rendered

[[noreturn]] void fail(const std::string& what, std::string_view input) {
  std::fprintf(stderr, "render_query_fuzzer: %s\ninput: %.*s\n", what.c_str(),
               static_cast<int>(std::min<size_t>(input.size(), 300)), input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::render;
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  kiln::Result<RenderParams> parsed = parse_render_query(query);
  if (!parsed.is_ok()) {
    if (parsed.status().code() != kiln::StatusCode::kInvalidArgument ||
        parsed.status().message().find(':') == std::string::npos) {
      fail("refusal without a parameter: " + parsed.status().message(), query);
    }
    return 0;
  }
  RenderParams p = *parsed;
  if (!p.bidx.empty() && p.bidx.size() != 1 && p.bidx.size() != 3) fail("bidx count", query);
  for (int b : p.bidx)
    if (b < 1 || b > kMaxBandIndex) fail("bidx out of range", query);
  for (const Range& r : p.rescale)
    if (!std::isfinite(r.min) || !std::isfinite(r.max) || !(r.min < r.max)) fail("rescale", query);
  if (!p.colormap.empty() && canonical_colormap_name(p.colormap) != p.colormap) {
    fail("colormap not canonical", query);
  }
  if (p.hillshade) {
    const HillshadeParams& h = *p.hillshade;
    if (!(h.azimuth >= 0 && h.azimuth <= 360 && h.altitude >= 0 && h.altitude <= 90 &&
          h.z_factor > 0 && h.z_factor <= 1e6)) {
      fail("hillshade out of range", query);
    }
  }
  kiln::Status layer = check_against_layer(&p, 3);
  if (!layer.is_ok()) {
    if (layer.code() != kiln::StatusCode::kInvalidArgument) fail("layer check code", query);
    return 0;
  }
  // A 4x4 float tile with a slope, a NaN and a nodata pixel.
  kiln::Raster tile(4, 4, 3, kiln::CellType::kFloat32);
  for (int b = 0; b < 3; ++b)
    for (int i = 0; i < 16; ++i) tile.band_as<float>(b)[i] = static_cast<float>(i * (b + 1));
  tile.band_as<float>(0)[5] = std::numeric_limits<float>::quiet_NaN();
  tile.band_as<float>(1)[6] = -1.f;
  std::fill(tile.mask.begin(), tile.mask.end(), 255);
  const TileGeometry g = mercator_tile_geometry(10, 300, 4);
  kiln::Result<kiln::Raster> img = render_tile(tile, -1.0, p, {Range{0, 16}, Range{0, 32}}, &g);
  if (!img.is_ok()) {
    // Only band 3 lacks a default range.
    if (img.status().code() != kiln::StatusCode::kInvalidArgument) fail("render code", query);
    return 0;
  }
  if (img->width != 4 || img->height != 4 || img->type != kiln::CellType::kUInt8 ||
      (img->bands != 1 && img->bands != 3) || img->mask.size() != 16) {
    fail("rendered shape", query);
  }
  const bool uses_band1 = std::find(p.bidx.begin(), p.bidx.end(), 1) != p.bidx.end();
  if (uses_band1 && img->mask[5] != 0) fail("NaN not transparent", query);
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }

// Google Benchmark kernels for the hot paths of an ingest, on real imagery:
//
//   BM_Warp/<method>          WarpSource::warp of a 2048x2048 Web Mercator
//                             region inside the scene (decode + warp kernel);
//                             items = output pixels.
//   BM_Downsample/<method>    downsample_2x of a 512x512 3-band uint8 raster
//                             warped across the scene's edge (real mask);
//                             items = input pixels.
//   BM_Encode/<codec>/<mask>  encode_tile of a real 256x256 RGB tile, fully
//                             valid (the scene's centre) or across the
//                             scene's edge; items = tiles.
//
// The scene is $KILN_BENCH_SCENE (3+ bands of uint8) or data/L7_ETMs.tif in
// the source tree; bands 1,2,3 are read. Each input is warped (bilinear) at
// the lowest zoom, not coarser than the scene's own resolution, at which it
// fits inside the scene's footprint: the 2048 px warp region so that every
// warped pixel is real work, not empty space; the tiles and the downsample
// input so they are as close to the scene's own detail as the scene allows
// (over-zoomed tiles are smoother and encode faster than real ones), with a
// real edge across them. For data/L7_ETMs.tif (349 x 352 px of 28.5 m, about
// 10 km across) that is zoom 15 for the warp region, 13 for the downsample
// input and 12, the scene's own, for the tiles. $KILN_BENCH_ZOOM forces the
// warp zoom. The zooms and each input's valid share are printed as counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ogr_api.h>
#include <ogr_geometry.h>

#include "ingest/plan.h"
#include "raster/codec.h"
#include "raster/footprint.h"
#include "raster/gdal_env.h"
#include "raster/pyramid.h"
#include "raster/resample.h"
#include "raster/source.h"
#include "raster/tile_grid.h"
#include "raster/warp.h"

#ifndef KILN_SOURCE_DIR
#error "KILN_SOURCE_DIR must be defined (bench/CMakeLists.txt)"
#endif

namespace kiln {
namespace {

constexpr int kTileSize = 256;
constexpr int kWarpSide = 2048;
constexpr int kDownsampleSide = 512;

// Everything the kernels run on, prepared once (outside the timings).
struct Scene {
  std::string path;
  SourceInfo info;
  TileGrid grid = TileGrid::web_mercator(kTileSize);
  int zoom = 0;             // of the warp region
  int tile_zoom = 0;        // of the encoded tiles
  int downsample_zoom = 0;  // of the downsample input
  Region warp_region;       // kWarpSide^2, inside the footprint
  Raster tile_valid;        // kTileSize^2 RGB uint8, mask all valid
  Raster tile_edge;         // kTileSize^2 RGB uint8 across the scene's edge
  std::array<double, 6> tile_valid_gt{};
  std::array<double, 6> tile_edge_gt{};
  Raster downsample_src;  // kDownsampleSide^2 RGB uint8 across the scene's edge
};

std::string scene_path() {
  if (const char* env = std::getenv("KILN_BENCH_SCENE"); env && *env) return env;
  return (std::filesystem::path(KILN_SOURCE_DIR) / "data" / "L7_ETMs.tif").string();
}

double valid_fraction(const Raster& r) {
  if (r.mask.empty()) return 0;
  return static_cast<double>(std::count(r.mask.begin(), r.mask.end(), uint8_t{255})) /
         static_cast<double>(r.mask.size());
}

// A size x size region of zoom z's pixel grid whose top-left corner is the
// grid pixel corner nearest (min_x, max_y). Kiln's regions are grid-aligned.
Region aligned_region(const TileGrid& grid, int z, double min_x, double max_y, int size) {
  const double res = grid.resolution_x(z);
  const double x0 = grid.origin_x() + std::round((min_x - grid.origin_x()) / res) * res;
  const double y0 = grid.origin_y() - std::round((grid.origin_y() - max_y) / res) * res;
  Region r;
  r.geotransform = {x0, res, 0, y0, 0, -res};
  r.width = r.height = size;
  return r;
}

bool region_inside(const OGRGeometry& footprint, const Region& r) {
  const double x0 = r.geotransform[0], y0 = r.geotransform[3];
  const double x1 = x0 + r.width * r.geotransform[1], y1 = y0 + r.height * r.geotransform[5];
  OGRLinearRing ring;
  ring.addPoint(x0, y0);
  ring.addPoint(x1, y0);
  ring.addPoint(x1, y1);
  ring.addPoint(x0, y1);
  ring.addPoint(x0, y0);
  OGRPolygon rect;
  rect.addRing(&ring);
  return footprint.Contains(&rect);
}

// Walks a size x size window of zoom z east along the footprint's horizontal
// centre line, from outside its west edge, and returns the warp whose valid
// share is closest to one half: a real scene edge (or nodata collar) across
// the window.
Result<Raster> warp_across_edge(WarpSource& ws, const Scene& s, const Bounds& env, int z, int size,
                                std::array<double, 6>* gt) {
  const double res = s.grid.resolution_x(z);
  const double cx = (env.min_x + env.max_x) / 2, cy = (env.min_y + env.max_y) / 2;
  const double step = res * size / 8;
  Raster best;
  double best_score = 2;
  for (double x = env.min_x - size * res; x < cx; x += step) {
    const Region r = aligned_region(s.grid, z, x, cy + size * res / 2, size);
    Raster out;
    KILN_ASSIGN_OR_RETURN(bool hit, ws.warp(r, s.info.type, &out));
    if (!hit) continue;
    const double f = valid_fraction(out);
    if (std::abs(f - 0.5) < best_score) {
      best_score = std::abs(f - 0.5);
      best = std::move(out);
      *gt = r.geotransform;
    }
    if (f >= 0.5) break;  // past the edge: later windows only get fuller
  }
  if (best.pixels() == 0)
    return input_error(s.path + ": no " + std::to_string(size) + " px window meets the scene");
  return best;
}

Result<Scene> load_scene() {
  init_gdal();
  Scene s;
  s.path = scene_path();
  SourceRequest req;
  req.uri = s.path;
  req.bands = {1, 2, 3};
  KILN_ASSIGN_OR_RETURN(s.info, inspect_source(req));
  if (s.info.type != CellType::kUInt8) {
    return invalid_argument(s.path + ": the kernels need a scene with 3 bands of uint8 (it has " +
                            cell_type_name(s.info.type) + ")");
  }
  KILN_ASSIGN_OR_RETURN(GeometryPtr footprint, web_mercator_footprint(s.info));
  const Bounds env = envelope_of(*footprint);
  const double cx = (env.min_x + env.max_x) / 2, cy = (env.min_y + env.max_y) / 2;

  // The scene's own resolution in Web Mercator metres, from its footprint's
  // area, gives the zoom gdal2tiles (and Kiln) would pick as max zoom.
  const double area = OGR_G_Area(OGRGeometry::ToHandle(footprint.get()));
  const double native_px = std::sqrt(area / (static_cast<double>(s.info.width) * s.info.height));
  const int native_zoom = ingest::zoom_for_pixel_size(native_px, kTileSize);

  auto centred = [&](int z, int size) {
    const double half = s.grid.resolution_x(z) * size / 2;
    return aligned_region(s.grid, z, cx - half, cy + half, size);
  };
  // The lowest zoom from the scene's own on at which a size^2 region around
  // the centre lies inside the footprint, or -1.
  auto fitting_zoom = [&](int size) {
    for (int z = native_zoom; z <= 24; ++z) {
      if (region_inside(*footprint, centred(z, size))) return z;
    }
    return -1;
  };
  if (const char* z = std::getenv("KILN_BENCH_ZOOM"); z && *z) {
    s.zoom = std::atoi(z);
  } else {
    s.zoom = fitting_zoom(kWarpSide);
  }
  s.tile_zoom = fitting_zoom(kTileSize);
  s.downsample_zoom = fitting_zoom(kDownsampleSide);
  if (s.zoom < 0 || s.tile_zoom < 0 || s.downsample_zoom < 0) {
    return invalid_argument(s.path + ": no zoom up to 24 fits a " +
                            std::to_string(s.zoom < 0 ? kWarpSide : kDownsampleSide) +
                            " px region inside the scene; set KILN_BENCH_ZOOM");
  }
  s.warp_region = centred(s.zoom, kWarpSide);

  WarpOptions wo;
  wo.resample = WarpResample::kBilinear;
  KILN_ASSIGN_OR_RETURN(auto ws, WarpSource::open(s.info, s.grid.crs_wkt(), wo));

  // The all-valid tile: the centre of the scene. Its mask is forced valid so
  // the codec never adds alpha, whatever holes a user's scene has there.
  const Region centre = centred(s.tile_zoom, kTileSize);
  KILN_ASSIGN_OR_RETURN(bool hit, ws->warp(centre, s.info.type, &s.tile_valid));
  if (!hit) return input_error(s.path + ": the scene does not reach its own centre");
  std::fill(s.tile_valid.mask.begin(), s.tile_valid.mask.end(), uint8_t{255});
  s.tile_valid_gt = centre.geotransform;

  KILN_ASSIGN_OR_RETURN(s.tile_edge,
                        warp_across_edge(*ws, s, env, s.tile_zoom, kTileSize, &s.tile_edge_gt));
  std::array<double, 6> unused;
  KILN_ASSIGN_OR_RETURN(s.downsample_src,
                        warp_across_edge(*ws, s, env, s.downsample_zoom, kDownsampleSide, &unused));
  return s;
}

const Scene& scene() {
  static const Scene* s = [] {
    auto r = load_scene();
    if (!r.is_ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().to_string().c_str());
      std::exit(1);
    }
    return new Scene(std::move(r).value());
  }();
  return *s;
}

void bm_warp(benchmark::State& state, WarpResample method) {
  const Scene& s = scene();
  WarpOptions wo;
  wo.resample = method;
  auto ws = WarpSource::open(s.info, s.grid.crs_wkt(), wo);
  if (!ws.is_ok()) {
    state.SkipWithError(ws.status().to_string().c_str());
    return;
  }
  Raster out;
  double valid = 0;
  for (auto _ : state) {
    auto hit = (*ws)->warp(s.warp_region, s.info.type, &out);
    if (!hit.is_ok() || !*hit) {
      state.SkipWithError(hit.is_ok() ? "the region misses the scene"
                                      : hit.status().to_string().c_str());
      return;
    }
    benchmark::DoNotOptimize(out.data.data());
    valid = valid_fraction(out);
  }
  state.SetItemsProcessed(state.iterations() * int64_t{kWarpSide} * kWarpSide);
  state.counters["zoom"] = s.zoom;
  state.counters["valid_pct"] = 100 * valid;
  state.SetLabel(std::filesystem::path(s.path).filename().string());
}

void bm_downsample(benchmark::State& state, PyramidResample method) {
  const Scene& s = scene();
  for (auto _ : state) {
    Raster half = downsample_2x(s.downsample_src, method, std::nullopt);
    benchmark::DoNotOptimize(half.data.data());
  }
  state.SetItemsProcessed(state.iterations() * int64_t{kDownsampleSide} * kDownsampleSide);
  state.counters["zoom"] = s.downsample_zoom;
  state.counters["valid_pct"] = 100 * valid_fraction(s.downsample_src);
}

void bm_encode(benchmark::State& state, EncodeOptions options, bool with_invalid) {
  const Scene& s = scene();
  const Raster& tile = with_invalid ? s.tile_edge : s.tile_valid;
  const TileGeoref georef{with_invalid ? s.tile_edge_gt : s.tile_valid_gt, s.grid.crs_wkt()};
  size_t bytes = 0;
  for (auto _ : state) {
    auto out = encode_tile(tile, options, &georef);
    if (!out.is_ok()) {
      state.SkipWithError(out.status().to_string().c_str());
      return;
    }
    bytes = out->size();
    benchmark::DoNotOptimize(out->data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["zoom"] = s.tile_zoom;
  state.counters["valid_pct"] = 100 * valid_fraction(tile);
}

void register_all() {
  for (WarpResample m : {WarpResample::kNearest, WarpResample::kBilinear, WarpResample::kCubic,
                         WarpResample::kLanczos}) {
    benchmark::RegisterBenchmark((std::string("BM_Warp/") + warp_resample_name(m)).c_str(), bm_warp,
                                 m)
        ->Unit(benchmark::kMillisecond);
  }
  for (PyramidResample m :
       {PyramidResample::kAverage, PyramidResample::kMode, PyramidResample::kMin,
        PyramidResample::kMax, PyramidResample::kMedian, PyramidResample::kNearest}) {
    benchmark::RegisterBenchmark((std::string("BM_Downsample/") + pyramid_resample_name(m)).c_str(),
                                 bm_downsample, m)
        ->Unit(benchmark::kMicrosecond);
  }
  struct Codec {
    const char* name;
    EncodeOptions options;
  };
  std::vector<Codec> codecs;
  // Every deflate level, for the size-vs-speed table in bench/README.md.
  static const char* kPngNames[] = {"png_level0", "png_level1", "png_level2", "png_level3",
                                    "png_level4", "png_level5", "png_level6", "png_level7",
                                    "png_level8", "png_level9"};
  for (int level = 0; level <= 9; ++level) {
    EncodeOptions o;
    o.format = TileFormat::kPng;
    o.png_level = level;
    codecs.push_back({kPngNames[level], o});
  }
  {
    EncodeOptions o;
    o.format = TileFormat::kWebp;
    o.webp_quality = 75;
    codecs.push_back({"webp_q75", o});
    o.webp_lossless = true;
    codecs.push_back({"webp_lossless", o});
  }
  for (TiffCompression c : {TiffCompression::kDeflate, TiffCompression::kZstd}) {
    EncodeOptions o;
    o.format = TileFormat::kTiff;
    o.tiff_compression = c;
    codecs.push_back({c == TiffCompression::kDeflate ? "tif_deflate" : "tif_zstd", o});
  }
  for (const Codec& c : codecs) {
    for (bool with_invalid : {false, true}) {
      const std::string name =
          std::string("BM_Encode/") + c.name + (with_invalid ? "/with_invalid" : "/all_valid");
      benchmark::RegisterBenchmark(name.c_str(), bm_encode, c.options, with_invalid)
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  kiln::register_all();
  benchmark::AddCustomContext("scene", kiln::scene_path());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

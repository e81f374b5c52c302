// kiln_render_bench: rendered tiles per second, the path of an analytic tile
// request: decode a stored 256x256 uint16 tif tile, rescale it, encode PNG
// (issue 15's target: >= 1,000 tiles/s on 2 cores, p99 <= 50 ms).
//
//   kiln_render_bench [--threads N] [--seconds S] [--source FILE] [--params Q]
//                     [--png-level L]
//
// The tile is 256x256 real uint16 Landsat data (four 128x128 windows of
// tests/data/rt_mosaic_cog{1,2}.crop.tif, or of --source, which needs 2
// uint16 bands of at least 128x128), written once with Kiln's own tif
// encoder as an ingest stores it (DEFLATE, nodata 0). Each of N threads then renders it in a
// loop for S seconds (default 2 threads, 5 s); each render is timed in three
// phases: decode (GDAL GTiff from /vsimem/), render (rescale), encode (PNG or
// WebP). Prints one JSON object: tiles/s, latency p50/p99/max in ms and
// each phase's share of the time (the codec's share = decode + encode).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "raster/gdal_env.h"
#include "raster/source.h"
#include "raster/tiff_encoder.h"
#include "render/render.h"
#include "render/tile_decoder.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct ThreadResult {
  std::vector<double> latency_ms;
  double decode_ms = 0, render_ms = 0, encode_ms = 0;
  size_t bytes = 0;
  std::string error;
};

int fail(const std::string& why) {
  std::fprintf(stderr, "kiln_render_bench: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  double seconds = 5;
  std::string source = std::string(KILN_SOURCE_DIR) + "/tests/data/rt_mosaic_cog1.crop.tif";
  std::string source2 = std::string(KILN_SOURCE_DIR) + "/tests/data/rt_mosaic_cog2.crop.tif";
  std::string query = "rescale=6000,13500";
  int png_level = 1;  // encode_image's default
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--threads") {
      threads = std::max(1, std::atoi(argv[i + 1]));
    } else if (flag == "--seconds") {
      seconds = std::max(0.1, std::atof(argv[i + 1]));
    } else if (flag == "--source") {
      source = source2 = argv[i + 1];
    } else if (flag == "--png-level") {
      png_level = std::atoi(argv[i + 1]);
    } else if (flag == "--params") {
      query = argv[i + 1];
    } else {
      return fail("unknown flag " + flag);
    }
  }
  kiln::init_gdal();

  // One real 256x256 uint16 tile: four 128x128 quadrants, bands 1 and 2 of
  // the two neighbouring Landsat windows tests/data holds (uint16, nodata 0),
  // so the data has a real scene's entropy and nodata edge.
  kiln::Raster tile(256, 256, 1, kiln::CellType::kUInt16);
  const std::string quadrant_files[4] = {source, source, source2, source2};
  for (int q = 0; q < 4; ++q) {
    kiln::Result<kiln::DatasetPtr> ds = kiln::open_raster(quadrant_files[q]);
    if (!ds.is_ok()) return fail(ds.status().message());
    uint16_t* dst = tile.band_as<uint16_t>(0) + (q / 2) * 128 * 256 + (q % 2) * 128;
    if ((*ds)->GetRasterBand(1 + q % 2)->RasterIO(GF_Read, 0, 0, 128, 128, dst, 128, 128,
                                                  GDT_UInt16, 0, 256 * 2, nullptr) != CE_None) {
      return fail(quadrant_files[q] + ": cannot read a 128x128 uint16 window");
    }
  }
  for (size_t i = 0; i < tile.pixels(); ++i) tile.mask[i] = tile.band_as<uint16_t>(0)[i] ? 255 : 0;
  kiln::EncodeOptions eo;
  eo.format = kiln::TileFormat::kTiff;
  eo.nodata = 0.0;
  kiln::Result<std::string> stored =
      kiln::encode_tiff(tile, eo, kiln::TileGeoref{{0, 1, 0, 0, 0, -1}, ""});
  if (!stored.is_ok()) return fail(stored.status().message());
  kiln::Result<kiln::render::RenderParams> parsed = kiln::render::parse_render_query(query);
  if (!parsed.is_ok()) return fail(parsed.status().message());
  kiln::render::RenderParams params = *parsed;
  if (!kiln::render::check_against_layer(&params, 1).is_ok()) return fail("--params: bad bidx");

  std::vector<ThreadResult> results(threads);
  std::vector<std::thread> pool;
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ThreadResult& r = results[t];
      while (Clock::now() < stop) {
        const Clock::time_point t0 = Clock::now();
        kiln::Result<kiln::render::DecodedTile> d = kiln::render::decode_tif_tile(*stored);
        const Clock::time_point t1 = Clock::now();
        if (!d.is_ok()) {
          r.error = d.status().message();
          return;
        }
        kiln::Result<kiln::Raster> img =
            kiln::render::render_tile(d->raster, d->nodata, params, {}, nullptr);
        const Clock::time_point t2 = Clock::now();
        if (!img.is_ok()) {
          r.error = img.status().message();
          return;
        }
        kiln::Result<std::string> bytes =
            kiln::render::encode_image(*img, params.format, png_level);
        if (!bytes.is_ok()) {
          r.error = bytes.status().message();
          return;
        }
        r.bytes += bytes->size();
        r.decode_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
        r.render_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
        r.encode_ms += ms_since(t2);
        r.latency_ms.push_back(ms_since(t0));
      }
    });
  }
  for (auto& th : pool) th.join();
  const double wall_s = ms_since(start) / 1000;

  std::vector<double> all;
  double decode = 0, render = 0, encode = 0;
  size_t bytes = 0;
  for (const ThreadResult& r : results) {
    if (!r.error.empty()) return fail(r.error);
    all.insert(all.end(), r.latency_ms.begin(), r.latency_ms.end());
    decode += r.decode_ms;
    render += r.render_ms;
    encode += r.encode_ms;
    bytes += r.bytes;
  }
  if (all.empty()) return fail("no tile rendered");
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, size_t(p / 100 * all.size()))]; };
  const double total = decode + render + encode;
  nlohmann::json out = {{"threads", threads},
                        {"params", query},
                        {"png_level", png_level},
                        {"tiles", all.size()},
                        {"seconds", wall_s},
                        {"tiles_per_s", all.size() / wall_s},
                        {"p50_ms", pct(50)},
                        {"p99_ms", pct(99)},
                        {"max_ms", all.back()},
                        {"mean_png_bytes", bytes / all.size()},
                        {"share_decode", decode / total},
                        {"share_render", render / total},
                        {"share_encode", encode / total},
                        {"codec_share", (decode + encode) / total}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

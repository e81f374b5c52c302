#include "ingest/partition.h"

#include <algorithm>
#include <cstring>

#include "raster/codec.h"
#include "raster/pyramid.h"
#include "raster/raster_blob.h"

namespace kiln::ingest {
namespace {

// Copies the pixels `scratch` has data for into the mosaic's target bands:
// later sources are drawn over earlier ones, but only where they have data,
// so nodata never overwrites data.
void composite(const Raster& scratch, const std::vector<BandMap>& bands, Raster* mosaic) {
  const size_t n = scratch.pixels();
  const uint8_t* m = scratch.mask.data();
  dispatch_cell_type(mosaic->type, [&]<typename T>() {
    for (size_t b = 0; b < bands.size(); ++b) {
      const T* s = scratch.band_as<T>(static_cast<int>(b));
      T* d = mosaic->band_as<T>(bands[b].target);
      for (size_t i = 0; i < n; ++i) d[i] = m[i] ? s[i] : d[i];
    }
  });
  uint8_t* dm = mosaic->mask.data();
  for (size_t i = 0; i < n; ++i) dm[i] |= m[i] ? 255 : 0;
}

nlohmann::json stats_to_json(const BandStats& s) {
  return {{"count", s.count},
          {"sum", s.sum},
          {"sum_sq", s.sum_sq},
          {"min", s.count ? s.min : 0},
          {"max", s.count ? s.max : 0},
          {"bin_width", s.bin_width},
          {"bins", s.bins}};
}

}  // namespace

void LevelResult::add(int64_t x, int64_t y, uint64_t nbytes) {
  if (tiles == 0) {
    range.min_x = range.max_x = x;
    range.min_y = range.max_y = y;
  } else {
    range.min_x = std::min(range.min_x, x);
    range.max_x = std::max(range.max_x, x);
    range.min_y = std::min(range.min_y, y);
    range.max_y = std::max(range.max_y, y);
  }
  ++tiles;
  bytes += nbytes;
}

void LevelResult::merge(const LevelResult& o) {
  if (o.tiles == 0) return;
  if (tiles == 0) {
    *this = o;
    return;
  }
  tiles += o.tiles;
  bytes += o.bytes;
  range.min_x = std::min(range.min_x, o.range.min_x);
  range.max_x = std::max(range.max_x, o.range.max_x);
  range.min_y = std::min(range.min_y, o.range.min_y);
  range.max_y = std::max(range.max_y, o.range.max_y);
}

nlohmann::json to_json(const PartitionResult& r) {
  nlohmann::json j;
  j["index"] = r.index;
  j["has_partial"] = r.has_partial;
  j["stats"] = nlohmann::json::array();
  for (const auto& s : r.stats) j["stats"].push_back(stats_to_json(s));
  j["levels"] = nlohmann::json::array();
  for (const auto& [z, l] : r.levels) {
    j["levels"].push_back({{"zoom", z},
                           {"tiles", l.tiles},
                           {"bytes", l.bytes},
                           {"min_x", l.range.min_x},
                           {"min_y", l.range.min_y},
                           {"max_x", l.range.max_x},
                           {"max_y", l.range.max_y}});
  }
  return j;
}

Result<PartitionResult> partition_result_from_json(const nlohmann::json& j) {
  try {
    PartitionResult r;
    r.index = j.at("index").get<int64_t>();
    r.has_partial = j.at("has_partial").get<bool>();
    for (const auto& s : j.at("stats")) {
      BandStats b;
      b.count = s.at("count").get<uint64_t>();
      b.sum = s.at("sum").get<double>();
      b.sum_sq = s.at("sum_sq").get<double>();
      if (b.count) {
        b.min = s.at("min").get<double>();
        b.max = s.at("max").get<double>();
      }
      b.bin_width = s.at("bin_width").get<double>();
      b.bins = s.at("bins").get<std::vector<uint64_t>>();
      r.stats.push_back(std::move(b));
    }
    for (const auto& l : j.at("levels")) {
      LevelResult lr;
      lr.tiles = l.at("tiles").get<int64_t>();
      lr.bytes = l.at("bytes").get<uint64_t>();
      lr.range = {l.at("zoom").get<int>(), l.at("min_x").get<int64_t>(),
                  l.at("min_y").get<int64_t>(), l.at("max_x").get<int64_t>(),
                  l.at("max_y").get<int64_t>()};
      r.levels[l.at("zoom").get<int>()] = lr;
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return internal_error(std::string("corrupt partition result: ") + e.what());
  }
}

Result<WarpSource*> SourceCache::get(int i) {
  auto it = open_.find(i);
  if (it != open_.end()) return it->second.get();
  WarpOptions wo;
  wo.resample = plan_.def.output.resample;
  wo.error_threshold = plan_.def.output.error_threshold;
  wo.transform_span = plan_.grid.tile_size();
  KILN_ASSIGN_OR_RETURN(auto ws, WarpSource::open(plan_.sources[i].info, plan_.grid.crs_wkt(), wo));
  WarpSource* raw = ws.get();
  open_[i] = std::move(ws);
  return raw;
}

std::string partial_path(int64_t x, int64_t y) {
  return "_partials/" + std::to_string(x) + "-" + std::to_string(y) + ".tile";
}

Status write_tile(const Plan& plan, const TileKey& key, const Raster& tile,
                  catalog::LayerWriter* writer, LevelResult* level, Progress* progress) {
  const OutputDef& out = plan.def.output;
  EncodeOptions eo = out.encoding;
  eo.nodata = plan.nodata;
  TileGeoref georef{plan.grid.geotransform(key.z, key.x, key.y), plan.grid.crs_wkt()};
  auto bytes = encode_tile(tile, eo, &georef);
  if (!bytes.is_ok()) {
    return bytes.status().with_context("tile " + std::to_string(key.z) + "/" +
                                       std::to_string(key.x) + "/" + std::to_string(key.y));
  }
  KILN_RETURN_IF_ERROR(writer->write_tile(key.z, key.x, key.y, tile_extension(eo.format), *bytes));
  level->add(key.x, key.y, bytes->size());
  progress->tiles_written.fetch_add(1, std::memory_order_relaxed);
  progress->bytes_written.fetch_add(bytes->size(), std::memory_order_relaxed);
  return Status::ok();
}

Result<PartitionResult> run_partition(const Plan& plan, int64_t index, catalog::LayerWriter* writer,
                                      SourceCache* sources, Progress* progress,
                                      const CancelToken& cancel) {
  const PartitionPlan& pp = plan.partitions.at(index);
  const int ts = plan.grid.tile_size();
  const int depth = plan.max_zoom - plan.region_zoom;
  const int side = plan.region_pixels();
  const int64_t mx0 = pp.region.x << depth, my0 = pp.region.y << depth;

  PartitionResult result;
  result.index = index;
  Region region{plan.grid.geotransform(plan.max_zoom, mx0, my0), side, side};
  // The partition's max-zoom mosaic and the per-source warp output are the
  // largest buffers of an ingest; each pool thread keeps its own and reuses
  // them partition after partition, so no fresh pages are faulted in and
  // peak memory stays at threads x one partition.
  thread_local Raster t_level, t_scratch;
  Raster& level = t_level;
  // A lone source whose bands are the layer's, in order, is warped straight
  // into the mosaic (what composite() would copy anyway).
  bool direct = pp.sources.size() == 1;
  if (direct) {
    const auto& bands = plan.sources[pp.sources[0]].bands;
    direct = static_cast<int>(bands.size()) == plan.bands;
    for (size_t b = 0; direct && b < bands.size(); ++b)
      direct = bands[b].target == static_cast<int>(b);
  }
  if (!direct) level.reset(side, side, plan.bands, plan.cell_type);
  for (int si : pp.sources) {
    if (cancel.cancelled()) return cancelled("interrupted; nothing was published");
    KILN_ASSIGN_OR_RETURN(WarpSource * ws, sources->get(si));
    Raster& out = direct ? level : t_scratch;
    KILN_ASSIGN_OR_RETURN(bool hit, ws->warp(region, plan.cell_type, &out));
    progress->bytes_read.fetch_add(ws->last_read_bytes(), std::memory_order_relaxed);
    if (direct) {
      if (!hit) level.reset(side, side, plan.bands, plan.cell_type);  // nothing there
      continue;
    }
    if (hit) composite(t_scratch, plan.sources[si].bands, &level);
  }
  fill_invalid(&level, plan.nodata);
  result.stats = compute_band_stats(level);

  int64_t processed = 0;
  Raster reduced;  // levels above max zoom
  const Raster* cur = &level;
  for (int z = plan.max_zoom; z >= plan.top_zoom; --z) {
    const int shift = z - plan.region_zoom;
    const int64_t x0 = pp.region.x << shift, y0 = pp.region.y << shift;
    const int across = cur->width / ts;
    LevelResult& lr = result.levels[z];
    lr.range.z = z;
    for (int ty = 0; ty < across; ++ty) {
      for (int tx = 0; tx < across; ++tx) {
        if (cancel.cancelled()) return cancelled("interrupted; nothing was published");
        TileKey key{z, x0 + tx, y0 + ty};
        if (key.x >= plan.grid.matrix_width(z) || key.y >= plan.grid.matrix_height(z)) continue;
        Raster tile = crop(*cur, tx * ts, ty * ts, ts, ts);
        if (!tile.any_valid()) continue;
        KILN_RETURN_IF_ERROR(write_tile(plan, key, tile, writer, &lr, progress));
        ++processed;
        progress->tiles_done.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (z == plan.top_zoom && plan.top_zoom > plan.min_zoom && cur->any_valid()) {
      // top_zoom == region_zoom here: the level is this partition's one top tile.
      KILN_RETURN_IF_ERROR(
          writer->write_file(partial_path(pp.region.x, pp.region.y), serialize_raster(*cur)));
      result.has_partial = true;
    }
    if (z > plan.top_zoom) {
      reduced = downsample_2x(*cur, plan.def.output.pyramid_resample, plan.nodata);
      cur = &reduced;
    }
  }
  // Planned tiles that turned out empty are done too.
  if (pp.tiles > processed) progress->tiles_done.fetch_add(pp.tiles - processed);
  progress->partitions_done.fetch_add(1);
  return result;
}

}  // namespace kiln::ingest

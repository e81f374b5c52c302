#include "ingest/plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <gdal_alg.h>
#include <ogr_api.h>
#include <ogr_geometry.h>

#include "ingest/curve.h"
#include "raster/footprint.h"
#include "raster/gdal_env.h"
#include "raster/warp.h"

namespace kiln::ingest {
namespace {

// Keep a partition's working set (region pixels of every band plus the
// mask) near this size, so peak memory is threads x this, whatever the scene.
constexpr uint64_t kRegionBudgetBytes = 48ull << 20;
// Deepest partition: 8x8 max-zoom tiles (2048 px at 256). Deeper regions
// save little per-partition overhead and cost parallelism on small scenes.
constexpr int kMaxRegionDepth = 3;

using PreparedPtr = OGRPreparedGeometryUniquePtr;

// Pixel size of the source once warped to EPSG:3857, as gdal2tiles measures
// it (GDALSuggestedWarpOutput on a warped VRT).
Result<double> web_mercator_pixel_size(const SourceInfo& s) {
  KILN_ASSIGN_OR_RETURN(SourceTransform st,
                        source_to_crs(s, TileGrid::web_mercator(256).crs_wkt()));
  void* t = st.transformer.get();
  double out_gt[6];
  int w = 0, h = 0;
  if (GDALSuggestedWarpOutput(GDALDataset::ToHandle(st.proxy.get()), GDALGenImgProjTransform, t,
                              out_gt, &w, &h) != CE_None) {
    return input_error("source '" + s.uri +
                       "': cannot estimate its resolution in EPSG:3857: " + last_gdal_error());
  }
  if (out_gt[1] * w <= TileGrid::kWebMercatorHalf) return out_gt[1];
  // Wider than half the world: the scene crosses the antimeridian or holds a
  // pole, and the suggested extent (hence pixel size) is meaningless. Measure
  // the pixel's footprint in EPSG:3857 across the scene instead and take the
  // median, which is what the suggestion gives for ordinary scenes.
  std::vector<double> sizes;
  constexpr int kSteps = 9;
  for (int j = 0; j < kSteps; ++j) {
    for (int i = 0; i < kSteps; ++i) {
      double px = (s.width - 1) * (i + 0.5) / kSteps, py = (s.height - 1) * (j + 0.5) / kSteps;
      double x[3] = {px, px + 1, px}, y[3] = {py, py, py + 1}, z[3] = {0, 0, 0};
      int ok[3] = {0, 0, 0};
      GDALGenImgProjTransform(t, FALSE, 3, x, y, z, ok);
      if (!ok[0] || !ok[1] || !ok[2]) continue;
      double ax = x[1] - x[0], ay = y[1] - y[0], bx = x[2] - x[0], by = y[2] - y[0];
      // Skip samples torn by the antimeridian or past Web Mercator's edge.
      if (std::abs(ax) > TileGrid::kWebMercatorHalf || std::abs(bx) > TileGrid::kWebMercatorHalf ||
          std::abs(y[0]) > TileGrid::kWebMercatorHalf)
        continue;
      sizes.push_back(std::sqrt(std::abs(ax * by - ay * bx)));
    }
  }
  if (sizes.empty()) return out_gt[1];
  std::nth_element(sizes.begin(), sizes.begin() + sizes.size() / 2, sizes.end());
  return sizes[sizes.size() / 2];
}

// Max-zoom tiles that intersect the footprint, found by descending the
// quadtree: subtrees wholly inside are taken without further tests.
void collect_tiles(const TileGrid& grid, OGRPreparedGeometry* fp, int max_zoom, int z, int64_t x,
                   int64_t y, std::vector<std::pair<int64_t, int64_t>>* out) {
  if (x >= grid.matrix_width(z) || y >= grid.matrix_height(z)) return;
  Bounds b = grid.tile_bounds({z, x, y});
  // Shrink a hair so tiles that only touch the footprint do not count.
  double eps = b.width() * 1e-7;
  Bounds inner{b.min_x + eps, b.min_y + eps, b.max_x - eps, b.max_y - eps};
  auto poly = bounds_polygon(inner);
  if (!OGRPreparedGeometryIntersects(fp, OGRGeometry::ToHandle(poly.get()))) return;
  if (z == max_zoom) {
    out->emplace_back(x, y);
    return;
  }
  if (OGRPreparedGeometryContains(fp, OGRGeometry::ToHandle(poly.get()))) {
    int s = max_zoom - z;
    int64_t x0 = x << s, y0 = y << s;
    int64_t x1 = std::min((x + 1) << s, grid.matrix_width(max_zoom));
    int64_t y1 = std::min((y + 1) << s, grid.matrix_height(max_zoom));
    for (int64_t yy = y0; yy < y1; ++yy)
      for (int64_t xx = x0; xx < x1; ++xx) out->emplace_back(xx, yy);
    return;
  }
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx)
      collect_tiles(grid, fp, max_zoom, z + 1, 2 * x + dx, 2 * y + dy, out);
}

Result<std::vector<BandMap>> resolve_bands(const SourceDef& def, const SourceInfo& info) {
  std::vector<BandMap> maps;
  if (def.bands.empty()) {
    for (size_t i = 0; i < info.bands.size(); ++i)
      maps.push_back({info.bands[i], static_cast<int>(i)});
  } else {
    maps = def.bands;
  }
  return maps;
}

}  // namespace

int zoom_for_pixel_size(double pixel_size, int tile_size) {
  const double initial = 2 * M_PI * 6378137.0 / tile_size;
  for (int i = 0; i < 32; ++i) {
    if (pixel_size > initial / std::ldexp(1.0, i)) return std::max(0, i - 1);
  }
  return 31;
}

Result<Plan> make_plan(const IngestDefinition& def, const PlanOptions& options) {
  init_gdal();
  KILN_RETURN_IF_ERROR(validate(def));
  Plan plan;
  plan.def = def;
  const OutputDef& out = def.output;
  const bool zoomed = out.layout == Layout::kZoomed;
  const int ts = out.tile_size;

  // 1. Sources: metadata, bands, footprints.
  std::vector<GeometryPtr> footprints;
  for (size_t i = 0; i < def.sources.size(); ++i) {
    const SourceDef& sd = def.sources[i];
    SourceRequest req;
    req.uri = sd.uri;
    for (const BandMap& m : sd.bands) req.bands.push_back(m.source_band);
    req.crs = sd.crs;
    req.extent = sd.extent;
    req.nodata = sd.nodata;
    KILN_ASSIGN_OR_RETURN(SourceInfo info, inspect_source(req));
    if (info.paletted && (def.output.resample != WarpResample::kNearest ||
                          (def.output.pyramid_resample != PyramidResample::kMode &&
                           def.output.pyramid_resample != PyramidResample::kNearest))) {
      // Interpolating colour-table indices invents classes that are not there.
      return invalid_argument(
          "source '" + sd.uri + "' is paletted (its pixels are colour-table indices, i.e. " +
          "classes): resampling them with " + warp_resample_name(def.output.resample) + "/" +
          pyramid_resample_name(def.output.pyramid_resample) +
          " would invent classes; use resample nearest and pyramid_resample mode " +
          "(--resample nearest --pyramid-resample mode), or expand the palette first " +
          "(gdal_translate -expand rgb)");
    }
    SourcePlan sp;
    sp.def = sd;
    KILN_ASSIGN_OR_RETURN(sp.bands, resolve_bands(sd, info));
    sp.info = std::move(info);
    GeometryPtr fp;
    if (zoomed) {
      KILN_ASSIGN_OR_RETURN(fp, web_mercator_footprint(sp.info));
    } else {
      if (!sp.info.has_geotransform) {
        // Without georeferencing the floating layout uses pixel coordinates.
        sp.info.geotransform = {0, 1, 0, 0, 0, -1};
        sp.info.has_geotransform = true;
      }
      fp = native_footprint(sp.info);
    }
    sp.bounds = envelope_of(*fp);
    footprints.push_back(std::move(fp));
    plan.sources.push_back(std::move(sp));
  }

  // 2. Output bands, cell type, nodata, encoding.
  int bands = 0;
  for (const auto& s : plan.sources)
    for (const auto& m : s.bands) bands = std::max(bands, m.target + 1);
  std::vector<bool> fed(bands, false);
  for (const auto& s : plan.sources)
    for (const auto& m : s.bands) fed[m.target] = true;
  for (int b = 0; b < bands; ++b) {
    if (!fed[b]) {
      return invalid_argument("output band " + std::to_string(b) +
                              " has no source band feeding it (output bands count from 0; check "
                              "the sources' bands and target_bands)");
    }
  }
  plan.bands = bands;
  plan.cell_type = out.cell_type ? *out.cell_type : plan.sources[0].info.type;
  plan.nodata = out.nodata ? out.nodata : plan.sources[0].info.nodata[0];
  if (plan.nodata) {
    double nd = *plan.nodata;
    if (std::isnan(nd) ? !is_float(plan.cell_type)
                       : (nd < cell_min(plan.cell_type) || nd > cell_max(plan.cell_type))) {
      return invalid_argument("nodata " + std::to_string(nd) + " cannot be stored in " +
                              cell_type_name(plan.cell_type) +
                              " cells: set output.nodata (--nodata) or output.cell_type");
    }
  }
  if (out.auto_format) {
    // png for 8-bit grey or RGB (smaller, and what map viewers show as it
    // is); tif for the rest: any cell type and band count, georeferenced,
    // with nodata (a float DEM, a uint16 or multi-band analytic scene, whose
    // values a viewer would otherwise show raw).
    plan.def.output.encoding.format =
        auto_format_is_png(plan.cell_type, bands) ? TileFormat::kPng : TileFormat::kTiff;
  }
  Status enc = check_encodable(plan.def.output.encoding.format, plan.cell_type, bands);
  if (!enc.is_ok()) {
    // The cell type and band count come from the sources: name them.
    std::string from = "'" + plan.sources[0].info.uri + "'";
    if (plan.sources.size() > 1)
      from += " and " + std::to_string(plan.sources.size() - 1) + " more source(s)";
    return Status(enc.code(), "output.encoding: " + enc.message() + " (the layer from " + from +
                                  "; leave the format out and tif is picked)");
  }
  plan.band_names = out.band_names;
  if (plan.band_names.empty()) {
    plan.band_names.assign(bands, "");
    for (const auto& s : plan.sources) {
      for (size_t i = 0; i < s.bands.size(); ++i) {
        std::string& n = plan.band_names[s.bands[i].target];
        if (!n.empty()) continue;
        const std::string& d = s.info.band_descriptions[i];
        n = d.empty() ? "band " + std::to_string(s.bands[i].source_band) : d;
      }
    }
  }

  // 3. The grid and zoom range.
  if (zoomed) {
    plan.grid = TileGrid::web_mercator(ts);
    int auto_max = 0;
    for (const auto& s : plan.sources) {
      KILN_ASSIGN_OR_RETURN(double px, web_mercator_pixel_size(s.info));
      auto_max = std::max(auto_max, zoom_for_pixel_size(px, ts));
    }
    plan.native_zoom = auto_max;
    plan.max_zoom = out.max_zoom ? *out.max_zoom : auto_max;
  } else {
    const SourceInfo& first = plan.sources[0].info;
    for (const auto& s : plan.sources) {
      if (s.info.crs_wkt != first.crs_wkt) {
        return invalid_argument("floating layout: source '" + s.info.uri +
                                "' is in a different CRS than '" + first.uri +
                                "'; the floating layout does not reproject (use zoomed)");
      }
    }
    double rx = std::numeric_limits<double>::infinity(), ry = rx;
    Bounds ext{rx, rx, -rx, -rx};
    for (const auto& s : plan.sources) {
      const auto& g = s.info.geotransform;
      rx = std::min(rx, std::hypot(g[1], g[4]));
      ry = std::min(ry, std::hypot(g[2], g[5]));
      ext.min_x = std::min(ext.min_x, s.bounds.min_x);
      ext.min_y = std::min(ext.min_y, s.bounds.min_y);
      ext.max_x = std::max(ext.max_x, s.bounds.max_x);
      ext.max_y = std::max(ext.max_y, s.bounds.max_y);
    }
    // Round up, but forgive floating-point noise of a millionth of a pixel.
    auto pixels = [](double span, double res) {
      return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(span / res - 1e-6)));
    };
    int64_t wpx = pixels(ext.width(), rx), hpx = pixels(ext.height(), ry);
    int native = TileGrid::floating_levels(wpx, hpx, ts);
    plan.native_zoom = native;
    plan.max_zoom = out.max_zoom ? *out.max_zoom : native;
    if (plan.max_zoom > native) {
      return invalid_argument("output.zoom.max: " + std::to_string(plan.max_zoom) +
                              " is finer than the sources' resolution; the floating layout's " +
                              "native max zoom is " + std::to_string(native));
    }
    plan.grid =
        TileGrid::floating(ext.min_x, ext.max_y, rx, ry, wpx, hpx, native, ts, first.crs_wkt);
  }
  plan.min_zoom = out.min_zoom ? *out.min_zoom : 0;
  if (!out.pyramid) plan.min_zoom = plan.max_zoom;
  if (plan.min_zoom > plan.max_zoom) {
    return invalid_argument("output.zoom.min: " + std::to_string(plan.min_zoom) +
                            " is above the max zoom " + std::to_string(plan.max_zoom) +
                            (out.max_zoom ? "" : " chosen from the source resolution"));
  }

  // 4. Tiles at max zoom, from the union of footprints (grown by a pixel so
  // that resampling reach and densification never lose an edge tile).
  auto all = std::make_unique<OGRMultiPolygon>();
  for (const auto& fp : footprints) {
    OGRwkbGeometryType t = wkbFlatten(fp->getGeometryType());
    if (t == wkbPolygon)
      all->addGeometry(fp.get());
    else if (t == wkbMultiPolygon)
      for (const auto* p : *fp->toMultiPolygon()) all->addGeometry(p);
  }
  const double px = plan.grid.resolution_x(plan.max_zoom);
  GeometryPtr grown(all->Buffer(px, 2));
  if (!grown) grown.reset(all->clone());
  plan.extent = envelope_of(*all);
  plan.wgs84 = wgs84_envelope(*all, plan.grid.crs_wkt());
  PreparedPtr prepared(OGRCreatePreparedGeometry(OGRGeometry::ToHandle(grown.get())));
  std::vector<std::pair<int64_t, int64_t>> keys;
  collect_tiles(plan.grid, prepared.get(), plan.max_zoom, 0, 0, 0, &keys);
  if (keys.empty()) return empty_error("the sources cover no tile of the layer's grid");

  // 5. Partition depth: within the memory budget, and shallow enough to keep
  // every thread busy.
  const uint64_t px_bytes = static_cast<uint64_t>(bands) * cell_bytes(plan.cell_type) + 1;
  int depth = std::min(kMaxRegionDepth, plan.max_zoom);
  while (depth > 0 &&
         (static_cast<uint64_t>(ts) << depth) * (static_cast<uint64_t>(ts) << depth) * px_bytes >
             kRegionBudgetBytes) {
    --depth;
  }
  auto count_regions = [&](int d) {
    std::set<std::pair<int64_t, int64_t>> r;
    for (auto [x, y] : keys) r.emplace(x >> d, y >> d);
    return static_cast<int>(r.size());
  };
  while (depth > 1 && count_regions(depth) < 2 * options.threads) --depth;
  plan.region_zoom = plan.max_zoom - depth;
  plan.top_zoom = std::max(plan.region_zoom, plan.min_zoom);

  // 6. Levels and partitions.
  for (int z = plan.min_zoom; z <= plan.max_zoom; ++z) {
    int s = plan.max_zoom - z;
    std::set<std::pair<int64_t, int64_t>> at;
    for (auto [x, y] : keys) at.emplace(x >> s, y >> s);
    LevelPlan lp;
    lp.zoom = z;
    lp.tiles = static_cast<int64_t>(at.size());
    lp.range.z = z;
    lp.range.min_x = lp.range.min_y = std::numeric_limits<int64_t>::max();
    lp.range.max_x = lp.range.max_y = std::numeric_limits<int64_t>::min();
    for (auto [x, y] : at) {
      lp.range.min_x = std::min(lp.range.min_x, x);
      lp.range.max_x = std::max(lp.range.max_x, x);
      lp.range.min_y = std::min(lp.range.min_y, y);
      lp.range.max_y = std::max(lp.range.max_y, y);
    }
    lp.resolution = plan.grid.resolution_x(z);
    plan.levels.push_back(lp);
  }
  // Max-zoom keys grouped by partition, so counting stays linear in keys.
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>> members;
  for (auto [x, y] : keys) members[{x >> depth, y >> depth}].emplace_back(x, y);
  for (const auto& [xy, own] : members) {
    PartitionPlan p;
    p.region = {plan.region_zoom, xy.first, xy.second};
    // Planned tiles at every level this partition builds.
    for (int z = plan.top_zoom; z <= plan.max_zoom; ++z) {
      int s = plan.max_zoom - z;
      std::set<std::pair<int64_t, int64_t>> at;
      for (auto [x, y] : own) at.emplace(x >> s, y >> s);
      p.tiles += static_cast<int64_t>(at.size());
    }
    Bounds rb = plan.grid.tile_bounds(p.region);
    auto rpoly = bounds_polygon(rb);
    for (size_t i = 0; i < plan.sources.size(); ++i) {
      if (!footprints[i]->Intersects(rpoly.get())) {
        // Grown footprints may still reach: test the envelope with a margin.
        Bounds sb = plan.sources[i].bounds;
        if (sb.max_x + px < rb.min_x || sb.min_x - px > rb.max_x || sb.max_y + px < rb.min_y ||
            sb.min_y - px > rb.max_y)
          continue;
      }
      p.sources.push_back(static_cast<int>(i));
      const SourcePlan& sp = plan.sources[i];
      double area = std::max(1e-12, sp.bounds.width() * sp.bounds.height());
      double ox =
          std::max(0.0, std::min(rb.max_x, sp.bounds.max_x) - std::max(rb.min_x, sp.bounds.min_x));
      double oy =
          std::max(0.0, std::min(rb.max_y, sp.bounds.max_y) - std::max(rb.min_y, sp.bounds.min_y));
      p.read_bytes +=
          static_cast<uint64_t>(sp.info.decoded_bytes() * std::min(1.0, ox * oy / area));
    }
    plan.read_bytes += p.read_bytes;
    plan.partitions.push_back(p);
  }
  const int order = std::max(1, plan.region_zoom);
  auto key = [&](const PartitionPlan& p) {
    return def.output.curve == Curve::kHilbert
               ? hilbert_index(order, static_cast<uint32_t>(p.region.x),
                               static_cast<uint32_t>(p.region.y))
               : morton_index(static_cast<uint32_t>(p.region.x), static_cast<uint32_t>(p.region.y));
  };
  std::stable_sort(plan.partitions.begin(), plan.partitions.end(),
                   [&](const PartitionPlan& a, const PartitionPlan& b) { return key(a) < key(b); });
  for (size_t i = 0; i < plan.partitions.size(); ++i)
    plan.partitions[i].index = static_cast<int64_t>(i);
  return plan;
}

bool auto_format_is_png(CellType type, int bands) {
  return type == CellType::kUInt8 && (bands == 1 || bands == 3) &&
         check_encodable(TileFormat::kPng, type, bands).is_ok();
}

std::string format_choice(const Plan& plan) {
  if (!plan.def.output.auto_format) return "";
  const std::string layer = std::to_string(plan.bands) +
                            (plan.bands == 1 ? " band of " : " bands of ") +
                            cell_type_name(plan.cell_type);
  if (plan.def.output.encoding.format == TileFormat::kPng) {
    return "png (the default; it holds " + layer + ")";
  }
  return std::string(tile_extension(plan.def.output.encoding.format)) +
         " (picked: the default png is for 1 or 3 bands of uint8, not " + layer + ")";
}

std::vector<std::string> plan_warnings(const Plan& plan) {
  std::vector<std::string> out;
  const int over = plan.max_zoom - plan.native_zoom;
  if (over > kOversampleLevelsWarned) {
    int64_t finer = 0;
    for (const LevelPlan& l : plan.levels) {
      if (l.zoom > plan.native_zoom) finer += l.tiles;
    }
    out.push_back("max zoom " + std::to_string(plan.max_zoom) + " oversamples the sources by " +
                  std::to_string(over) + " levels: their resolution gives zoom " +
                  std::to_string(plan.native_zoom) + ", and the " + std::to_string(over) +
                  " finer levels are " + std::to_string(finer) + " of the " +
                  std::to_string(plan.total_tiles()) +
                  " planned tiles with no more detail (leave the max zoom out for " +
                  std::to_string(plan.native_zoom) + ", or set at most " +
                  std::to_string(plan.native_zoom + kOversampleLevelsWarned) + ")");
  }
  return out;
}

nlohmann::json plan_to_json(const Plan& plan) {
  nlohmann::json j;
  j["layer"] = plan.def.layer;
  j["environment"] = plan.def.output.environment;
  j["layout"] = layout_name(plan.def.output.layout);
  j["tile_size"] = plan.grid.tile_size();
  j["format"] = tile_extension(plan.def.output.encoding.format);
  j["cell_type"] = cell_type_name(plan.cell_type);
  j["bands"] = plan.bands;
  j["zoom"] = {{"min", plan.min_zoom}, {"max", plan.max_zoom}, {"native", plan.native_zoom}};
  j["warnings"] = plan_warnings(plan);
  j["partition_zoom"] = plan.region_zoom;
  j["partitions"] = plan.partitions.size();
  j["partition_size_tiles"] = 1 << (plan.max_zoom - plan.region_zoom);
  j["read_bytes"] = plan.read_bytes;
  uint64_t src_bytes = 0;
  for (const auto& s : plan.sources) src_bytes += s.info.file_size;
  j["source_file_bytes"] = src_bytes;
  j["tiles"] = plan.total_tiles();
  nlohmann::json levels = nlohmann::json::array();
  for (const auto& l : plan.levels) {
    levels.push_back({{"zoom", l.zoom},
                      {"tiles", l.tiles},
                      {"resolution", l.resolution},
                      {"min_x", l.range.min_x},
                      {"min_y", l.range.min_y},
                      {"max_x", l.range.max_x},
                      {"max_y", l.range.max_y}});
  }
  j["levels"] = levels;
  return j;
}

}  // namespace kiln::ingest

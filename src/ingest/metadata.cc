#include "ingest/metadata.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <ogr_spatialref.h>

#include "raster/codec.h"

#ifndef KILN_VERSION
#define KILN_VERSION "0.1.0"
#endif

namespace kiln::ingest {
namespace {

nlohmann::json number_or_nan(std::optional<double> v) {
  if (!v) return nullptr;
  if (std::isnan(*v)) return "nan";
  return *v;
}

}  // namespace

nlohmann::json build_metadata(const Plan& plan, const std::vector<PartitionResult>& partitions,
                              const std::map<int, LevelResult>& levels,
                              const std::vector<std::optional<std::string>>& sha256) {
  using nlohmann::json;
  const OutputDef& out = plan.def.output;
  json m;
  m["kiln_version"] = KILN_VERSION;
  m["layer"] = plan.def.layer;
  m["environment"] = out.environment;
  m["layout"] = layout_name(out.layout);
  json crs = {{"wkt", plan.grid.crs_wkt().empty() ? json(nullptr) : json(plan.grid.crs_wkt())},
              {"epsg", nullptr}};
  if (plan.grid.is_web_mercator()) {
    crs["epsg"] = 3857;
  } else if (!plan.sources.empty() && plan.sources[0].info.epsg) {
    crs["epsg"] = *plan.sources[0].info.epsg;
  }
  m["crs"] = crs;
  m["tile_size"] = plan.grid.tile_size();
  m["format"] = tile_extension(out.encoding.format);
  m["cell_type"] = cell_type_name(plan.cell_type);
  json bands = json::array();
  for (int b = 0; b < plan.bands; ++b) {
    json inputs = json::array();
    for (const auto& s : plan.sources)
      for (const auto& bm : s.bands)
        if (bm.target == b) inputs.push_back({{"uri", s.info.uri}, {"band", bm.source_band}});
    bands.push_back({{"index", b + 1},
                     {"name", plan.band_names[b]},
                     {"source", inputs.empty() ? json(nullptr) : inputs[0]},
                     {"inputs", inputs}});
  }
  m["bands"] = bands;
  m["nodata"] = number_or_nan(plan.nodata);
  m["zoom"] = {{"min", plan.min_zoom}, {"max", plan.max_zoom}};
  json extent = {
      {"layer_crs", {plan.extent.min_x, plan.extent.min_y, plan.extent.max_x, plan.extent.max_y}},
      {"wgs84", nullptr}};
  if (plan.wgs84) extent["wgs84"] = *plan.wgs84;
  m["extent"] = extent;
  m["tile_matrix"] = {
      {"origin", {plan.grid.origin_x(), plan.grid.origin_y()}},
      {"resolution_at_max_zoom",
       {plan.grid.resolution_x(plan.max_zoom), plan.grid.resolution_y(plan.max_zoom)}},
      {"y_axis", "down"}};
  json lv = json::array();
  for (int z = plan.min_zoom; z <= plan.max_zoom; ++z) {
    auto it = levels.find(z);
    LevelResult l = it == levels.end() ? LevelResult{} : it->second;
    json e = {{"zoom", z},
              {"resolution", plan.grid.resolution_x(z)},
              {"tiles", l.tiles},
              {"bytes", l.bytes}};
    if (l.tiles) {
      e["min_x"] = l.range.min_x;
      e["min_y"] = l.range.min_y;
      e["max_x"] = l.range.max_x;
      e["max_y"] = l.range.max_y;
    } else {
      e["min_x"] = e["min_y"] = e["max_x"] = e["max_y"] = nullptr;
    }
    lv.push_back(e);
  }
  m["levels"] = lv;
  json stats = json::array();
  for (int b = 0; b < plan.bands; ++b) {
    std::vector<const BandStats*> parts;
    for (const auto& p : partitions)
      if (b < static_cast<int>(p.stats.size())) parts.push_back(&p.stats[b]);
    Histogram h;
    BandStats s = merge_band_stats(parts, out.histogram_buckets, &h);
    stats.push_back({{"band", b + 1},
                     {"count", s.count},
                     {"min", s.count ? json(s.min) : json(nullptr)},
                     {"max", s.count ? json(s.max) : json(nullptr)},
                     {"mean", s.count ? json(s.mean()) : json(nullptr)},
                     {"stddev", s.count ? json(s.stddev()) : json(nullptr)},
                     {"histogram", {{"min", h.min}, {"max", h.max}, {"buckets", h.buckets}}}});
  }
  m["statistics"] = stats;
  m["statistics_zoom"] = plan.max_zoom;
  json sources = json::array();
  for (size_t i = 0; i < plan.sources.size(); ++i) {
    const SourceInfo& s = plan.sources[i].info;
    sources.push_back(
        {{"uri", s.uri},
         {"size", s.file_size},
         {"sha256", i < sha256.size() && sha256[i] ? json(*sha256[i]) : json(nullptr)},
         {"width", s.width},
         {"height", s.height},
         {"bands", s.band_count},
         {"cell_type", cell_type_name(s.type)},
         {"crs_epsg", s.epsg ? json(*s.epsg) : json(nullptr)}});
  }
  m["sources"] = sources;
  m["resample"] = warp_resample_name(out.resample);
  m["pyramid_resample"] = pyramid_resample_name(out.pyramid_resample);
  m["definition"] = to_json(plan.def);
  return m;
}

WmsWindow wms_window(const TileRange& r, int levels_below) {
  WmsWindow w;
  if (r.empty()) return w;
  const int64_t wide = std::max(r.max_x - r.min_x + 1, r.max_y - r.min_y + 1);
  int k = 0;
  while (k < levels_below && (int64_t{2} << k) <= wide) ++k;
  const int64_t align = int64_t{1} << k;
  w.overviews = k;
  w.tile_x = r.min_x / align * align;
  w.tile_y = r.min_y / align * align;
  w.tiles_x = r.max_x - w.tile_x + 1;
  w.tiles_y = r.max_y - w.tile_y + 1;
  return w;
}

std::string gdal_wms_xml(const Plan& plan, const std::string& current_dir) {
  const TileGrid& g = plan.grid;
  const int ts = g.tile_size();
  const bool alpha = plan.def.output.encoding.format != TileFormat::kTiff;
  int bands =
      plan.bands == 1 && plan.def.output.encoding.format == TileFormat::kWebp ? 3 : plan.bands;
  if (alpha) bands += 1;
  // The tiles at max zoom that the layer's extent covers, not the grid's
  // whole square: gdalinfo then shows a raster of the data's size, and
  // statistics read the data, not a world of empty tiles.
  TileRange range;
  for (const LevelPlan& l : plan.levels) {
    if (l.zoom == plan.max_zoom) range = l.range;
  }
  WmsWindow w = wms_window(range, plan.max_zoom - plan.min_zoom);
  if (range.empty()) {  // nothing planned: the whole grid
    w.tiles_x = g.matrix_width(plan.max_zoom);
    w.tiles_y = g.matrix_height(plan.max_zoom);
    w.overviews = plan.max_zoom - plan.min_zoom;
  }
  const double rx = g.resolution_x(plan.max_zoom), ry = g.resolution_y(plan.max_zoom);
  const double ulx = g.origin_x() + static_cast<double>(w.tile_x * ts) * rx;
  const double uly = g.origin_y() - static_cast<double>(w.tile_y * ts) * ry;
  std::ostringstream x;
  x.precision(17);
  x << "<GDAL_WMS>\n"
    << "  <Service name=\"TMS\">\n"
    << "    <ServerUrl>file://" << current_dir << "/${z}/${x}/${y}."
    << tile_extension(plan.def.output.encoding.format) << "</ServerUrl>\n"
    << "  </Service>\n"
    << "  <DataWindow>\n"
    << "    <UpperLeftX>" << ulx << "</UpperLeftX>\n"
    << "    <UpperLeftY>" << uly << "</UpperLeftY>\n"
    << "    <LowerRightX>" << ulx + static_cast<double>(w.tiles_x * ts) * rx << "</LowerRightX>\n"
    << "    <LowerRightY>" << uly - static_cast<double>(w.tiles_y * ts) * ry << "</LowerRightY>\n"
    << "    <SizeX>" << w.tiles_x * ts << "</SizeX>\n"
    << "    <SizeY>" << w.tiles_y * ts << "</SizeY>\n"
    << "    <TileX>" << w.tile_x << "</TileX>\n"
    << "    <TileY>" << w.tile_y << "</TileY>\n"
    << "    <TileLevel>" << plan.max_zoom << "</TileLevel>\n"
    << "    <YOrigin>top</YOrigin>\n"
    << "  </DataWindow>\n";
  if (g.is_web_mercator()) {
    x << "  <Projection>EPSG:3857</Projection>\n";
  } else if (!g.crs_wkt().empty()) {
    std::string wkt = g.crs_wkt();
    std::string esc;
    for (char c : wkt) {
      if (c == '<')
        esc += "&lt;";
      else if (c == '>')
        esc += "&gt;";
      else if (c == '&')
        esc += "&amp;";
      else if (c == '"')
        esc += "&quot;";
      else
        esc += c;
    }
    x << "  <Projection>" << esc << "</Projection>\n";
  }
  x << "  <BlockSizeX>" << ts << "</BlockSizeX>\n"
    << "  <BlockSizeY>" << ts << "</BlockSizeY>\n"
    << "  <BandsCount>" << bands << "</BandsCount>\n"
    << "  <DataType>" << GDALGetDataTypeName(to_gdal(plan.cell_type)) << "</DataType>\n"
    << "  <OverviewCount>" << w.overviews << "</OverviewCount>\n";
  if (plan.nodata) {
    x << "  <DataValues NoData=\"";
    if (std::isnan(*plan.nodata)) {
      x << "nan";
    } else {
      x << *plan.nodata;
    }
    x << "\"/>\n";
  }
  x << "  <ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes>\n"
    << "  <ZeroBlockOnServerException>true</ZeroBlockOnServerException>\n"
    << "</GDAL_WMS>\n";
  return x.str();
}

}  // namespace kiln::ingest

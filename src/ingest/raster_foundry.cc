// Raster Foundry -> Kiln. Raster Foundry's batch ingest (Scala, GeoTrellis)
// read this JSON with lenient decoders; we accept the same documents, map
// each field onto Kiln's definition, and refuse only what Kiln cannot do
// (object-store catalogs, reprojection into a non-Web-Mercator grid, int8,
// nodata patterns that differ per band). Every rule is in docs/definition.md.
#include "ingest/raster_foundry.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <utility>

#include "common/log.h"
#include "ingest/json_fields.h"

namespace kiln::ingest {

using nlohmann::json;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// ---------------------------------------------------------------------------
// Typed access with Raster Foundry field paths. Unlike Kiln's own reader this
// one tolerates unknown members (Raster Foundry's decoders did) and only
// logs them, so a document that worked there still loads here.

using json_fields::element_path;
using json_fields::member;
using json_fields::member_path;
using json_fields::number_text;
using json_fields::read_bool;
using json_fields::read_finite_number;
using json_fields::read_int;
using json_fields::read_string;
using json_fields::wrong_type;

// Type errors show the offending JSON alone: "got \"false\"", "got [1,2,3]".
constexpr json_fields::Got kGot = json_fields::Got::kValueOnly;

Status required(const json* v, const std::string& path) {
  return v != nullptr ? Status::ok() : invalid_argument(path + ": required");
}

Status expect_object(const json& v, const std::string& path,
                     std::initializer_list<std::string_view> known) {
  if (!v.is_object()) return wrong_type(path, "an object", v, kGot);
  for (const auto& item : v.items()) {
    if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
      log::warn("Raster Foundry definition: ignoring unknown field " +
                member_path(path, item.key()));
    }
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// URIs.

// Lower-case scheme of "scheme://..." or "file:...", "" for paths and GDAL
// names ("/vsis3/...", "NETCDF:f.nc:var" has no "//" and stays a name).
std::string scheme_of(std::string_view uri) {
  const size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return "";
  if (!std::isalpha(static_cast<unsigned char>(uri[0]))) return "";
  for (size_t i = 1; i < colon; ++i) {
    const unsigned char c = static_cast<unsigned char>(uri[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return "";
  }
  const std::string scheme = lower(uri.substr(0, colon));
  if (uri.substr(colon, 3) != "://" && scheme != "file") return "";
  return scheme;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Raster Foundry decoded %XX escapes (java.net.URI.getPath, URLDecoder)
// before it opened files and S3 keys; GDAL wants them decoded too.
// True if `s` is well-formed UTF-8 (no overlongs or surrogates checked
// beyond the lead/continuation structure, which is what JSON output needs).
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80           ? 1
                  : (c >> 5) == 0x6  ? 2
                  : (c >> 4) == 0xE  ? 3
                  : (c >> 3) == 0x1E ? 4
                                     : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Decodes %XX escapes. Refuses results that no path can be: an embedded
// NUL (GDAL would silently open a shorter name) or bytes that are not UTF-8
// (they could not be written back into JSON metadata).
Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  if (out.find('\0') != std::string::npos) {
    return invalid_argument("URI decodes to a path with a NUL byte (%00): " + std::string(s));
  }
  if (!valid_utf8(out)) {
    return invalid_argument("URI decodes to bytes that are not UTF-8: " + std::string(s));
  }
  return out;
}

// file:///abs/path, file://localhost/abs/path and Java's file:/abs/path.
Result<std::string> file_uri_path(std::string_view uri) {
  std::string_view rest = uri.substr(5);  // after "file:"
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    if (starts_with_ci(rest, "localhost/")) rest.remove_prefix(9);
  }
  if (rest.empty() || rest[0] != '/') {
    return invalid_argument("file URIs must name an absolute path on this machine " +
                            std::string("(file:///path); got ") + std::string(uri));
  }
  return percent_decode(rest);
}

bool is_web_mercator(std::string_view crs) { return lower(trim(crs)) == "epsg:3857"; }

bool same_crs(std::string_view a, std::string_view b) { return lower(trim(a)) == lower(trim(b)); }

// GeoTrellis wrote "epsg:32654"; GDAL's own spelling is "EPSG:32654".
std::string normalize_crs(std::string_view crs) {
  std::string c = trim(crs);
  if (starts_with_ci(c, "epsg:")) c.replace(0, 5, "EPSG:");
  return c;
}

// ---------------------------------------------------------------------------
// Output.

struct ResampleMapping {
  const char* name;  // GeoTrellis ResampleMethod, lower case
  WarpResample warp;
  PyramidResample pyramid;
};

// GeoTrellis used one method for both warping and pyramiding. Point methods
// warp with their Kiln namesake (CubicSpline with cubic: Kiln has no spline)
// and pyramid with average, Kiln's default for continuous data; nearest
// stays nearest on both so categorical data stays categorical. Aggregate
// methods only mean something when many pixels become one, i.e. building
// the pyramid; the warp to the native max zoom is then nearest.
constexpr ResampleMapping kResampleMappings[] = {
    {"nearestneighbor", WarpResample::kNearest, PyramidResample::kNearest},
    {"bilinear", WarpResample::kBilinear, PyramidResample::kAverage},
    {"cubicconvolution", WarpResample::kCubic, PyramidResample::kAverage},
    {"cubicspline", WarpResample::kCubic, PyramidResample::kAverage},
    {"lanczos", WarpResample::kLanczos, PyramidResample::kAverage},
    {"average", WarpResample::kNearest, PyramidResample::kAverage},
    {"mode", WarpResample::kNearest, PyramidResample::kMode},
    {"median", WarpResample::kNearest, PyramidResample::kMedian},
    {"max", WarpResample::kNearest, PyramidResample::kMax},
    {"min", WarpResample::kNearest, PyramidResample::kMin},
};

Status convert_resample(const json& v, const std::string& path, OutputDef* out) {
  std::string name;
  KILN_RETURN_IF_ERROR(read_string(v, path, &name, kGot));
  const std::string key = lower(name);
  for (const ResampleMapping& m : kResampleMappings) {
    if (key == m.name) {
      out->resample = m.warp;
      out->pyramid_resample = m.pyramid;
      return Status::ok();
    }
  }
  if (key == "sum") {
    return invalid_argument(path + ": Sum is not supported (a pyramid of sums outgrows the " +
                            std::string("cell type; Kiln pyramids with average, mode, median, ") +
                            "min, max or nearest)");
  }
  return invalid_argument(path + ": unknown resample method '" + name +
                          "' (expected NearestNeighbor, Bilinear, CubicConvolution, CubicSpline, "
                          "Lanczos, Average, Mode, Median, Max or Min)");
}

// Accepts Raster Foundry's strings ("ZCurveKeyIndexMethod") and GeoTrellis
// ETL's objects ({"type": "zorder"}). The key index only decides how Kiln
// groups tiles into partitions; tiles land in z/x/y whatever it is.
Status convert_key_index(const json& v, const std::string& path, Curve* curve) {
  std::string name;
  std::string name_path = path;
  if (v.is_object()) {
    KILN_RETURN_IF_ERROR(expect_object(v, path, {"type", "temporalResolution"}));
    name_path = path + ".type";
    const json* type = member(v, "type");
    KILN_RETURN_IF_ERROR(required(type, name_path));
    KILN_RETURN_IF_ERROR(read_string(*type, name_path, &name, kGot));
  } else {
    KILN_RETURN_IF_ERROR(read_string(v, path, &name, kGot));
  }
  const std::string key = lower(name);
  if (key == "zcurvekeyindexmethod" || key == "zorder" || key == "zcurve") {
    *curve = Curve::kZOrder;
  } else if (key == "hilbertkeyindexmethod" || key == "hilbert") {
    *curve = Curve::kHilbert;
  } else if (key == "rowmajorkeyindexmethod" || key == "rowmajor") {
    // Row-major runs of tiles make long thin partitions; Z-order keeps the
    // same tiles in compact blocks.
    *curve = Curve::kZOrder;
  } else {
    return invalid_argument(name_path + ": unknown key index method '" + name +
                            "' (expected ZCurveKeyIndexMethod, HilbertKeyIndexMethod or "
                            "RowMajorKeyIndexMethod)");
  }
  return Status::ok();
}

bool fits(double v, CellType t) {
  if (std::isnan(v)) return is_float(t);
  if (v < cell_min(t) || v > cell_max(t)) return false;
  return is_float(t) || v == std::trunc(v);
}

// ndPattern {"pattern": {"<band>": value, ...}}: Raster Foundry marked a pixel
// nodata when every listed band held its value. Kiln's source nodata marks a
// pixel invalid when every read band holds the nodata value, the same test
// when the values agree; differing values have no Kiln equivalent.
Status convert_nodata_pattern(const json& v, const std::string& path, CellType type,
                              std::optional<double>* value) {
  KILN_RETURN_IF_ERROR(expect_object(v, path, {"pattern"}));
  const std::string ppath = path + ".pattern";
  const json* pattern = member(v, "pattern");
  KILN_RETURN_IF_ERROR(required(pattern, ppath));
  if (!pattern->is_object())
    return wrong_type(ppath, "an object {\"<band>\": value}", *pattern, kGot);
  std::optional<double> common;
  std::string first_key;
  for (const auto& [band, x] : pattern->items()) {
    const std::string bpath = ppath + "." + band;
    int band_index = 0;
    const auto [end, ec] = std::from_chars(band.data(), band.data() + band.size(), band_index);
    if (ec != std::errc() || end != band.data() + band.size() || band_index < 0) {
      return invalid_argument(bpath + ": pattern keys must be band numbers");
    }
    double d = 0;
    KILN_RETURN_IF_ERROR(read_finite_number(x, bpath, &d, kGot));
    if (!common) {
      common = d;
      first_key = band;
    } else if (*common != d) {
      return invalid_argument(ppath + ": per-band nodata patterns are not supported (band " +
                              first_key + " is " + number_text(*common) + ", band " + band +
                              " is " + number_text(d) +
                              "); Kiln needs one nodata value shared by all bands");
    }
  }
  if (common && !fits(*common, type)) {
    return invalid_argument(ppath + ": nodata " + number_text(*common) + " cannot be stored in " +
                            cell_type_name(type) + " cells (cellType)");
  }
  *value = common;  // an empty pattern masks nothing
  return Status::ok();
}

// What the sources of a layer need to know about its output.
struct ConvertedOutput {
  OutputDef def;
  std::string crs;                       // as written, for messages
  std::optional<double> pattern_nodata;  // from ndPattern, for every source
};

Result<ConvertedOutput> convert_output(const json& v, const std::string& path) {
  KILN_RETURN_IF_ERROR(
      expect_object(v, path,
                    {"uri", "crs", "cellType", "histogramBuckets", "tileSize", "pyramid", "native",
                     "ndPattern", "resampleMethod", "keyIndexMethod"}));
  ConvertedOutput out;
  OutputDef& o = out.def;
  // Raster Foundry's layers are GeoTrellis tiles of any type and band
  // count; of Kiln's tile formats only tif holds them all.
  o.encoding.format = TileFormat::kTiff;
  // Raster Foundry's default was NearestNeighbor (OutputDefinition.scala).
  o.resample = WarpResample::kNearest;
  o.pyramid_resample = PyramidResample::kNearest;

  const json* uri = member(v, "uri");
  KILN_RETURN_IF_ERROR(required(uri, path + ".uri"));
  std::string uri_text;
  KILN_RETURN_IF_ERROR(read_string(*uri, path + ".uri", &uri_text, kGot));
  Result<std::string> catalog = catalog_for_output_uri(uri_text);
  if (!catalog.is_ok()) return catalog.status().with_context(path + ".uri");
  o.catalog = *catalog;

  const json* crs = member(v, "crs");
  KILN_RETURN_IF_ERROR(required(crs, path + ".crs"));
  KILN_RETURN_IF_ERROR(read_string(*crs, path + ".crs", &out.crs, kGot));
  o.layout = is_web_mercator(out.crs) ? Layout::kZoomed : Layout::kFloating;

  const json* cell_type = member(v, "cellType");
  KILN_RETURN_IF_ERROR(required(cell_type, path + ".cellType"));
  std::string cell_type_text;
  KILN_RETURN_IF_ERROR(read_string(*cell_type, path + ".cellType", &cell_type_text, kGot));
  Result<GeoTrellisCellType> gt = parse_geotrellis_cell_type(cell_type_text);
  if (!gt.is_ok()) return gt.status().with_context(path + ".cellType");
  o.cell_type = gt->type;
  o.nodata = gt->nodata;

  if (const json* x = member(v, "histogramBuckets")) {
    KILN_RETURN_IF_ERROR(read_int(*x, path + ".histogramBuckets", &o.histogram_buckets, kGot));
  }
  if (const json* x = member(v, "tileSize")) {
    KILN_RETURN_IF_ERROR(read_int(*x, path + ".tileSize", &o.tile_size, kGot));
  }
  if (const json* x = member(v, "pyramid")) {
    KILN_RETURN_IF_ERROR(read_bool(*x, path + ".pyramid", &o.pyramid, kGot));
  }
  if (const json* x = member(v, "native")) {
    // Kiln always keeps the native resolution (the max zoom), so both
    // values mean the same; the flag is checked and otherwise ignored.
    bool native = false;
    KILN_RETURN_IF_ERROR(read_bool(*x, path + ".native", &native, kGot));
  }
  if (const json* x = member(v, "ndPattern")) {
    KILN_RETURN_IF_ERROR(
        convert_nodata_pattern(*x, path + ".ndPattern", gt->type, &out.pattern_nodata));
    // The cell type's own nodata (ud<N> or the GeoTrellis default) is what
    // Raster Foundry wrote for masked pixels; without one ("raw") the
    // pattern's value marks them.
    if (!o.nodata) o.nodata = out.pattern_nodata;
  }
  if (const json* x = member(v, "resampleMethod")) {
    KILN_RETURN_IF_ERROR(convert_resample(*x, path + ".resampleMethod", &o));
  }
  if (const json* x = member(v, "keyIndexMethod")) {
    KILN_RETURN_IF_ERROR(convert_key_index(*x, path + ".keyIndexMethod", &o.curve));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Sources.

Status convert_extent(const json& v, const std::string& path, std::array<double, 4>* e) {
  if (!v.is_array() || v.size() != 4) return wrong_type(path, "[xmin, ymin, xmax, ymax]", v, kGot);
  for (size_t i = 0; i < 4; ++i) {
    KILN_RETURN_IF_ERROR(read_finite_number(v[i], element_path(path, i), &(*e)[i], kGot));
  }
  return Status::ok();
}

// Checks a cellSize; Kiln reads the pixel size from the file, so the value
// is not kept. Raster Foundry's own examples give a negative height (rows
// run south), so only zero is refused.
Status check_cell_size(const json& v, const std::string& path) {
  KILN_RETURN_IF_ERROR(expect_object(v, path, {"width", "height"}));
  for (const char* key : {"width", "height"}) {
    const json* x = member(v, key);
    KILN_RETURN_IF_ERROR(required(x, member_path(path, key)));
    double d = 0;
    KILN_RETURN_IF_ERROR(read_finite_number(*x, member_path(path, key), &d, kGot));
    if (d == 0) return invalid_argument(member_path(path, key) + ": must not be 0");
  }
  return Status::ok();
}

// Output band names by Raster Foundry target index (1-based).
using BandNames = std::map<int, std::string>;

// bandMaps[{source, target: {name, index}}]: source counts from 1 (GDAL
// style) and so does target.index ("Starts at 1 to line up with source data
// like Landsat", TargetBand.scala; Ingest.scala subtracts 1 from both).
Status convert_band_maps(const json& v, const std::string& path, SourceDef* s, BandNames* names) {
  if (!v.is_array()) return wrong_type(path, "an array of {source, target}", v, kGot);
  if (v.empty()) return invalid_argument(path + ": must list at least one band");
  std::map<int, size_t> first_use;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string bpath = element_path(path, i);
    KILN_RETURN_IF_ERROR(expect_object(v[i], bpath, {"source", "target"}));
    const json* source = member(v[i], "source");
    KILN_RETURN_IF_ERROR(required(source, bpath + ".source"));
    int source_band = 0;
    KILN_RETURN_IF_ERROR(read_int(*source, bpath + ".source", &source_band, kGot));
    if (source_band < 1) {
      return invalid_argument(bpath + ".source: must be >= 1 (source bands count from 1); got " +
                              std::to_string(source_band));
    }
    const std::string tpath = bpath + ".target";
    const json* target = member(v[i], "target");
    KILN_RETURN_IF_ERROR(required(target, tpath));
    KILN_RETURN_IF_ERROR(expect_object(*target, tpath, {"name", "index"}));
    const json* index = member(*target, "index");
    KILN_RETURN_IF_ERROR(required(index, tpath + ".index"));
    int target_index = 0;
    KILN_RETURN_IF_ERROR(read_int(*index, tpath + ".index", &target_index, kGot));
    if (target_index < 1) {
      return invalid_argument(tpath + ".index: must be >= 1 (Raster Foundry counts target bands " +
                              "from 1); got " + std::to_string(target_index));
    }
    auto [it, inserted] = first_use.emplace(target_index, i);
    if (!inserted) {
      return invalid_argument(tpath + ".index: target band " + std::to_string(target_index) +
                              " is already fed by " + element_path(path, it->second) +
                              " of this source");
    }
    // Names are strings, but Raster Foundry's own tests also wrote numbers.
    const json* name = member(*target, "name");
    KILN_RETURN_IF_ERROR(required(name, tpath + ".name"));
    std::string name_text;
    if (name->is_number_integer()) {
      name_text = name->dump();
    } else {
      KILN_RETURN_IF_ERROR(read_string(*name, tpath + ".name", &name_text, kGot));
    }
    names->emplace(target_index, name_text);  // the first source to name a band wins
    s->bands.push_back({source_band, target_index - 1});
  }
  return Status::ok();
}

Result<SourceDef> convert_source(const json& v, const std::string& path, const ConvertedOutput& out,
                                 const std::string& output_path, BandNames* names) {
  KILN_RETURN_IF_ERROR(
      expect_object(v, path, {"uri", "extent", "extentCrs", "crs", "cellSize", "bandMaps"}));
  SourceDef s;
  const json* uri = member(v, "uri");
  KILN_RETURN_IF_ERROR(required(uri, path + ".uri"));
  std::string uri_text;
  KILN_RETURN_IF_ERROR(read_string(*uri, path + ".uri", &uri_text, kGot));
  Result<std::string> name = gdal_name_for_source_uri(uri_text);
  if (!name.is_ok()) return name.status().with_context(path + ".uri");
  s.uri = *name;

  std::string crs;
  if (const json* x = member(v, "crs")) {
    KILN_RETURN_IF_ERROR(read_string(*x, path + ".crs", &crs, kGot));
    if (trim(crs).empty()) return invalid_argument(path + ".crs: must not be empty");
    s.crs = normalize_crs(crs);
  }
  std::string extent_crs;
  if (const json* x = member(v, "extentCrs")) {
    KILN_RETURN_IF_ERROR(read_string(*x, path + ".extentCrs", &extent_crs, kGot));
  }
  if (const json* x = member(v, "extent")) {
    std::array<double, 4> e{};
    KILN_RETURN_IF_ERROR(convert_extent(*x, path + ".extent", &e));
    if (!crs.empty() && same_crs(extent_crs, crs)) {
      s.extent = e;
    } else {
      log::info(path + ".extent: not used (extentCrs '" + extent_crs + "' is not crs '" + crs +
                "'); Kiln reads the extent from the file");
    }
  }
  if (const json* x = member(v, "cellSize")) {
    KILN_RETURN_IF_ERROR(check_cell_size(*x, path + ".cellSize"));
  }
  const json* band_maps = member(v, "bandMaps");
  KILN_RETURN_IF_ERROR(required(band_maps, path + ".bandMaps"));
  KILN_RETURN_IF_ERROR(convert_band_maps(*band_maps, path + ".bandMaps", &s, names));

  if (out.def.layout == Layout::kFloating) {
    if (crs.empty()) {
      return invalid_argument(path + ".crs: required when " + output_path + ".crs (" + out.crs +
                              ") is not epsg:3857: Kiln keeps such a layer in its sources' own "
                              "CRS and must know that they match it");
    }
    if (!same_crs(crs, out.crs)) {
      return invalid_argument(path + ".crs: " + crs + " differs from " + output_path + ".crs " +
                              out.crs +
                              "; reprojection into a non-Web-Mercator grid is not supported "
                              "(use epsg:3857 to reproject, or the sources' own CRS)");
    }
  }
  s.nodata = out.pattern_nodata;
  return s;
}

// validate() speaks Kiln's field names; the checks it makes on fields that
// came straight from Raster Foundry are reported under their names there.
Status to_raster_foundry_paths(const Status& st, const std::string& layer_path) {
  static const std::pair<const char*, const char*> kFieldNames[] = {
      {"layer", ".id"},
      {"output.tile_size", ".output.tileSize"},
      {"output.histogram_buckets", ".output.histogramBuckets"},
      {"output.cell_type", ".output.cellType"},
      {"output.nodata", ".output.cellType"},
  };
  const std::string& m = st.message();
  const size_t colon = m.find(": ");
  const std::string field = colon == std::string::npos ? "" : m.substr(0, colon);
  for (const auto& [kiln, rf] : kFieldNames) {
    if (field == kiln) return Status(st.code(), layer_path + rf + m.substr(colon));
  }
  return st.with_context(layer_path + " (as a Kiln definition)");
}

Result<IngestDefinition> convert_layer(const json& v, const std::string& path,
                                       const std::string& ingest_id) {
  KILN_RETURN_IF_ERROR(expect_object(v, path, {"id", "output", "sources"}));
  IngestDefinition def;
  def.format = "raster-foundry";
  def.id = ingest_id;
  const json* id = member(v, "id");
  KILN_RETURN_IF_ERROR(required(id, path + ".id"));
  KILN_RETURN_IF_ERROR(read_string(*id, path + ".id", &def.layer, kGot));

  const std::string output_path = path + ".output";
  const json* output = member(v, "output");
  KILN_RETURN_IF_ERROR(required(output, output_path));
  KILN_ASSIGN_OR_RETURN(ConvertedOutput out, convert_output(*output, output_path));

  const std::string sources_path = path + ".sources";
  const json* sources = member(v, "sources");
  KILN_RETURN_IF_ERROR(required(sources, sources_path));
  if (!sources->is_array()) return wrong_type(sources_path, "an array of sources", *sources, kGot);
  if (sources->empty()) return invalid_argument(sources_path + ": must list at least one source");
  BandNames names;
  for (size_t i = 0; i < sources->size(); ++i) {
    KILN_ASSIGN_OR_RETURN(SourceDef s, convert_source((*sources)[i], element_path(sources_path, i),
                                                      out, output_path, &names));
    def.sources.push_back(std::move(s));
  }
  // Raster Foundry filled target bands that no bandMap named with empty
  // tiles; Kiln has no empty bands, so a gap is refused.
  const int bands = names.rbegin()->first;
  for (int b = 1; b <= bands; ++b) {
    if (names.count(b) == 0) {
      return invalid_argument(sources_path + ": no bandMaps target.index is " + std::to_string(b) +
                              "; every target band from 1 to the highest (" +
                              std::to_string(bands) + ") needs a source band");
    }
  }
  def.output = std::move(out.def);
  for (const auto& [index, name] : names) def.output.band_names.push_back(name);

  Status st = validate(def);
  if (!st.is_ok()) return to_raster_foundry_paths(st, path);
  return def;
}

// GeoTrellis cell types: base name, Kiln type, nodata of the plain name
// (GeoTrellis' *ConstantNoDataCellType: 0 for unsigned, the minimum for
// signed, NaN for floats), and whether the name exists in GDAL 3.6.
struct GeoTrellisBase {
  const char* name;
  CellType type;
  std::optional<double> default_nodata;
  bool supported;
};

const GeoTrellisBase kGeoTrellisBases[] = {
    {"bool", CellType::kUInt8, std::nullopt, true},  // bits, stored as 0/1 bytes
    {"int8", CellType::kInt16, -128.0, false},       // refused; the type is a placeholder
    {"uint8", CellType::kUInt8, 0.0, true},
    {"int16", CellType::kInt16, -32768.0, true},
    {"uint16", CellType::kUInt16, 0.0, true},
    {"int32", CellType::kInt32, static_cast<double>(std::numeric_limits<int32_t>::min()), true},
    {"float32", CellType::kFloat32, std::numeric_limits<double>::quiet_NaN(), true},
    {"float64", CellType::kFloat64, std::numeric_limits<double>::quiet_NaN(), true},
};

}  // namespace

bool is_raster_foundry(const json& doc) { return doc.is_object() && doc.contains("layers"); }

Result<GeoTrellisCellType> parse_geotrellis_cell_type(std::string_view name) {
  const std::string n = lower(trim(name));
  for (const GeoTrellisBase& base : kGeoTrellisBases) {
    const std::string_view b = base.name;
    if (n.compare(0, b.size(), b) != 0) continue;
    const std::string suffix = n.substr(b.size());
    if (suffix != "" && suffix != "raw" && suffix.compare(0, 2, "ud") != 0) continue;
    if (!base.supported) {
      return invalid_argument("'" + std::string(name) +
                              "': int8 cells are not supported (GDAL 3.6 has no signed 8-bit "
                              "type); use int16, e.g. \"int16raw\" or \"int16ud-128\"");
    }
    GeoTrellisCellType t;
    t.type = base.type;
    if (suffix.empty()) {
      t.nodata = base.default_nodata;
    } else if (suffix.compare(0, 2, "ud") == 0) {
      const std::string text = suffix.substr(2);
      if (b == "bool") {
        return invalid_argument("'" + std::string(name) + "': bool has no user nodata");
      }
      // from_chars: no locale, no leading blanks, no hex; the whole rest must be the number.
      double v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
        return invalid_argument("'" + std::string(name) + "': '" + text +
                                "' after ud is not a nodata number");
      }
      if (!fits(v, t.type)) {
        return invalid_argument("'" + std::string(name) + "': nodata " + text +
                                " cannot be stored in " + cell_type_name(t.type) + " cells");
      }
      t.nodata = v;
    }
    return t;
  }
  return invalid_argument("unknown GeoTrellis cell type '" + std::string(name) +
                          "' (expected bool, uint8, uint16, int16, int32, float32 or float64, "
                          "plain or followed by raw or ud<nodata>, e.g. uint16raw, "
                          "float32ud-999)");
}

Result<std::string> gdal_name_for_source_uri(std::string_view uri) {
  const std::string scheme = scheme_of(uri);
  if (scheme.empty()) return std::string(uri);
  if (scheme == "file") return file_uri_path(uri);
  const std::string_view rest = uri.substr(scheme.size() + 3);
  if (scheme == "s3" || scheme == "s3a" || scheme == "s3n") {
    const size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size()) {
      return invalid_argument("S3 URIs must be s3://bucket/key; got " + std::string(uri));
    }
    KILN_ASSIGN_OR_RETURN(std::string key, percent_decode(rest.substr(slash + 1)));
    return "/vsis3/" + std::string(rest.substr(0, slash)) + "/" + key;
  }
  if (scheme == "http" || scheme == "https") return "/vsicurl/" + std::string(uri);
  return invalid_argument("unsupported URI scheme '" + scheme +
                          "' (expected file://, s3://, http://, https:// or a path)");
}

Result<std::string> catalog_for_output_uri(std::string_view uri) {
  if (trim(uri).empty()) return invalid_argument("must name the catalog directory");
  const std::string scheme = scheme_of(uri);
  if (scheme.empty()) return std::string(uri);
  if (scheme == "file") return file_uri_path(uri);
  return invalid_argument("only local catalogs (file:// or a path) are supported; got " +
                          std::string(uri));
}

Result<std::vector<IngestDefinition>> parse_raster_foundry(const json& doc) {
  KILN_RETURN_IF_ERROR(expect_object(doc, "", {"id", "layers"}));
  std::string id;
  if (const json* x = member(doc, "id")) KILN_RETURN_IF_ERROR(read_string(*x, "id", &id, kGot));
  const json* layers = member(doc, "layers");
  KILN_RETURN_IF_ERROR(required(layers, "layers"));
  if (!layers->is_array()) return wrong_type("layers", "an array of layers", *layers, kGot);
  if (layers->empty()) return invalid_argument("layers: must list at least one layer");
  std::vector<IngestDefinition> defs;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < layers->size(); ++i) {
    const std::string path = element_path("layers", i);
    KILN_ASSIGN_OR_RETURN(IngestDefinition def, convert_layer((*layers)[i], path, id));
    auto [it, inserted] = seen.emplace(def.layer, i);
    if (!inserted) {
      return invalid_argument(path + ".id: '" + def.layer + "' is also the id of " +
                              element_path("layers", it->second) + "; each layer needs its own id");
    }
    defs.push_back(std::move(def));
  }
  return defs;
}

}  // namespace kiln::ingest

// Kiln's own definition format: a strict reader (every field known, typed and
// named in errors), the consistency checks, the canonical JSON form and file
// loading. Raster Foundry's format is converted in raster_foundry.cc.
#include "ingest/definition.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/json_strict.h"
#include "ingest/json_fields.h"
#include "ingest/raster_foundry.h"

namespace kiln::ingest {

using nlohmann::json;

namespace {

constexpr int kMaxBands = 65535;

// Definitions nest about five levels; kMaxJsonDepth (common/json_strict.h)
// refuses anything far deeper, which keeps every reader's recursion and
// path bookkeeping small.

// The largest definition file read: a Raster Foundry definition of
// thousands of sources is a few MiB.
constexpr size_t kMaxDefinitionBytes = size_t{64} << 20;

std::string nesting_error() {
  return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
         " levels: not an ingest definition";
}

// True if `v` has containers nested more than `limit` deep. Iterative, so
// it is safe on any input.
bool json_depth_exceeds(const json& v, size_t limit) {
  std::vector<std::pair<const json*, size_t>> todo{{&v, 1}};
  while (!todo.empty()) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    if (depth > limit) return true;
    for (const auto& child : *node) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

// Tile sizes: below 64 px the per-tile overhead (a file, a request)
// dominates; 4096 px bounds a tile's memory (one float64 band is 128 MiB).
constexpr int kMinTileSize = 64;
constexpr int kMaxTileSize = 4096;
// Zoom 30 is ~0.15 mm per pixel of a 256 px Web Mercator tile, finer than
// any imagery; deeper levels would only invite overflow in pixel arithmetic.
constexpr int kMaxZoomLevel = 30;
// One bucket per uint16 value is the finest histogram that means anything.
constexpr int kMaxHistogramBuckets = 65536;
// Layer and environment names become directory names and URL segments.
constexpr size_t kMaxNameLength = 128;

// ---------------------------------------------------------------------------
// Reading JSON with field paths.

using json_fields::element_path;
using json_fields::member;
using json_fields::member_path;
using json_fields::number_text;
using json_fields::read_bool;
using json_fields::read_int;
using json_fields::read_number;
using json_fields::read_string;
using json_fields::wrong_type;

// Type errors name the kind of value too: "got a string (\"3\")".
constexpr json_fields::Got kGot = json_fields::Got::kKindAndValue;

// Levenshtein distance; names are short, so the O(n*m) table is cheap.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// Lower case without '_' and '-', so "tileSize" and "tile-size" meet "tile_size".
std::string fold(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// The known name `key` was most likely meant to be, or "" when none is close.
std::string closest_name(std::string_view key, std::initializer_list<std::string_view> known) {
  std::string best;
  size_t best_distance = 3;  // more than two edits away is not a typo
  for (std::string_view name : known) {
    if (fold(name) == fold(key)) return std::string(name);
    const size_t d = edit_distance(key, name);
    if (d < best_distance && d * 2 < name.size()) {
      best = std::string(name);
      best_distance = d;
    }
  }
  return best;
}

// Checks that `v` is an object whose members are all in `known`: a misspelt
// field must be an error, not a silently ignored value.
Status check_members(const json& v, const std::string& path,
                     std::initializer_list<std::string_view> known) {
  if (!v.is_object()) return wrong_type(path.empty() ? "definition" : path, "an object", v, kGot);
  for (const auto& [key, value] : v.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string message = member_path(path, key) + ": unknown field";
    const std::string guess = closest_name(key, known);
    if (!guess.empty()) message += " (did you mean " + guess + "?)";
    return invalid_argument(message);
  }
  return Status::ok();
}

// nodata: a number or "nan" (JSON has no NaN literal).
Status read_nodata(const json& v, const std::string& path, std::optional<double>* out) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s != "nan") return wrong_type(path, "a number, \"nan\" or null", v, kGot);
    *out = std::numeric_limits<double>::quiet_NaN();
    return Status::ok();
  }
  if (!v.is_number()) return wrong_type(path, "a number, \"nan\" or null", v, kGot);
  *out = v.get<double>();
  return Status::ok();
}

Status read_int_array(const json& v, const std::string& path, std::vector<int>* out) {
  if (!v.is_array()) return wrong_type(path, "an array of integers", v, kGot);
  if (v.empty()) return invalid_argument(path + ": must not be empty (leave it out instead)");
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    int x = 0;
    KILN_RETURN_IF_ERROR(read_int(v[i], element_path(path, i), &x, kGot));
    out->push_back(x);
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Kiln's format, field by field.

Result<Layout> parse_layout(std::string_view name) {
  if (name == "zoomed") return Layout::kZoomed;
  if (name == "floating") return Layout::kFloating;
  return invalid_argument("unknown layout '" + std::string(name) +
                          "' (expected zoomed or floating)");
}

Result<Curve> parse_curve(std::string_view name) {
  if (name == "zorder") return Curve::kZOrder;
  if (name == "hilbert") return Curve::kHilbert;
  return invalid_argument("unknown curve '" + std::string(name) + "' (expected zorder or hilbert)");
}

const char* tiff_compression_name(TiffCompression c) {
  return c == TiffCompression::kZstd ? "zstd" : "deflate";
}

Result<TiffCompression> parse_tiff_compression(std::string_view name) {
  if (name == "deflate") return TiffCompression::kDeflate;
  if (name == "zstd") return TiffCompression::kZstd;
  return invalid_argument("unknown tif compression '" + std::string(name) +
                          "' (expected deflate or zstd)");
}

// Reads a string member and converts it with `parse` (one of the parse_*
// functions), naming the field in the error.
template <typename T, typename Parse>
Status read_enum(const json& v, const std::string& path, Parse parse, T* out) {
  std::string name;
  KILN_RETURN_IF_ERROR(read_string(v, path, &name, kGot));
  Result<T> r = parse(name);
  if (!r.is_ok()) return r.status().with_context(path);
  *out = *r;
  return Status::ok();
}

Result<SourceDef> parse_source(const json& v, const std::string& path) {
  KILN_RETURN_IF_ERROR(
      check_members(v, path, {"uri", "bands", "target_bands", "crs", "extent", "nodata"}));
  SourceDef s;
  const json* uri = member(v, "uri");
  if (uri == nullptr) return invalid_argument(path + ".uri: required (a path or GDAL name)");
  KILN_RETURN_IF_ERROR(read_string(*uri, path + ".uri", &s.uri, kGot));

  std::vector<int> bands;
  if (const json* b = member(v, "bands")) {
    KILN_RETURN_IF_ERROR(read_int_array(*b, path + ".bands", &bands));
  }
  std::vector<int> targets;
  if (const json* t = member(v, "target_bands")) {
    KILN_RETURN_IF_ERROR(read_int_array(*t, path + ".target_bands", &targets));
    if (bands.empty()) {
      return invalid_argument(path +
                              ".target_bands: needs bands (one output band per source band)");
    }
    if (targets.size() != bands.size()) {
      return invalid_argument(path + ".target_bands: has " + std::to_string(targets.size()) +
                              " entries but bands has " + std::to_string(bands.size()) +
                              "; give one output band per source band");
    }
  }
  for (size_t i = 0; i < bands.size(); ++i) {
    s.bands.push_back({bands[i], targets.empty() ? static_cast<int>(i) : targets[i]});
  }

  if (const json* crs = member(v, "crs")) {
    std::string text;
    KILN_RETURN_IF_ERROR(read_string(*crs, path + ".crs", &text, kGot));
    s.crs = std::move(text);
  }
  if (const json* extent = member(v, "extent")) {
    const std::string epath = path + ".extent";
    if (!extent->is_array() || extent->size() != 4) {
      return wrong_type(epath, "an array [xmin, ymin, xmax, ymax]", *extent, kGot);
    }
    std::array<double, 4> e{};
    for (size_t i = 0; i < 4; ++i) {
      KILN_RETURN_IF_ERROR(read_number((*extent)[i], element_path(epath, i), &e[i], kGot));
    }
    s.extent = e;
  }
  if (const json* nodata = member(v, "nodata")) {
    KILN_RETURN_IF_ERROR(read_nodata(*nodata, path + ".nodata", &s.nodata));
  }
  return s;
}

Status parse_zoom(const json& v, OutputDef* o) {
  KILN_RETURN_IF_ERROR(check_members(v, "output.zoom", {"min", "max"}));
  if (const json* min = member(v, "min")) {
    int z = 0;
    KILN_RETURN_IF_ERROR(read_int(*min, "output.zoom.min", &z, kGot));
    o->min_zoom = z;
  }
  if (const json* max = member(v, "max")) {
    if (max->is_string() && max->get<std::string>() == "auto") {
      o->max_zoom.reset();
    } else {
      if (!max->is_number_integer()) {
        return wrong_type("output.zoom.max", "an integer or \"auto\"", *max, kGot);
      }
      int z = 0;
      KILN_RETURN_IF_ERROR(read_int(*max, "output.zoom.max", &z, kGot));
      o->max_zoom = z;
    }
  }
  return Status::ok();
}

// `auto_format` is set when "format" is "auto", cleared when it names one.
Status parse_encoding(const json& v, EncodeOptions* e, bool* auto_format) {
  const std::string path = "output.encoding";
  KILN_RETURN_IF_ERROR(check_members(
      v, path,
      {"format", "png_level", "webp_quality", "webp_lossless", "tif_compression", "tif_level"}));
  if (const json* f = member(v, "format")) {
    if (f->is_string() && f->get<std::string>() == "auto") {
      *auto_format = true;
    } else {
      KILN_RETURN_IF_ERROR(read_enum(*f, path + ".format", parse_tile_format, &e->format));
      *auto_format = false;
    }
  }
  if (const json* x = member(v, "png_level")) {
    KILN_RETURN_IF_ERROR(read_int(*x, path + ".png_level", &e->png_level, kGot));
  }
  if (const json* x = member(v, "webp_quality")) {
    KILN_RETURN_IF_ERROR(read_int(*x, path + ".webp_quality", &e->webp_quality, kGot));
  }
  if (const json* x = member(v, "webp_lossless")) {
    KILN_RETURN_IF_ERROR(read_bool(*x, path + ".webp_lossless", &e->webp_lossless, kGot));
  }
  if (const json* x = member(v, "tif_compression")) {
    KILN_RETURN_IF_ERROR(
        read_enum(*x, path + ".tif_compression", parse_tiff_compression, &e->tiff_compression));
  }
  if (const json* x = member(v, "tif_level")) {
    KILN_RETURN_IF_ERROR(read_int(*x, path + ".tif_level", &e->tiff_level, kGot));
  }
  return Status::ok();
}

Result<OutputDef> parse_output(const json& v) {
  const std::string path = "output";
  KILN_RETURN_IF_ERROR(
      check_members(v, path,
                    {"catalog", "environment", "layout", "tile_size", "zoom", "pyramid",
                     "cell_type", "nodata", "resample", "pyramid_resample", "encoding",
                     "partitioning", "histogram_buckets", "error_threshold", "band_names"}));
  OutputDef o;
  // Optional here: `kiln ingest --catalog DIR` fills it in, and whoever
  // writes the layer refuses an empty one.
  if (const json* x = member(v, "catalog")) {
    KILN_RETURN_IF_ERROR(read_string(*x, "output.catalog", &o.catalog, kGot));
  }
  if (const json* x = member(v, "environment")) {
    KILN_RETURN_IF_ERROR(read_string(*x, "output.environment", &o.environment, kGot));
  }
  if (const json* x = member(v, "layout")) {
    KILN_RETURN_IF_ERROR(read_enum(*x, "output.layout", parse_layout, &o.layout));
  }
  if (const json* x = member(v, "tile_size")) {
    KILN_RETURN_IF_ERROR(read_int(*x, "output.tile_size", &o.tile_size, kGot));
  }
  if (const json* x = member(v, "zoom")) KILN_RETURN_IF_ERROR(parse_zoom(*x, &o));
  if (const json* x = member(v, "pyramid")) {
    KILN_RETURN_IF_ERROR(read_bool(*x, "output.pyramid", &o.pyramid, kGot));
  }
  if (const json* x = member(v, "cell_type")) {
    std::string name;
    KILN_RETURN_IF_ERROR(read_string(*x, "output.cell_type", &name, kGot));
    if (name != "auto") {
      Result<CellType> t = parse_cell_type(name);
      if (!t.is_ok()) return t.status().with_context("output.cell_type");
      o.cell_type = *t;
    }
  }
  if (const json* x = member(v, "nodata")) {
    KILN_RETURN_IF_ERROR(read_nodata(*x, "output.nodata", &o.nodata));
  }
  if (const json* x = member(v, "resample")) {
    KILN_RETURN_IF_ERROR(read_enum(*x, "output.resample", parse_warp_resample, &o.resample));
  }
  if (const json* x = member(v, "pyramid_resample")) {
    KILN_RETURN_IF_ERROR(
        read_enum(*x, "output.pyramid_resample", parse_pyramid_resample, &o.pyramid_resample));
  }
  o.auto_format = true;  // unless the encoding names a format
  if (const json* x = member(v, "encoding")) {
    KILN_RETURN_IF_ERROR(parse_encoding(*x, &o.encoding, &o.auto_format));
  }
  if (const json* x = member(v, "partitioning")) {
    KILN_RETURN_IF_ERROR(check_members(*x, "output.partitioning", {"curve"}));
    if (const json* c = member(*x, "curve")) {
      KILN_RETURN_IF_ERROR(read_enum(*c, "output.partitioning.curve", parse_curve, &o.curve));
    }
  }
  if (const json* x = member(v, "histogram_buckets")) {
    KILN_RETURN_IF_ERROR(read_int(*x, "output.histogram_buckets", &o.histogram_buckets, kGot));
  }
  if (const json* x = member(v, "error_threshold")) {
    KILN_RETURN_IF_ERROR(read_number(*x, "output.error_threshold", &o.error_threshold, kGot));
  }
  if (const json* x = member(v, "band_names")) {
    if (!x->is_array()) return wrong_type("output.band_names", "an array of strings", *x, kGot);
    for (size_t i = 0; i < x->size(); ++i) {
      std::string name;
      KILN_RETURN_IF_ERROR(read_string((*x)[i], element_path("output.band_names", i), &name, kGot));
      o.band_names.push_back(std::move(name));
    }
  }
  return o;
}

Result<IngestDefinition> parse_kiln(const json& doc) {
  KILN_RETURN_IF_ERROR(check_members(doc, "", {"format", "id", "layer", "sources", "output"}));
  IngestDefinition def;
  if (const json* x = member(doc, "format"))
    KILN_RETURN_IF_ERROR(read_string(*x, "format", &def.format, kGot));
  if (const json* x = member(doc, "id")) KILN_RETURN_IF_ERROR(read_string(*x, "id", &def.id, kGot));
  const json* layer = member(doc, "layer");
  if (layer == nullptr) return invalid_argument("layer: required (the name of the layer to write)");
  KILN_RETURN_IF_ERROR(read_string(*layer, "layer", &def.layer, kGot));

  const json* sources = member(doc, "sources");
  if (sources == nullptr) return invalid_argument("sources: required (the rasters to ingest)");
  if (!sources->is_array()) return wrong_type("sources", "an array of sources", *sources, kGot);
  for (size_t i = 0; i < sources->size(); ++i) {
    KILN_ASSIGN_OR_RETURN(SourceDef s, parse_source((*sources)[i], element_path("sources", i)));
    def.sources.push_back(std::move(s));
  }

  def.output.auto_format = true;  // no "output": every default, the format's too
  if (const json* output = member(doc, "output")) {
    KILN_ASSIGN_OR_RETURN(def.output, parse_output(*output));
  }
  return def;
}

// ---------------------------------------------------------------------------
// Consistency checks.

Status check_name(const std::string& name, const std::string& path) {
  auto allowed = [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  };
  const bool ok = !name.empty() && name.size() <= kMaxNameLength &&
                  std::isalnum(static_cast<unsigned char>(name[0])) &&
                  std::all_of(name.begin(), name.end(), allowed);
  if (ok) return Status::ok();
  return invalid_argument(path + ": '" + name +
                          "' is not a valid name (1-128 characters of A-Z a-z 0-9 . _ -, "
                          "starting with a letter or digit)");
}

// NaN or a finite number: JSON cannot carry infinities, and GDAL has no
// infinite nodata.
bool valid_nodata(double v) { return !std::isinf(v); }

Status validate_source(const SourceDef& s, const std::string& path) {
  if (s.uri.empty()) return invalid_argument(path + ".uri: required (a path or GDAL name)");
  std::map<int, size_t> first_use;  // target -> index in bands
  for (size_t i = 0; i < s.bands.size(); ++i) {
    const BandMap& m = s.bands[i];
    if (m.source_band < 1) {
      return invalid_argument(element_path(path + ".bands", i) + ": must be >= 1 (source bands " +
                              "count from 1, as GDAL does); got " + std::to_string(m.source_band));
    }
    if (m.target < 0) {
      return invalid_argument(element_path(path + ".target_bands", i) +
                              ": must be >= 0 (output bands count from 0); got " +
                              std::to_string(m.target));
    }
    // GDAL datasets hold at most 65535 bands; a larger target is a typo, and
    // sizing per-band tables by it must not overflow.
    if (m.target >= kMaxBands) {
      return invalid_argument(element_path(path + ".target_bands", i) + ": must be below " +
                              std::to_string(kMaxBands) + "; got " + std::to_string(m.target));
    }
    auto [it, inserted] = first_use.emplace(m.target, i);
    if (!inserted) {
      return invalid_argument(element_path(path + ".target_bands", i) + ": output band " +
                              std::to_string(m.target) + " is already fed by bands[" +
                              std::to_string(it->second) +
                              "] of this source; a source feeds each output band at most once");
    }
  }
  if (s.crs && s.crs->empty()) return invalid_argument(path + ".crs: must not be empty");
  if (s.extent) {
    const auto& e = *s.extent;
    if (!s.crs) {
      return invalid_argument(path + ".extent: needs crs (the extent's coordinates are in it)");
    }
    for (double x : e) {
      if (!std::isfinite(x)) return invalid_argument(path + ".extent: must hold finite numbers");
    }
    if (!(e[0] < e[2]) || !(e[1] < e[3])) {
      return invalid_argument(path + ".extent: must be [xmin, ymin, xmax, ymax] with xmin < xmax " +
                              "and ymin < ymax; got [" + number_text(e[0]) + ", " +
                              number_text(e[1]) + ", " + number_text(e[2]) + ", " +
                              number_text(e[3]) + "]");
    }
  }
  if (s.nodata && !valid_nodata(*s.nodata)) {
    return invalid_argument(path + ".nodata: must be a finite number or \"nan\"");
  }
  return Status::ok();
}

// Every output band from 0 to the highest target must be fed by some source
// (other sources may feed the same band: that is a mosaic).
Status check_band_coverage(const IngestDefinition& def, int bands) {
  if (bands == 0) return Status::ok();  // some source reads all bands: known only when opened
  std::vector<bool> fed(static_cast<size_t>(bands), false);
  for (const SourceDef& s : def.sources) {
    for (const BandMap& m : s.bands) fed[static_cast<size_t>(m.target)] = true;
  }
  for (int b = 0; b < bands; ++b) {
    if (!fed[static_cast<size_t>(b)]) {
      return invalid_argument("sources: no source feeds output band " + std::to_string(b) +
                              " (target_bands count from 0, and every band up to the highest "
                              "target, " +
                              std::to_string(bands - 1) + ", needs a source)");
    }
  }
  return Status::ok();
}

Status check_encoding(const OutputDef& o, int bands) {
  const EncodeOptions& e = o.encoding;
  if (e.png_level < 0 || e.png_level > 9) {
    return invalid_argument("output.encoding.png_level: must be 0-9 (zlib levels); got " +
                            std::to_string(e.png_level));
  }
  if (e.webp_quality < 0 || e.webp_quality > 100) {
    return invalid_argument("output.encoding.webp_quality: must be 0-100; got " +
                            std::to_string(e.webp_quality));
  }
  // The ranges GDAL's GTiff driver documents for ZLEVEL and ZSTD_LEVEL.
  const bool zstd = e.tiff_compression == TiffCompression::kZstd;
  const int max_level = zstd ? 22 : 12;
  if (e.tiff_level < 1 || e.tiff_level > max_level) {
    return invalid_argument("output.encoding.tif_level: must be 1-" + std::to_string(max_level) +
                            " for " + tiff_compression_name(e.tiff_compression) + "; got " +
                            std::to_string(e.tiff_level));
  }
  // tif holds any type and band count; make_plan picks a format that holds
  // the layer when none was asked for.
  if (e.format == TileFormat::kTiff || o.auto_format) return Status::ok();
  const std::string fmt = tile_extension(e.format);
  if (o.cell_type && bands > 0) {
    Status s = check_encodable(e.format, *o.cell_type, bands);
    if (!s.is_ok()) return s.with_context("output.encoding.format");
  } else if (o.cell_type) {
    // One band always fits png and webp, so this asks about the type alone.
    if (!check_encodable(e.format, *o.cell_type, 1).is_ok()) {
      return invalid_argument("output.encoding.format: " + fmt + " tiles cannot hold " +
                              cell_type_name(*o.cell_type) +
                              " cells: set output.cell_type to a type they hold, or use tif");
    }
  } else if (bands > 0 && !check_encodable(e.format, CellType::kUInt8, bands).is_ok()) {
    // uint8 fits png and webp, so this asks about the band count alone.
    return invalid_argument("output.encoding.format: " + fmt + " tiles hold 1 or 3 bands; the " +
                            "sources declare " + std::to_string(bands) +
                            " output bands: select 1 or 3 bands, or use tif");
  }
  return Status::ok();
}

Status validate_output(const OutputDef& o, int bands) {
  KILN_RETURN_IF_ERROR(check_name(o.environment, "output.environment"));
  const int ts = o.tile_size;
  if (ts < kMinTileSize || ts > kMaxTileSize || (ts & (ts - 1)) != 0) {
    return invalid_argument("output.tile_size: must be a power of two from 64 to 4096 (256 and " +
                            std::string("512 are usual); got ") + std::to_string(ts));
  }
  auto check_zoom = [](const std::optional<int>& z, const char* path) {
    if (!z || (*z >= 0 && *z <= kMaxZoomLevel)) return Status::ok();
    return invalid_argument(std::string(path) + ": must be 0-" + std::to_string(kMaxZoomLevel) +
                            "; got " + std::to_string(*z));
  };
  KILN_RETURN_IF_ERROR(check_zoom(o.min_zoom, "output.zoom.min"));
  KILN_RETURN_IF_ERROR(check_zoom(o.max_zoom, "output.zoom.max"));
  if (o.min_zoom && o.max_zoom && *o.min_zoom > *o.max_zoom) {
    return invalid_argument("output.zoom.min: " + std::to_string(*o.min_zoom) +
                            " is above output.zoom.max " + std::to_string(*o.max_zoom));
  }
  if (!o.pyramid && o.min_zoom) {
    return invalid_argument(
        "output.zoom.min: must not be set when output.pyramid is false (only the max zoom is "
        "built)");
  }
  if (o.nodata) {
    const double nd = *o.nodata;
    if (!valid_nodata(nd)) {
      return invalid_argument("output.nodata: must be a finite number or \"nan\"");
    }
    if (o.cell_type) {
      const CellType t = *o.cell_type;
      const char* tn = cell_type_name(t);
      if (std::isnan(nd) && !is_float(t)) {
        return invalid_argument(std::string("output.nodata: nan cannot be stored in ") + tn +
                                " cells (only float32 and float64 have NaN)");
      }
      if (!std::isnan(nd) &&
          (nd < cell_min(t) || nd > cell_max(t) || (!is_float(t) && nd != std::trunc(nd)))) {
        return invalid_argument("output.nodata: " + number_text(nd) + " cannot be stored in " + tn +
                                " cells");
      }
    }
  }
  KILN_RETURN_IF_ERROR(check_encoding(o, bands));
  if (o.histogram_buckets < 1 || o.histogram_buckets > kMaxHistogramBuckets) {
    return invalid_argument("output.histogram_buckets: must be 1-65536; got " +
                            std::to_string(o.histogram_buckets));
  }
  if (!std::isfinite(o.error_threshold) || o.error_threshold < 0) {
    return invalid_argument("output.error_threshold: must be a finite number >= 0 (0 transforms " +
                            std::string("every pixel exactly); got ") +
                            number_text(o.error_threshold));
  }
  for (size_t i = 0; i < o.band_names.size(); ++i) {
    if (o.band_names[i].empty()) {
      return invalid_argument(element_path("output.band_names", i) + ": must not be empty");
    }
  }
  if (bands > 0 && !o.band_names.empty() && o.band_names.size() != static_cast<size_t>(bands)) {
    return invalid_argument("output.band_names: has " + std::to_string(o.band_names.size()) +
                            " names for " + std::to_string(bands) + " output bands");
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Canonical JSON.

json nodata_json(const std::optional<double>& v) {
  if (!v) return nullptr;
  if (std::isnan(*v)) return "nan";
  return *v;
}

// ---------------------------------------------------------------------------
// Files.

Status read_file(const std::string& path, std::string* out) {
  const std::string what = "cannot read definition '" + path + "': ";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return invalid_argument(what + std::generic_category().message(EISDIR));
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno != 0 ? errno : EIO;
    return invalid_argument(what + std::generic_category().message(err));
  }
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return invalid_argument(what + std::generic_category().message(EIO));
  return Status::ok();
}

}  // namespace

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::kZoomed:
      return "zoomed";
    case Layout::kFloating:
      return "floating";
  }
  return "?";
}

const char* curve_name(Curve c) {
  switch (c) {
    case Curve::kZOrder:
      return "zorder";
    case Curve::kHilbert:
      return "hilbert";
  }
  return "?";
}

int declared_band_count(const IngestDefinition& def) {
  int bands = 0;
  for (const SourceDef& s : def.sources) {
    if (s.bands.empty()) return 0;
    for (const BandMap& m : s.bands) bands = std::max(bands, m.target + 1);
  }
  return bands;
}

Status validate(const IngestDefinition& def) {
  if (def.format != "kiln" && def.format != "raster-foundry") {
    return invalid_argument("format: must be \"kiln\" or \"raster-foundry\"; got '" + def.format +
                            "'");
  }
  KILN_RETURN_IF_ERROR(check_name(def.layer, "layer"));
  if (def.sources.empty()) return invalid_argument("sources: must list at least one source");
  for (size_t i = 0; i < def.sources.size(); ++i) {
    KILN_RETURN_IF_ERROR(validate_source(def.sources[i], element_path("sources", i)));
  }
  const int bands = declared_band_count(def);
  KILN_RETURN_IF_ERROR(check_band_coverage(def, bands));
  return validate_output(def.output, bands);
}

Result<std::vector<IngestDefinition>> parse_definition(const json& doc) {
  // Checked first: the readers below recurse, and a definition is never
  // deeper than a handful of levels.
  if (json_depth_exceeds(doc, kMaxJsonDepth)) return invalid_argument(nesting_error());
  if (is_raster_foundry(doc)) return parse_raster_foundry(doc);
  KILN_ASSIGN_OR_RETURN(IngestDefinition def, parse_kiln(doc));
  KILN_RETURN_IF_ERROR(validate(def));
  return std::vector<IngestDefinition>{std::move(def)};
}

json to_json(const IngestDefinition& def) {
  json j;
  j["format"] = def.format;
  if (!def.id.empty()) j["id"] = def.id;
  j["layer"] = def.layer;

  json sources = json::array();
  for (const SourceDef& s : def.sources) {
    json js;
    js["uri"] = s.uri;
    if (!s.bands.empty()) {
      json bands = json::array();
      json targets = json::array();
      bool in_order = true;  // targets 0..n-1 need no target_bands
      for (size_t i = 0; i < s.bands.size(); ++i) {
        bands.push_back(s.bands[i].source_band);
        targets.push_back(s.bands[i].target);
        in_order = in_order && s.bands[i].target == static_cast<int>(i);
      }
      js["bands"] = std::move(bands);
      if (!in_order) js["target_bands"] = std::move(targets);
    }
    if (s.crs) js["crs"] = *s.crs;
    if (s.extent)
      js["extent"] = json::array({(*s.extent)[0], (*s.extent)[1], (*s.extent)[2], (*s.extent)[3]});
    if (s.nodata) js["nodata"] = nodata_json(s.nodata);
    sources.push_back(std::move(js));
  }
  j["sources"] = std::move(sources);

  const OutputDef& o = def.output;
  json out;
  if (!o.catalog.empty()) out["catalog"] = o.catalog;
  out["environment"] = o.environment;
  out["layout"] = layout_name(o.layout);
  out["tile_size"] = o.tile_size;
  json zoom = json::object();
  if (o.min_zoom) zoom["min"] = *o.min_zoom;
  zoom["max"] = o.max_zoom ? json(*o.max_zoom) : json("auto");
  out["zoom"] = std::move(zoom);
  out["pyramid"] = o.pyramid;
  out["cell_type"] = o.cell_type ? cell_type_name(*o.cell_type) : "auto";
  out["nodata"] = nodata_json(o.nodata);
  out["resample"] = warp_resample_name(o.resample);
  out["pyramid_resample"] = pyramid_resample_name(o.pyramid_resample);
  out["encoding"] = {{"format", o.auto_format ? "auto" : tile_extension(o.encoding.format)},
                     {"png_level", o.encoding.png_level},
                     {"webp_quality", o.encoding.webp_quality},
                     {"webp_lossless", o.encoding.webp_lossless},
                     {"tif_compression", tiff_compression_name(o.encoding.tiff_compression)},
                     {"tif_level", o.encoding.tiff_level}};
  out["partitioning"] = {{"curve", curve_name(o.curve)}};
  out["histogram_buckets"] = o.histogram_buckets;
  out["error_threshold"] = o.error_threshold;
  if (!o.band_names.empty()) out["band_names"] = o.band_names;
  j["output"] = std::move(out);
  return j;
}

Result<std::vector<IngestDefinition>> load_definition(const std::string& path) {
  std::string text;
  KILN_RETURN_IF_ERROR(read_file(path, &text));
  return parse_definition_text(text, "definition '" + path + "'");
}

Result<std::vector<IngestDefinition>> parse_definition_text(const std::string& text,
                                                            const std::string& where) {
  // The strict reader refuses repeated keys (nlohmann would keep the last
  // one silently, hiding half of a definition), nesting past the limit and
  // numbers out of range, naming the field; its messages never quote the
  // text (a definition file's bytes are never echoed, docs/security.md).
  auto doc = parse_json_strict(text, JsonLimits{kMaxDefinitionBytes, kMaxJsonDepth});
  if (!doc.is_ok()) return invalid_argument(where + ": " + doc.status().message());
  Result<std::vector<IngestDefinition>> defs = parse_definition(*doc);
  if (!defs.is_ok()) return defs.status().with_context(where);
  return defs;
}

}  // namespace kiln::ingest

// IngestDefinition: what to ingest and how, parsed from Kiln's own JSON or
// from Raster Foundry's ingest-definition format (docs/definition.md).
// Parsing checks everything that can be checked without opening sources and
// names the offending JSON field ("output.tile_size: ...").
#pragma once

#include <array>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "raster/cell_type.h"
#include "raster/codec.h"
#include "raster/resample.h"

namespace kiln::ingest {

enum class Layout { kZoomed, kFloating };
enum class Curve { kZOrder, kHilbert };

const char* layout_name(Layout l);
const char* curve_name(Curve c);

// Source band `source_band` (1-based, as GDAL counts) feeds output band
// `target` (0-based).
struct BandMap {
  int source_band = 1;
  int target = 0;
};

struct SourceDef {
  std::string uri;  // a path or any GDAL name (/vsicurl/..., /vsis3/...)
  // Empty: every band that is not an alpha band, in order, to targets 0..n-1.
  std::vector<BandMap> bands;
  std::optional<std::string> crs;  // overrides a missing/wrong CRS ("EPSG:32618", WKT, PROJ)
  // Used only when the file has no geotransform: xmin, ymin, xmax, ymax in `crs`.
  std::optional<std::array<double, 4>> extent;
  std::optional<double> nodata;  // overrides the file's nodata (NaN allowed)
};

struct OutputDef {
  std::string catalog;  // catalog root directory
  std::string environment = "default";
  Layout layout = Layout::kZoomed;
  int tile_size = 256;                // 256 or 512 (any power of two 64..4096 accepted)
  std::optional<int> min_zoom;        // default 0
  std::optional<int> max_zoom;        // default: from source resolution (as gdal2tiles)
  std::optional<CellType> cell_type;  // default: the first source's
  std::optional<double> nodata;       // default: the first source's (NaN allowed)
  WarpResample resample = WarpResample::kBilinear;
  PyramidResample pyramid_resample = PyramidResample::kAverage;
  bool pyramid = true;     // false: only max zoom (min_zoom = max_zoom)
  EncodeOptions encoding;  // format png by default
  // No format was asked for ("auto", or none in the JSON): make_plan picks
  // png when png holds the layer's cell type and bands, tif otherwise, and
  // sets encoding.format. False keeps encoding.format as it is.
  bool auto_format = false;
  Curve curve = Curve::kZOrder;
  int histogram_buckets = 256;
  // Max error of the approximate transform, in output pixels (gdalwarp -et);
  // 0 transforms every pixel exactly.
  double error_threshold = 0.125;
  std::vector<std::string> band_names;  // optional, one per output band
};

struct IngestDefinition {
  std::string layer;
  std::vector<SourceDef> sources;
  OutputDef output;
  std::string format = "kiln";  // "kiln" or "raster-foundry": where it came from
  std::string id;               // optional ingest id (Raster Foundry's)
};

// Parses either format (Raster Foundry's is recognised by its "layers"
// array) into one definition per layer. Errors are kInvalidArgument and name
// the field path.
Result<std::vector<IngestDefinition>> parse_definition(const nlohmann::json& doc);
// Reads and parses a file; invalid JSON reports the file, line and column.
Result<std::vector<IngestDefinition>> load_definition(const std::string& path);
// Parses a definition file's text; errors start with `where` and give
// positions, never the file's bytes.
Result<std::vector<IngestDefinition>> parse_definition_text(const std::string& text,
                                                            const std::string& where);

// Checks the definition's own consistency (names, ranges, combinations that
// need no source metadata). parse_definition already calls it.
Status validate(const IngestDefinition& def);

// Kiln's canonical JSON form: parse_definition(to_json(d)) == d.
nlohmann::json to_json(const IngestDefinition& def);

// Number of output bands (1 + the largest target), or 0 when sources use
// "all bands" (decided when sources are opened).
int declared_band_count(const IngestDefinition& def);

}  // namespace kiln::ingest

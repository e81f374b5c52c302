// Raster Foundry's ingest definition (the JSON its Spark batch ingest took:
// {id, layers: [{id, output, sources: [{uri, bandMaps, ...}]}]}) converted
// into Kiln definitions, one per layer. Internal to ingest/: callers use
// parse_definition(), which recognises the format. docs/definition.md lists
// every mapping rule.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "ingest/definition.h"
#include "raster/cell_type.h"

namespace kiln::ingest {

// True if `doc` is an object with a top-level "layers" member (the mark of
// Raster Foundry's format; Kiln's own has none).
bool is_raster_foundry(const nlohmann::json& doc);

// Converts every layer into a validated definition (format
// "raster-foundry"). Errors are kInvalidArgument and name the Raster Foundry
// field path, e.g. "layers[0].sources[1].bandMaps[0].source: must be >= 1".
// Unknown fields are ignored, as Raster Foundry did, with a logged warning.
Result<std::vector<IngestDefinition>> parse_raster_foundry(const nlohmann::json& doc);

// A GeoTrellis cell type name ("uint16raw", "float32ud-999.5", "int16") as
// Kiln's cell type plus the nodata value the name implies (none for "raw").
struct GeoTrellisCellType {
  CellType type = CellType::kUInt8;
  std::optional<double> nodata;
};
// Parses a GeoTrellis cell type name (case-insensitive). int8 is refused:
// GDAL 3.6 has no signed 8-bit type. Errors are kInvalidArgument without a
// field path.
Result<GeoTrellisCellType> parse_geotrellis_cell_type(std::string_view name);

// A Raster Foundry source URI as a GDAL name: file:// -> a path,
// s3://bucket/key -> /vsis3/bucket/key, http(s):// -> /vsicurl/..., anything
// without a scheme unchanged. Other schemes are kInvalidArgument.
Result<std::string> gdal_name_for_source_uri(std::string_view uri);

// A Raster Foundry output URI as a local catalog directory: file:// or a
// plain path. Object stores (s3://...) are kInvalidArgument.
Result<std::string> catalog_for_output_uri(std::string_view uri);

}  // namespace kiln::ingest

// Layer metadata: the JSON document published with each version
// (docs/catalog.md lists the fields), and the GDAL description of the layer.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ingest/partition.h"
#include "ingest/plan.h"

namespace kiln::ingest {

// `levels` are the tiles actually written per zoom; `sha256` per source
// (nullopt where not computed).
nlohmann::json build_metadata(const Plan& plan, const std::vector<PartitionResult>& partitions,
                              const std::map<int, LevelResult>& levels,
                              const std::vector<std::optional<std::string>>& sha256);

// A GDAL WMS (TMS minidriver) XML that opens the layer's current version at
// `current_dir` with gdal.Open / QGIS. Web Mercator and floating grids alike.
std::string gdal_wms_xml(const Plan& plan, const std::string& current_dir);

}  // namespace kiln::ingest

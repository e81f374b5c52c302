// Footprints: the area a source covers, in the layer's CRS, computed from
// densified edges so curved reprojected edges are followed.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include <ogr_geometry.h>

#include "common/status.h"
#include "raster/source.h"
#include "raster/tile_grid.h"

namespace kiln {

using GeometryPtr = std::unique_ptr<OGRGeometry>;

// The source's footprint in EPSG:3857, clipped to Web Mercator's latitude
// limits. Handles scenes that cross the antimeridian (split in two) and
// scenes that contain a pole (extended to the clip latitude).
// kInputError when the source has no geotransform or CRS, or its CRS is
// not on Earth; kEmpty when nothing is left inside Web Mercator's limits.
Result<GeometryPtr> web_mercator_footprint(const SourceInfo& source);

// The source's footprint in its own coordinates (the floating layout); the
// polygon through its four (possibly rotated) corners.
GeometryPtr native_footprint(const SourceInfo& source);

// The rectangle `b` as a polygon.
std::unique_ptr<OGRPolygon> bounds_polygon(const Bounds& b);

// Bounds of the geometry's envelope.
Bounds envelope_of(const OGRGeometry& g);

// The envelope in WGS84 lon/lat of a layer-CRS geometry, or nullopt when the
// layer has no CRS or the transform fails.
std::optional<std::array<double, 4>> wgs84_envelope(const OGRGeometry& g,
                                                    const std::string& crs_wkt);

}  // namespace kiln

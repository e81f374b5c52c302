#include "raster/footprint.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ogr_spatialref.h>

#include "raster/gdal_env.h"

namespace kiln {
namespace {

// Points per source edge: enough that a reprojected edge is followed to well
// under a tile at the max zoom of any scene up to 100k pixels across.
constexpr int kEdgePoints = 256;

OGRSpatialReference wgs84() {
  OGRSpatialReference s;
  s.importFromEPSG(4326);
  s.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return s;
}

void apply_gt(const std::array<double, 6>& g, double px, double py, double* x, double* y) {
  *x = g[0] + px * g[1] + py * g[2];
  *y = g[3] + px * g[4] + py * g[5];
}

// True if the geographic point (lon, lat) falls on the source's pixels.
bool lands_in_source(const SourceInfo& s, OGRCoordinateTransformation* to_src, double lon,
                     double lat) {
  double x = lon, y = lat;
  if (!to_src->Transform(1, &x, &y)) return false;
  const auto& g = s.geotransform;
  double det = g[1] * g[5] - g[2] * g[4];
  double dx = x - g[0], dy = y - g[3];
  double px = (g[5] * dx - g[2] * dy) / det;
  double py = (-g[4] * dx + g[1] * dy) / det;
  return px >= 0 && px <= s.width && py >= 0 && py <= s.height;
}

OGRPolygon* polygon_from(const std::vector<double>& xs, const std::vector<double>& ys) {
  auto* ring = new OGRLinearRing();
  for (size_t i = 0; i < xs.size(); ++i) ring->addPoint(xs[i], ys[i]);
  ring->closeRings();
  auto* poly = new OGRPolygon();
  poly->addRingDirectly(ring);
  return poly;
}

double lat_to_mercator_y(double lat) {
  constexpr double kR = 6378137.0;
  return kR * std::log(std::tan(M_PI / 4 + lat * M_PI / 360));
}

}  // namespace

std::unique_ptr<OGRPolygon> bounds_polygon(const Bounds& b) {
  return std::unique_ptr<OGRPolygon>(
      polygon_from({b.min_x, b.max_x, b.max_x, b.min_x}, {b.min_y, b.min_y, b.max_y, b.max_y}));
}

Bounds envelope_of(const OGRGeometry& g) {
  OGREnvelope e;
  g.getEnvelope(&e);
  return Bounds{e.MinX, e.MinY, e.MaxX, e.MaxY};
}

Result<GeometryPtr> web_mercator_footprint(const SourceInfo& s) {
  const std::string who = "source '" + s.uri + "'";
  if (!s.has_geotransform) {
    return input_error(who + " has no georeferencing (no geotransform): the zoomed layout needs " +
                       "to know where it is; use layout \"floating\", or give the source an " +
                       "extent and crs");
  }
  if (s.crs_wkt.empty()) {
    return input_error(who + " has no CRS: the zoomed layout must reproject it; give the source " +
                       "a crs (e.g. \"crs\": \"EPSG:32618\" or --src-crs) or use layout " +
                       "\"floating\"");
  }
  OGRSpatialReference src;
  src.importFromWkt(s.crs_wkt.c_str());
  src.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  OGRErr err = OGRERR_NONE;
  double a = src.GetSemiMajor(&err);
  // Earth's ellipsoids and spheres all have semi-major axes within
  // 6,371-6,378.4 km; anything else is another body (Mars, the Moon) or an
  // engineering CRS, which Web Mercator cannot place.
  if (err != OGRERR_NONE || a < 6.3e6 || a > 6.4e6) {
    return input_error(who + ": its CRS is not on Earth (semi-major axis " +
                       std::to_string(static_cast<long long>(a)) +
                       " m), so it cannot be placed on the Web Mercator grid; use layout " +
                       "\"floating\"");
  }
  OGRSpatialReference geo = wgs84();
  CoordinateTransformationPtr to_geo(OGRCreateCoordinateTransformation(&src, &geo));
  CoordinateTransformationPtr to_src(OGRCreateCoordinateTransformation(&geo, &src));
  if (!to_geo || !to_src) {
    return input_error(who +
                       ": no coordinate operation from its CRS to WGS84: " + last_gdal_error());
  }

  // Densified ring around the pixel edges, in lon/lat.
  std::vector<double> lon, lat;
  const double W = s.width, H = s.height;
  auto edge = [&](double x0, double y0, double x1, double y1) {
    for (int i = 0; i < kEdgePoints; ++i) {
      double t = static_cast<double>(i) / kEdgePoints;
      double x, y;
      apply_gt(s.geotransform, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, &x, &y);
      lon.push_back(x);
      lat.push_back(y);
    }
  };
  edge(0, 0, W, 0);
  edge(W, 0, W, H);
  edge(W, H, 0, H);
  edge(0, H, 0, 0);
  std::vector<int> ok(lon.size(), 0);
  to_geo->Transform(lon.size(), lon.data(), lat.data(), nullptr, ok.data());
  std::vector<double> ulon, ulat;
  for (size_t i = 0; i < lon.size(); ++i) {
    if (!ok[i] || !std::isfinite(lon[i]) || !std::isfinite(lat[i])) continue;
    double x = lon[i];
    // Unwrap: consecutive points never jump more than half the world.
    if (!ulon.empty()) {
      while (x - ulon.back() > 180) x -= 360;
      while (x - ulon.back() < -180) x += 360;
    }
    ulon.push_back(x);
    ulat.push_back(lat[i]);
  }
  if (ulon.size() < 3) {
    return input_error(who + ": its corners cannot be transformed to longitude/latitude " +
                       "(is the CRS right?)");
  }
  // Closing the ring: if unwrapping carried us a whole turn, the ring goes
  // around a pole; close it through that pole.
  double close = ulon.front() - ulon.back();
  while (close > 180) close -= 360;
  while (close < -180) close += 360;
  double turn = ulon.back() + close - ulon.front();
  bool north = lands_in_source(s, to_src.get(), 0, 90);
  bool south = lands_in_source(s, to_src.get(), 0, -90);
  if (std::abs(turn) > 180 || north || south) {
    double pole = north ? 90 : -90;
    if (!north && !south)
      pole = std::abs(*std::max_element(ulat.begin(), ulat.end())) >
                     std::abs(*std::min_element(ulat.begin(), ulat.end()))
                 ? 90
                 : -90;
    double end = ulon.back() + close;
    // Back to the first point, one turn on, then up to the pole and across.
    ulon.push_back(end);
    ulat.push_back(ulat.front());
    ulon.push_back(end);
    ulat.push_back(pole);
    ulon.push_back(ulon.front());
    ulat.push_back(pole);
  }
  std::unique_ptr<OGRPolygon> ring(polygon_from(ulon, ulat));
  GeometryPtr shape(ring.release());
  if (!shape->IsValid()) {
    GeometryPtr fixed(shape->MakeValid());
    if (fixed) shape = std::move(fixed);
  }

  // Cut at the antimeridian and Web Mercator's latitude limits: the world box
  // picks each 360-degree copy of the ring in turn.
  const double kLat = TileGrid::kWebMercatorMaxLat;
  auto result = std::make_unique<OGRMultiPolygon>();
  for (int k = -1; k <= 1; ++k) {
    std::vector<double> bx = {-180 + 360.0 * k, 180 + 360.0 * k, 180 + 360.0 * k, -180 + 360.0 * k};
    std::vector<double> by = {-kLat, -kLat, kLat, kLat};
    std::unique_ptr<OGRPolygon> box(polygon_from(bx, by));
    GeometryPtr part(shape->Intersection(box.get()));
    if (!part || part->IsEmpty()) continue;
    OGRwkbGeometryType t = wkbFlatten(part->getGeometryType());
    auto add = [&](const OGRPolygon* p) {
      auto* q = p->clone();
      // Shift back into [-180, 180] and project to Web Mercator.
      OGRLinearRing* r = q->getExteriorRing();
      for (int i = 0; r && i < r->getNumPoints(); ++i) {
        double x = r->getX(i) - 360.0 * k;
        r->setPoint(i, x * M_PI / 180 * 6378137.0, lat_to_mercator_y(r->getY(i)));
      }
      for (int h = 0; h < q->getNumInteriorRings(); ++h) {
        OGRLinearRing* ir = q->getInteriorRing(h);
        for (int i = 0; i < ir->getNumPoints(); ++i) {
          double x = ir->getX(i) - 360.0 * k;
          ir->setPoint(i, x * M_PI / 180 * 6378137.0, lat_to_mercator_y(ir->getY(i)));
        }
      }
      result->addGeometryDirectly(q);
    };
    if (t == wkbPolygon) {
      add(part->toPolygon());
    } else if (t == wkbMultiPolygon || t == wkbGeometryCollection) {
      auto* gc = part->toGeometryCollection();
      for (int i = 0; i < gc->getNumGeometries(); ++i) {
        const OGRGeometry* g = gc->getGeometryRef(i);
        if (wkbFlatten(g->getGeometryType()) == wkbPolygon) add(g->toPolygon());
      }
    }
  }
  if (result->IsEmpty()) {
    return empty_error(who + " lies entirely outside Web Mercator's latitude limits (±85.0511°)");
  }
  return GeometryPtr(result.release());
}

GeometryPtr native_footprint(const SourceInfo& s) {
  std::vector<double> xs(4), ys(4);
  const double px[4] = {0, static_cast<double>(s.width), static_cast<double>(s.width), 0};
  const double py[4] = {0, 0, static_cast<double>(s.height), static_cast<double>(s.height)};
  for (int i = 0; i < 4; ++i) apply_gt(s.geotransform, px[i], py[i], &xs[i], &ys[i]);
  GeometryPtr g(polygon_from(xs, ys));
  return g;
}

std::optional<std::array<double, 4>> wgs84_envelope(const OGRGeometry& g,
                                                    const std::string& crs_wkt) {
  if (crs_wkt.empty()) return std::nullopt;
  OGRSpatialReference src;
  if (src.importFromWkt(crs_wkt.c_str()) != OGRERR_NONE) return std::nullopt;
  src.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  OGRSpatialReference geo = wgs84();
  CoordinateTransformationPtr ct(OGRCreateCoordinateTransformation(&src, &geo));
  if (!ct) return std::nullopt;
  GeometryPtr copy(g.clone());
  if (copy->transform(ct.get()) != OGRERR_NONE) return std::nullopt;
  Bounds b = envelope_of(*copy);
  return std::array<double, 4>{b.min_x, b.min_y, b.max_x, b.max_y};
}

}  // namespace kiln

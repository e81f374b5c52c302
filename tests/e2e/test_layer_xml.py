"""layer.xml, the GDAL description `kiln ingest` writes next to a layer
(docs/catalog.md, "GDAL and QGIS"): GDAL reads the layer's own extent at
max zoom, not the whole grid, leaves its nodata out of statistics, and its
overviews are the layer's lower zooms."""

import json
import os
import subprocess
import tempfile
import unittest

import numpy as np
from osgeo import gdal

import kiln_test as kt

gdal.UseExceptions()

NODATA = -999999


class LayerXmlTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kiln-layerxml-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmp], check=False))
        self.catalog = os.path.join(self.tmp, "catalog")

    def ingest(self, layer, sources, output):
        d = {"layer": layer, "sources": sources,
             "output": dict(output, catalog=self.catalog)}
        path = os.path.join(self.tmp, layer + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f)
        kt.run_kiln(["ingest", "--definition", path, "--progress", "none"],
                    expect_rc=kt.EXIT_OK)
        vdir = os.path.realpath(kt.current_dir(self.catalog, "default", layer))
        return vdir, kt.load_metadata(self.catalog, "default", layer)

    def gdalinfo_stats(self, xml):
        # No .aux.xml written into the published version: it never changes.
        env = dict(os.environ, GDAL_PAM_ENABLED="NO")
        out = subprocess.run(["gdalinfo", "-json", "-stats", xml], env=env, capture_output=True,
                             text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def assert_stats_are_the_datas(self, info, meta):
        for band, stats in zip(info["bands"], meta["statistics"]):
            md = band["metadata"][""]
            self.assertAlmostEqual(float(md["STATISTICS_MINIMUM"]), stats["min"], places=3)
            self.assertAlmostEqual(float(md["STATISTICS_MAXIMUM"]), stats["max"], places=3)
            self.assertAlmostEqual(float(md["STATISTICS_MEAN"]), stats["mean"], places=3)
            self.assertAlmostEqual(float(md["STATISTICS_STDDEV"]), stats["stddev"], places=3)

    def assert_window_fits_the_extent(self, info, meta):
        gt = info["geoTransform"]
        w, h = info["size"]
        minx, miny, maxx, maxy = meta["extent"]["layer_crs"]
        ts = meta["tile_size"]
        # The raster holds the whole extent...
        self.assertLessEqual(gt[0], minx + 1e-6)
        self.assertGreaterEqual(gt[3], maxy - 1e-6)
        self.assertGreaterEqual(gt[0] + w * gt[1], maxx - 1e-6)
        self.assertLessEqual(gt[3] + h * gt[5], miny + 1e-6)
        # ...at max zoom, and is not much more than it: at most twice its
        # side (overview alignment) plus the tiles cut at its edges.
        self.assertAlmostEqual(gt[1], meta["tile_matrix"]["resolution_at_max_zoom"][0])
        self.assertLessEqual(w, 2 * (maxx - minx) / gt[1] + 2 * ts)
        self.assertLessEqual(h, 2 * (maxy - miny) / -gt[5] + 2 * ts)

    def test_dem_statistics_leave_nodata_out_and_size_fits_the_extent(self):
        vdir, meta = self.ingest(
            "dem", [{"uri": kt.data_path("olinda_dem_utm25s.tif")}],
            {"cell_type": "float32", "nodata": NODATA, "encoding": {"format": "tif"}})
        info = self.gdalinfo_stats(os.path.join(vdir, "layer.xml"))
        self.assertEqual(info["bands"][0]["noDataValue"], NODATA)
        self.assertGreater(meta["statistics"][0]["min"], NODATA)
        self.assert_stats_are_the_datas(info, meta)
        self.assert_window_fits_the_extent(info, meta)

    def test_floating_dem_with_nan_nodata(self):
        vdir, meta = self.ingest(
            "dem-floating", [{"uri": kt.data_path("olinda_dem_utm25s.tif")}],
            {"layout": "floating", "cell_type": "float32", "nodata": "nan",
             "encoding": {"format": "tif"}})
        info = self.gdalinfo_stats(os.path.join(vdir, "layer.xml"))
        self.assertEqual(info["bands"][0]["noDataValue"], "NaN")
        self.assert_stats_are_the_datas(info, meta)
        self.assert_window_fits_the_extent(info, meta)

    def test_overviews_are_the_stored_lower_zooms(self):
        vdir, meta = self.ingest(
            "l7", [{"uri": kt.l7_path(), "bands": [3, 2, 1]}], {})
        xml = os.path.join(vdir, "layer.xml")
        info = self.gdalinfo_stats(xml)
        self.assert_window_fits_the_extent(info, meta)
        ds = gdal.Open(xml)
        overviews = ds.GetRasterBand(1).GetOverviewCount()
        self.assertGreaterEqual(overviews, 1)
        zmax, ts = meta["zoom"]["max"], meta["tile_size"]
        gt = ds.GetGeoTransform()
        origin_x, origin_y = meta["tile_matrix"]["origin"]
        tx = round((gt[0] - origin_x) / gt[1] / ts)
        ty = round((origin_y - gt[3]) / -gt[5] / ts)
        for level in range(1, overviews + 1):
            w, h = ds.RasterXSize >> level, ds.RasterYSize >> level
            out = os.path.join(self.tmp, "ovr%d.tif" % level)
            gdal.Translate(out, xml, width=w, height=h, resampleAlg="nearest")
            got = gdal.Open(out).ReadAsArray()
            tiles = kt.list_tiles(vdir)[zmax - level]
            compared = 0
            for (x, y), path in tiles.items():
                px, py = (x - (tx >> level)) * ts, (y - (ty >> level)) * ts
                if px < 0 or py < 0 or px + ts > w or py + ts > h:
                    continue
                stored = gdal.Open(path).ReadAsArray()
                self.assertTrue(np.array_equal(got[:, py:py + ts, px:px + ts], stored),
                                "overview %d differs from tile %d/%d/%d" % (level, zmax - level,
                                                                           x, y))
                compared += 1
            self.assertGreater(compared, 0, "no whole tile in overview %d" % level)


if __name__ == "__main__":
    unittest.main()

"""Ingest the Landsat 7 demo scene (bands 3,2,1 as PNG) and check the layer a
user gets: its metadata, its tiles on disk and the GDAL description."""

import hashlib
import os
import unittest

import numpy as np
from osgeo import gdal

import kiln_test as kt

LAYER = "landsat"


class IngestLandsatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cat = kt.TempCatalog().__enter__()
        # Runs even when setUpClass fails, unlike tearDownClass.
        cls.addClassCleanup(cls.cat.__exit__, None, None, None)
        cls.src = kt.l7_path()
        kt.run_kiln(kt.ingest_args(cls.src, cls.cat, LAYER, "--bands", "3,2,1",
                                   "--format", "png"), expect_rc=kt.EXIT_OK)
        cls.current = kt.current_dir(cls.cat, "default", LAYER)
        cls.meta = kt.load_metadata(cls.cat, "default", LAYER)
        cls.tiles = kt.list_tiles(cls.current)

    def test_current_points_at_version_1(self):
        link = os.path.join(kt.layer_dir(self.cat, "default", LAYER), "current")
        self.assertTrue(os.path.islink(link), "current is not a symlink")
        self.assertEqual(os.path.normpath(os.readlink(link)),
                         os.path.join("versions", "v000001"))
        self.assertEqual(self.meta["version"], 1)
        self.assertEqual(self.meta["layer"], LAYER)
        self.assertEqual(self.meta["environment"], "default")

    def test_metadata_describes_the_layer(self):
        m = self.meta
        # L7 has 28.5 m pixels near 8 degrees S: gdal2tiles picks zoom 12.
        self.assertEqual(m["zoom"]["max"], 12)
        self.assertEqual(m["zoom"]["max"], kt.gdal2tiles_max_zoom(self.src))
        self.assertEqual(m["zoom"]["min"], 0)
        self.assertEqual(m["layout"], "zoomed")
        self.assertEqual(m["crs"]["epsg"], 3857)
        self.assertEqual(m["tile_size"], 256)
        self.assertEqual(m["format"], "png")
        self.assertEqual(m["cell_type"], "uint8")
        self.assertEqual(len(m["bands"]), 3)
        self.assertEqual([b["source"]["band"] for b in m["bands"]], [3, 2, 1])
        for b in m["bands"]:
            self.assertTrue(b["source"]["uri"].endswith(kt.L7), b["source"]["uri"])
        self.assertEqual(m["resample"], "bilinear")
        self.assertEqual(m["pyramid_resample"], "average")
        for field in ("kiln_version", "created_at", "tile_matrix", "definition"):
            self.assertIn(field, m)

    def test_metadata_sources_identify_the_file(self):
        self.assertEqual(len(self.meta["sources"]), 1)
        s = self.meta["sources"][0]
        self.assertTrue(s["uri"].endswith(kt.L7), s["uri"])
        self.assertEqual(s["size"], os.path.getsize(self.src))
        with open(self.src, "rb") as f:
            self.assertEqual(s["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual((s["width"], s["height"], s["bands"]), (349, 352, 6))
        self.assertEqual(s["cell_type"], "uint8")
        self.assertEqual(s["crs_epsg"], 31985)  # SIRGAS 2000 / UTM zone 25S

    def test_extent_matches_the_source_footprint(self):
        lon0, lat0, lon1, lat1 = kt.bbox(self.meta["extent"]["wgs84"])
        # The scene lies near Olinda, Brazil.
        self.assertTrue(-35.0 < lon0 < lon1 < -34.8, (lon0, lon1))
        self.assertTrue(-8.1 < lat0 < lat1 < -7.9, (lat0, lat1))
        # Within ~100 m (0.001 deg, 3.5 source pixels) of the footprint osr
        # computes from the file's corners: a wrong datum or axis order is
        # off by far more.
        ref = kt.footprint_wgs84(self.src)
        for got, want in zip((lon0, lat0, lon1, lat1), ref):
            self.assertAlmostEqual(got, want, delta=1e-3)
        # The layer-CRS extent is the same area in EPSG:3857 metres.
        x0, y0, x1, y1 = kt.bbox(self.meta["extent"]["layer_crs"])
        self.assertTrue(-3.9e6 < x0 < x1 < -3.86e6, (x0, x1))
        self.assertTrue(-0.91e6 < y0 < y1 < -0.88e6, (y0, y1))

    def test_levels_match_tiles_on_disk(self):
        levels = {lv["zoom"]: lv for lv in self.meta["levels"]}
        self.assertEqual(sorted(levels), list(range(0, 13)))
        self.assertEqual(sorted(self.tiles), list(range(0, 13)))
        for z, lv in levels.items():
            on_disk = self.tiles[z]
            self.assertEqual(lv["tiles"], len(on_disk), "zoom %d" % z)
            # min_x..max_y are the inclusive tile column/row bounds, tight.
            xs = [x for x, _ in on_disk]
            ys = [y for _, y in on_disk]
            self.assertEqual((lv["min_x"], lv["min_y"], lv["max_x"], lv["max_y"]),
                             (min(xs), min(ys), max(xs), max(ys)), "zoom %d" % z)
            # Web Mercator resolution at zoom z, 256 px tiles.
            self.assertAlmostEqual(lv["resolution"],
                                   2 * kt.WEB_MERCATOR_HALF / 256 / (1 << z), places=6)
        # The scene spans 10 km: a handful of tiles at zoom 12, one at zoom 0.
        self.assertTrue(1 <= len(self.tiles[12]) <= 9, len(self.tiles[12]))
        self.assertEqual(list(self.tiles[0]), [(0, 0)])
        self.assertTrue(os.path.isfile(kt.tile_path(self.cat, "default", LAYER, 0, 0, 0, "png")))

    def test_tiles_are_256px_uint8_png(self):
        count = 0
        for z, tiles in self.tiles.items():
            for (x, y), path in tiles.items():
                driver, w, h, nbands, dtype, interps = kt.tile_info(path)
                where = "%d/%d/%d" % (z, x, y)
                self.assertEqual(driver, "PNG", where)
                self.assertEqual((w, h), (256, 256), where)
                self.assertEqual(dtype, "Byte", where)
                self.assertIn(nbands, (3, 4), where)
                if nbands == 4:
                    self.assertEqual(interps[3], "Alpha", where)
                data, alpha = kt.read_tile(path)
                self.assertEqual(data.shape, (3, 256, 256), where)
                valid = kt.valid_mask(data, alpha)
                self.assertTrue(valid.any(), "tile %s has no valid pixel" % where)
                count += 1
        self.assertGreater(count, 13)
        # Zoom 0 holds the whole world: the 10 km scene is a speck of it, so
        # the tile must be mostly transparent.
        data, alpha = kt.read_tile(self.tiles[0][(0, 0)])
        self.assertIsNotNone(alpha, "0/0/0 has no alpha band")
        self.assertLess(np.count_nonzero(alpha), 10)

    def test_statistics_describe_the_max_zoom_pixels(self):
        stats = self.meta["statistics"]
        self.assertEqual([s["band"] for s in stats], [1, 2, 3])
        # Statistics cover the warped max-zoom pixels: recompute them from the
        # zoom-12 tiles on disk.
        pixels = [[], [], []]
        for path in self.tiles[12].values():
            data, alpha = kt.read_tile(path)
            valid = kt.valid_mask(data, alpha)
            for b in range(3):
                pixels[b].append(data[b][valid])
        src = gdal.Open(self.src)
        for s, b_src in zip(stats, (3, 2, 1)):
            vals = np.concatenate(pixels[s["band"] - 1]).astype(np.float64)
            where = "statistics band %d" % s["band"]
            self.assertEqual(s["count"], vals.size, where)
            self.assertGreater(s["count"], 0, where)
            self.assertTrue(0 <= s["min"] <= s["max"] <= 255, where)
            self.assertEqual(s["min"], vals.min(), where)
            self.assertEqual(s["max"], vals.max(), where)
            self.assertAlmostEqual(s["mean"], vals.mean(), delta=1e-3 * vals.mean(), msg=where)
            self.assertAlmostEqual(s["stddev"], vals.std(), delta=1e-2 * vals.std(), msg=where)
            hist = s["histogram"]
            self.assertEqual(sum(hist["buckets"]), s["count"], where)
            self.assertLessEqual(hist["min"], s["min"], where)
            self.assertGreaterEqual(hist["max"], s["max"], where)
            # Against the source band itself (no nodata in L7): warping and
            # resampling move the mean by well under 2%.
            raw = src.GetRasterBand(b_src).ReadAsArray().astype(np.float64)
            self.assertAlmostEqual(s["mean"], raw.mean(), delta=0.02 * raw.mean(), msg=where)
            self.assertGreaterEqual(s["min"], raw.min(), where)
            self.assertLessEqual(s["max"], raw.max(), where)

    def test_layer_xml_reads_the_tiles_through_gdal(self):
        xml = os.path.join(self.current, "layer.xml")
        self.assertTrue(os.path.isfile(xml), "layer.xml missing")
        ds = gdal.Open(xml)
        self.assertEqual(ds.GetDriver().ShortName, "WMS")
        self.assertGreaterEqual(ds.RasterCount, 3)
        gt = ds.GetGeoTransform()
        res12 = 2 * kt.WEB_MERCATOR_HALF / 256 / (1 << 12)
        self.assertAlmostEqual(gt[1], res12, places=6)
        # Read the window of one zoom-12 tile through the WMS description and
        # compare with the PNG on disk.
        (x, y), path = sorted(self.tiles[12].items())[0]
        min_x, _, _, max_y = kt.tile_bounds_3857(12, x, y)
        col = int(round((min_x - gt[0]) / gt[1]))
        row = int(round((max_y - gt[3]) / gt[5]))
        got = np.stack([ds.GetRasterBand(i).ReadAsArray(col, row, 256, 256)
                        for i in (1, 2, 3)])
        data, alpha = kt.read_tile(path)
        valid = kt.valid_mask(data, alpha)
        np.testing.assert_array_equal(got[:, valid], data[:, valid])


if __name__ == "__main__":
    unittest.main()

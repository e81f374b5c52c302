"""Scenes at the edges of Web Mercator: across the antimeridian, around a
pole, on another planet. Each must get correct tiles or a clear refusal.

The scenes are the real Landsat pixels of L7_ETMs.tif placed elsewhere by
assigning a CRS and corner coordinates (gdal_translate -a_srs -a_ullr), so
the pixel content stays real imagery while the geometry is the edge case.
"""

import os
import tempfile
import unittest

import numpy as np
from osgeo import gdal

import kiln_test as kt

gdal.UseExceptions()


def place(src, path, srs, ullr):
    gdal.Translate(path, src, bandList=[3, 2, 1], outputSRS=srs, outputBounds=ullr)
    return path


class EdgeGeometry(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="kiln-edge-")
        cls.addClassCleanup(cls.tmp.cleanup)

    def compare_max_zoom_with_gdalwarp(self, src, cat, layer):
        meta = kt.load_metadata(cat, "default", layer)
        z = meta["zoom"]["max"]
        cur = kt.current_dir(cat, "default", layer)
        tiles = kt.list_tiles(cur, "png")
        top = [(z, x, y) for (x, y) in tiles.get(z, {})]
        self.assertTrue(top, "no max-zoom tiles")
        for (_, x, y) in top:
            data, alpha = kt.read_tile(os.path.join(cur, str(z), str(x), "%d.png" % y))
            ref, ref_alpha = kt.reference_warp(src, None, z, x, y, resample="bilinear",
                                               scale=kt.kernel_scale(src, z, x, y))
            kv = alpha > 0 if alpha is not None else np.ones(data.shape[1:], bool)
            rv = ref_alpha > 0
            self.assertGreaterEqual(np.mean(kv == rv), 0.999, "masks differ in %d/%d/%d" % (z, x, y))
            both = kv & rv
            diff = np.abs(data[:, both].astype(int) - ref[:, both].astype(int))
            # Same kernel arithmetic, same filter stretch (up to partition vs
            # tile scale), same 0.125 px approximation: within one level.
            self.assertLessEqual(diff.max(initial=0), 1, "%d/%d/%d" % (z, x, y))
        return top, z

    def test_scene_across_the_antimeridian_is_tiled_on_both_sides(self):
        # UTM 60S, 800-870 km easting: 179.8°E to 179.5°W near Fiji.
        src = place(kt.l7_path(), os.path.join(self.tmp.name, "fiji.tif"), "EPSG:32760",
                    [800000, 8000000, 870000, 7930000])
        with kt.TempCatalog() as cat:
            kt.run_kiln(kt.ingest_args(src, cat, "fiji"), expect_rc=kt.EXIT_OK)
            top, z = self.compare_max_zoom_with_gdalwarp(src, cat, "fiji")
            xs = {x for (_, x, _) in top}
            self.assertIn(0, xs, "no tile west of the antimeridian (x = 0)")
            self.assertIn((1 << z) - 1, xs, "no tile east of the antimeridian (x = max)")
            self.assertLess(len(xs), 8, "tiles between the two sides: the scene was smeared")
            wgs = kt.load_metadata(cat, "default", "fiji")["extent"]["wgs84"]
            self.assertLess(wgs[0], -179)
            self.assertGreater(wgs[2], 179)

    def test_scene_holding_the_north_pole_covers_every_longitude(self):
        src = place(kt.l7_path(), os.path.join(self.tmp.name, "pole.tif"), "EPSG:3413",
                    [-500000, 500000, 500000, -500000])
        with kt.TempCatalog() as cat:
            kt.run_kiln(kt.ingest_args(src, cat, "pole"), expect_rc=kt.EXIT_OK)
            top, z = self.compare_max_zoom_with_gdalwarp(src, cat, "pole")
            self.assertEqual({x for (_, x, _) in top}, set(range(1 << z)),
                             "the ring around the pole must reach every tile column")
            self.assertEqual(min(y for (_, _, y) in top), 0, "tiles reach the top row")

    def test_other_planet_is_refused_for_web_mercator(self):
        src = os.path.join(self.tmp.name, "mars.tif")
        gdal.Translate(src, kt.l7_path(), bandList=[1], outputSRS="IAU_2015:49900",
                       outputBounds=[10, 10, 11, 9])
        with kt.TempCatalog() as cat:
            rc, _, err = kt.run_kiln(kt.ingest_args(src, cat, "mars"))
            self.assertEqual(rc, kt.EXIT_INPUT, err)
            self.assertIn("mars.tif", err)
            self.assertIn("not on Earth", err)
            kt.assert_nothing_published(self, cat, "default", "mars")
            # The floating layout keeps the planet's own CRS and works.
            kt.run_kiln(kt.ingest_args(src, cat, "mars", "--layout", "floating"),
                        expect_rc=kt.EXIT_OK)


if __name__ == "__main__":
    unittest.main()

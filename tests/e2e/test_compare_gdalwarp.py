"""Kiln's max-zoom tiles against gdalwarp's output for the same tile bounds:
a user switching from gdal2tiles/gdalwarp expects the same pixels."""

import unittest

import numpy as np

import kiln_test as kt

MAX_ZOOM = 12  # gdal2tiles' pick for L7_ETMs.tif (test_ingest_landsat checks it)

# Tolerances. Kiln's kernel follows GDAL's arithmetic (src/raster/warp_kernel.h)
# and both map pixels through the approximate transformer with a 0.125-pixel
# error threshold (gdalwarp -et default), approximated per tile-wide row
# stretch in both. What can still differ: Kiln stretches the filter by the
# scale of a whole partition, the reference by that of its one tile (given to
# gdalwarp as XSCALE/YSCALE, see kt.kernel_scale, because gdalwarp's own pick
# is wrong for tiles the scene only partly covers); the two differ in the
# third decimal, which moves a bilinear value by at most one grey level after
# rounding. Nearest picks the same pixel except where a float rounding lands a
# coordinate on the other side of a pixel boundary.
NEAREST_MIN_IDENTICAL = 0.995  # fraction of pixels both tools mark valid
BILINEAR_MAX_ABS_DIFF = 1
BILINEAR_MAX_MEAN_ABS_DIFF = 0.05
# Edge pixels can be in or out depending on the same sub-pixel differences:
# masks may disagree on at most 1% of the pixels either tool marks valid.
MASK_MAX_DISAGREEMENT = 0.01


class CompareGdalwarpTest(unittest.TestCase):
    def compare(self, resample):
        src = kt.l7_path()
        layer = "l7-" + resample
        with kt.TempCatalog() as cat:
            kt.run_kiln(kt.ingest_args(src, cat, layer, "--bands", "3,2,1", "--format", "png",
                                       "--resample", resample), expect_rc=kt.EXIT_OK)
            meta = kt.load_metadata(cat, "default", layer)
            self.assertEqual(meta["zoom"]["max"], MAX_ZOOM)
            self.assertEqual(meta["resample"], resample)
            tiles = kt.list_tiles(kt.current_dir(cat, "default", layer)).get(MAX_ZOOM, {})
            self.assertTrue(tiles, "no zoom-%d tiles" % MAX_ZOOM)

            # Every tile around the ones kiln wrote, so a tile gdalwarp fills
            # but kiln skipped is caught too.
            xs = [x for x, _ in tiles]
            ys = [y for _, y in tiles]
            both_valid = identical = mask_diff = either_valid = 0
            max_abs, sum_abs = 0, 0
            for x in range(min(xs) - 1, max(xs) + 2):
                for y in range(min(ys) - 1, max(ys) + 2):
                    ref, ref_alpha = kt.reference_warp(
                        src, [3, 2, 1], MAX_ZOOM, x, y, 256, resample,
                        scale=kt.kernel_scale(src, MAX_ZOOM, x, y))
                    ref_valid = ref_alpha > 0
                    if (x, y) in tiles:
                        got, alpha = kt.read_tile(tiles[(x, y)])
                        got_valid = kt.valid_mask(got, alpha)
                    else:
                        got = np.zeros_like(ref)
                        got_valid = np.zeros_like(ref_valid)
                    if ref_valid.any() and (x, y) not in tiles:
                        self.fail("gdalwarp fills %d/%d/%d (%d pixels), kiln wrote no tile"
                                  % (MAX_ZOOM, x, y, np.count_nonzero(ref_valid)))
                    mask_diff += np.count_nonzero(ref_valid != got_valid)
                    either_valid += np.count_nonzero(ref_valid | got_valid)
                    both = ref_valid & got_valid
                    both_valid += np.count_nonzero(both)
                    diff = np.abs(got.astype(np.int32) - ref.astype(np.int32))[:, both]
                    identical += np.count_nonzero(np.all(diff == 0, axis=0))
                    if diff.size:
                        max_abs = max(max_abs, int(diff.max()))
                        sum_abs += int(diff.sum())
            # The scene covers ~263x265 pixels at zoom 12.
            self.assertGreater(both_valid, 60000, "too few comparable pixels")
            disagreement = mask_diff / either_valid
            self.assertLessEqual(disagreement, MASK_MAX_DISAGREEMENT,
                                 "valid masks differ on %.3f%% of pixels" % (100 * disagreement))
            return both_valid, identical, max_abs, sum_abs / (both_valid * 3)

    def test_nearest_matches_gdalwarp(self):
        n, identical, max_abs, mean_abs = self.compare("nearest")
        frac = identical / n
        self.assertGreaterEqual(frac, NEAREST_MIN_IDENTICAL,
                                "only %.3f%% of pixels identical (max diff %d, mean %.4f)"
                                % (100 * frac, max_abs, mean_abs))

    def test_bilinear_matches_gdalwarp(self):
        n, identical, max_abs, mean_abs = self.compare("bilinear")
        self.assertLessEqual(max_abs, BILINEAR_MAX_ABS_DIFF,
                             "max abs diff %d (mean %.4f, %.2f%% identical)"
                             % (max_abs, mean_abs, 100 * identical / n))
        self.assertLess(mean_abs, BILINEAR_MAX_MEAN_ABS_DIFF, "mean abs diff %.4f" % mean_abs)


if __name__ == "__main__":
    unittest.main()

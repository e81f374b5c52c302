"""Real imagery from other projects' test fixtures (tests/data/, origin and
licence of each file in tests/data/PROVENANCE.md) and from Debian's
r-cran-stars package (data/, fetched by `make data`): every valid file
ingests with defaults into a layer whose tiles have the right bands, cell
type and nodata, and whose pixels match gdalwarp's."""

import math
import os
import unittest

import numpy as np

import kiln_test as kt

# Loose agreement with gdalwarp for a sanity check across data types (the
# strict per-pixel comparison is test_compare_gdalwarp on L7): the mean abs
# difference over pixels both mark valid must stay within 1% of the value
# range of the tile (plus one unit for integer rounding), and the valid masks
# may differ on edge pixels only: at most 2% of the pixels either marks valid.
MEAN_DIFF_OF_RANGE = 0.01
MASK_MAX_DISAGREEMENT = 0.02

DTYPE_OF = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32", "float64": "Float64"}
EXT_OF = {"png": "png", "tif": "tif", "webp": "webp"}
DRIVER_OF = {"png": "PNG", "tif": "GTiff", "webp": "WEBP"}


# Radius in pixels of GDAL's warp kernels.
KERNEL_RADIUS = {"nearest": 0, "bilinear": 1, "cubic": 2, "lanczos": 3}


def dilate(mask, radius):
    """`mask` grown by `radius` pixels (a square neighbourhood)."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            src = mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
            out[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)] |= src
    return out


def same_nodata(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):  # "nan" written as a string
        return str(a).lower() == str(b).lower()
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


class SharedCorpusTest(unittest.TestCase):
    def setUp(self):
        self.cat = kt.TempCatalog().__enter__()
        self.addCleanup(self.cat.__exit__, None, None, None)

    def ingest(self, names, layer, *extra):
        srcs = [kt.data_path(n) for n in names]
        kt.run_kiln(kt.ingest_args(srcs, self.cat, layer, *extra), expect_rc=kt.EXIT_OK)
        return srcs

    def check_layer(self, layer, srcs, fmt, nbands, cell_type, nodata=None,
                    check_nodata=True, srs=None):
        """Checks the published layer: metadata, tiles on disk, and returns
        (metadata, {z: {(x, y): path}})."""
        meta = kt.load_metadata(self.cat, "default", layer)
        self.assertEqual(meta["layout"], "zoomed")
        self.assertEqual(meta["crs"]["epsg"], 3857)
        self.assertEqual(meta["format"], fmt)
        self.assertEqual(meta["cell_type"], cell_type)
        self.assertEqual(len(meta["bands"]), nbands)
        self.assertEqual(len(meta["sources"]), len(srcs))
        if check_nodata:
            self.assertTrue(same_nodata(meta["nodata"], nodata),
                            "metadata nodata %r, expected %r" % (meta["nodata"], nodata))
        want_max = max(kt.gdal2tiles_max_zoom(s, srs=srs) for s in srcs)
        self.assertEqual(meta["zoom"]["max"], want_max, "max zoom differs from gdal2tiles'")
        self.assertEqual(meta["zoom"]["min"], 0)
        # The layer's extent contains every source's footprint, give or take
        # a source pixel (footprints are computed from sampled edges).
        lon0, lat0, lon1, lat1 = kt.bbox(meta["extent"]["wgs84"])
        for s in srcs:
            f = kt.footprint_wgs84(s, srs=srs)
            tol = max(1e-4, kt.pixel_size_degrees(s, srs=srs))
            msg = "extent %r does not contain %s's footprint %r" % (
                (lon0, lat0, lon1, lat1), os.path.basename(s), f)
            self.assertLessEqual(lon0, f[0] + tol, msg)
            self.assertLessEqual(lat0, f[1] + tol, msg)
            self.assertGreaterEqual(lon1, f[2] - tol, msg)
            self.assertGreaterEqual(lat1, f[3] - tol, msg)

        tiles = kt.list_tiles(kt.current_dir(self.cat, "default", layer))
        self.assertEqual(sorted(tiles), list(range(0, want_max + 1)))
        levels = {lv["zoom"]: lv["tiles"] for lv in meta["levels"]}
        self.assertEqual(levels, {z: len(t) for z, t in tiles.items()})
        for z, zt in tiles.items():
            for (x, y), path in zt.items():
                where = "%s %d/%d/%d" % (layer, z, x, y)
                self.assertTrue(path.endswith("." + EXT_OF[fmt]), path)
                driver, w, h, count, dtype, interps = kt.tile_info(path)
                self.assertEqual(driver, DRIVER_OF[fmt], where)
                self.assertEqual((w, h), (256, 256), where)
                self.assertEqual(dtype, DTYPE_OF[cell_type], where)
                data, alpha = kt.read_tile(path)
                self.assertEqual(data.shape[0], nbands, "%s: bands %s" % (where, interps))
        return meta, tiles

    def compare_with_gdalwarp(self, meta, tiles, src, bands, srs=None):
        """Compares kiln's fullest max-zoom tile with gdalwarp's."""
        z = meta["zoom"]["max"]
        nodata = meta.get("nodata")
        best, best_count = None, -1
        for key, path in tiles[z].items():
            data, alpha = kt.read_tile(path)
            n = np.count_nonzero(kt.valid_mask(data, alpha, nodata))
            if n > best_count:
                best, best_count = key, n
        x, y = best
        got, alpha = kt.read_tile(tiles[z][best])
        got_valid = kt.valid_mask(got, alpha, nodata)
        ref, ref_alpha = kt.reference_warp(src, bands, z, x, y, 256, meta["resample"], srs=srs)
        ref_valid = ref_alpha > 0
        # rc_image_float.crop.tif holds NaNs without declaring a nodata value.
        # gdalwarp carries NaN as a value, so its kernel spreads it to the
        # neighbours; Kiln may treat NaN as nodata and renormalise the kernel
        # over the finite neighbours instead. Only finite values compare, and
        # the pixels within the kernel's reach of a NaN may go either way.
        ref_nan = ref_valid & ~np.all(np.isfinite(ref), axis=0)
        got_valid &= np.all(np.isfinite(got), axis=0)
        ref_valid &= ~ref_nan
        either_way = dilate(ref_nan, KERNEL_RADIUS[meta["resample"]] + 1)
        where = "tile %d/%d/%d of %s" % (z, x, y, os.path.basename(src))
        disagree = np.count_nonzero((got_valid != ref_valid) & ~either_way) / max(
            1, np.count_nonzero(got_valid | ref_valid))
        self.assertLessEqual(disagree, MASK_MAX_DISAGREEMENT,
                             "%s: valid masks differ on %.2f%%" % (where, 100 * disagree))
        both = got_valid & ref_valid
        self.assertGreater(np.count_nonzero(both), 0, where)
        g = got.astype(np.float64)[:, both]
        r = ref.astype(np.float64)[:, both]
        value_range = float(r.max() - r.min())
        limit = MEAN_DIFF_OF_RANGE * value_range + (
            1.0 if np.issubdtype(got.dtype, np.integer) else 1e-9)
        mean_diff = float(np.mean(np.abs(g - r)))
        self.assertLessEqual(mean_diff, limit,
                             "%s: mean abs diff %.4f > %.4f" % (where, mean_diff, limit))

    # --- one test per file ----------------------------------------------

    def test_rgb_byte_utm(self):
        # A corner of a Landsat scene: data and the nodata=0 collar around it.
        srcs = self.ingest(["RGB.byte.crop.tif"], "rgb")
        meta, tiles = self.check_layer("rgb", srcs, "png", 3, "uint8", nodata=0)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_four_bands_as_tif(self):
        # Landsat 7 blue, green, red and near infrared: four data bands, more
        # than PNG carries with an alpha channel, so GeoTIFF tiles.
        srcs = self.ingest([kt.L7], "four", "--bands", "1,2,3,4", "--format", "tif")
        meta, tiles = self.check_layer("four", srcs, "tif", 4, "uint8", check_nodata=False)
        self.assertEqual([b["source"]["band"] for b in meta["bands"]], [1, 2, 3, 4])
        self.compare_with_gdalwarp(meta, tiles, srcs[0], [1, 2, 3, 4])

    def test_three_of_six_bands_as_png(self):
        srcs = self.ingest([kt.L7], "three", "--bands", "1,2,3")
        meta, tiles = self.check_layer("three", srcs, "png", 3, "uint8", check_nodata=False)
        self.assertEqual([b["source"]["band"] for b in meta["bands"]], [1, 2, 3])
        self.compare_with_gdalwarp(meta, tiles, srcs[0], [1, 2, 3])

    def test_mosaic_of_two_uint16_scenes(self):
        # Windows of two neighbouring Landsat scenes that overlap by half.
        srcs = self.ingest(["rt_mosaic_cog1.crop.tif", "rt_mosaic_cog2.crop.tif"], "mosaic",
                           "--format", "tif", "--cell-type", "uint16")
        meta, tiles = self.check_layer("mosaic", srcs, "tif", 3, "uint16", nodata=0)
        self.assertEqual(sorted(os.path.basename(s["uri"]) for s in meta["sources"]),
                         ["rt_mosaic_cog1.crop.tif", "rt_mosaic_cog2.crop.tif"])
        # Each max-zoom pixel comes from one of the scenes: where only one is
        # valid it must match that one's gdalwarp output; where both are, one
        # of them (the overlap order is the engine's choice).
        z = meta["zoom"]["max"]
        mask_diff = either = 0
        diffs, values = [], []
        for (x, y), path in tiles[z].items():
            got, alpha = kt.read_tile(path)
            valid = kt.valid_mask(got, alpha, 0)
            refs = [kt.reference_warp(s, None, z, x, y, 256, meta["resample"]) for s in srcs]
            any_ref = np.zeros_like(valid)
            best = np.full(got.shape, np.inf)
            for data, ref_alpha in refs:
                rv = ref_alpha > 0
                any_ref |= rv
                d = np.abs(got.astype(np.float64) - data.astype(np.float64))
                best = np.where(rv[np.newaxis], np.minimum(best, d), best)
            mask_diff += np.count_nonzero(valid != any_ref)
            either += np.count_nonzero(valid | any_ref)
            both = valid & any_ref
            diffs.append(best[:, both].ravel())
            values.append(got[:, both].astype(np.float64).ravel())
        # Over the whole max-zoom level: edge tiles hold a few pixels each,
        # too few for a per-tile mean to mean anything.
        self.assertLessEqual(mask_diff / max(1, either), MASK_MAX_DISAGREEMENT)
        diffs, values = np.concatenate(diffs), np.concatenate(values)
        self.assertGreater(diffs.size, 0)
        limit = MEAN_DIFF_OF_RANGE * float(values.max() - values.min()) + 1
        self.assertLessEqual(float(diffs.mean()), limit,
                             "mosaic: mean abs diff %.2f > %.2f" % (diffs.mean(), limit))

    def test_uint16_single_band_scene(self):
        # No format given: uint16 is stored as tif (png's default is 8-bit).
        srcs = self.ingest(["rt_scene_band1.crop.tif"], "scene")
        meta, tiles = self.check_layer("scene", srcs, "tif", 1, "uint16", nodata=0)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_uint16_nodata_one(self):
        # 16-bit png tiles, asked for.
        srcs = self.ingest(["rt_cog_nodata.crop.tif"], "cog-nodata", "--format", "png")
        meta, tiles = self.check_layer("cog-nodata", srcs, "png", 1, "uint16", nodata=1)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_rgba_uint16_alpha_is_not_a_data_band(self):
        # Band 4 is an alpha band: it becomes the tiles' validity, not data.
        srcs = self.ingest(["RGBA.uint16.tif"], "rgba", "--format", "tif")
        meta, tiles = self.check_layer("rgba", srcs, "tif", 3, "uint16", check_nodata=False)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_float64_geographic(self):
        srcs = self.ingest(["rc_image_float.crop.tif"], "float64", "--format", "tif",
                           "--cell-type", "float64")
        meta, tiles = self.check_layer("float64", srcs, "tif", 1, "float64", check_nodata=False)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_float32_dem_keeps_its_nodata(self):
        srcs = self.ingest(["dem-hills.crop.tif"], "dem", "--format", "tif", "--cell-type", "float32")
        meta, tiles = self.check_layer("dem", srcs, "tif", 1, "float32", nodata=-999999)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_hillshade_already_in_web_mercator(self):
        srcs = self.ingest(["shade.deflate.tif"], "shade")
        meta, tiles = self.check_layer("shade", srcs, "png", 1, "uint8", nodata=255)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_webp_compressed_source(self):
        srcs = self.ingest(["rc_image_webp.tif"], "webp-src")
        meta, tiles = self.check_layer("webp-src", srcs, "png", 3, "uint8", check_nodata=False)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None)

    def test_rotated_without_crs_as_floating_layer(self):
        # No CRS is needed for a floating layer: tiles stay in the file's own
        # coordinates, north-up, origin at the layer's top-left corner.
        self.ingest(["rotated.tif"], "rotated-floating", "--layout", "floating")
        meta = kt.load_metadata(self.cat, "default", "rotated-floating")
        self.assertEqual(meta["layout"], "floating")
        self.assertIsNone(meta["crs"]["epsg"])
        # gdalinfo's corners of the rotated 10x15 image: x 100..348.205,
        # y 70.096..300 (file units).
        x0, y0, x1, y1 = kt.bbox(meta["extent"]["layer_crs"])
        for got, want in zip((x0, y0, x1, y1), (100.0, 70.096, 348.205, 300.0)):
            self.assertAlmostEqual(got, want, delta=1.0)
        origin = meta["tile_matrix"]["origin"]
        self.assertAlmostEqual(origin[0], x0, delta=1e-6)
        self.assertAlmostEqual(origin[1], y1, delta=1e-6)
        # The image's pixels are 20 x 10 units (rotated); a north-up grid
        # keeping their size has pixels of 5..20 units.
        res = meta["tile_matrix"]["resolution_at_max_zoom"]
        res = res if isinstance(res, list) else [res, res]
        for r in res:
            self.assertTrue(5 <= abs(r) <= 20, res)
        tiles = kt.list_tiles(kt.current_dir(self.cat, "default", "rotated-floating"))
        self.assertEqual({lv["zoom"]: lv["tiles"] for lv in meta["levels"]},
                         {z: len(t) for z, t in tiles.items()})
        top = meta["zoom"]["max"]
        # At most a few dozen pixels a side at max zoom: one tile.
        self.assertEqual(list(tiles[top]), [(0, 0)])
        for zt in tiles.values():
            for path in zt.values():
                driver, w, h, _, dtype, _ = kt.tile_info(path)
                self.assertEqual((driver, w, h, dtype), ("PNG", 256, 256, "Byte"), path)
                data, alpha = kt.read_tile(path)
                self.assertEqual(data.shape[0], 1, path)
        # The rotated image covers 150 source pixels of 200 square units:
        # 30000 units^2, about half of its 248 x 230 bounding box.
        data, alpha = kt.read_tile(tiles[top][(0, 0)])
        valid = np.count_nonzero(kt.valid_mask(data, alpha, meta.get("nodata")))
        area = valid * abs(res[0] * res[1])
        self.assertAlmostEqual(area, 30000, delta=0.25 * 30000)

    def test_rotated_with_assigned_crs_as_zoomed_layer(self):
        srs = "EPSG:32618"
        srcs = self.ingest(["rotated.tif"], "rotated", "--src-crs", srs)
        meta, tiles = self.check_layer("rotated", srcs, "png", 1, "uint8", check_nodata=False,
                                       srs=srs)
        self.compare_with_gdalwarp(meta, tiles, srcs[0], None, srs=srs)


if __name__ == "__main__":
    unittest.main()

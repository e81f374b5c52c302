"""Bad input fails cleanly: the documented exit code, an "error:" line on
stderr naming the culprit, and no layer version published."""

import hashlib
import json
import os
import re
import tempfile
import unittest

import numpy as np

import kiln_test as kt

NO_GEOREF = r"georef|\bcrs\b"


def tree_digest(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for rel in kt.all_files(root):
        with open(os.path.join(root, rel), "rb") as f:
            out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def find_key(doc, pred):
    """The first (dict, key) in a JSON document whose key satisfies pred."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if pred(k):
                return doc, k
        for v in doc.values():
            hit = find_key(v, pred)
            if hit:
                return hit
    elif isinstance(doc, list):
        for v in doc:
            hit = find_key(v, pred)
            if hit:
                return hit
    return None


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.cat = kt.TempCatalog().__enter__()
        self.addCleanup(self.cat.__exit__, None, None, None)
        self.work = tempfile.mkdtemp(prefix="inputs-", dir=self.cat.tmp)

    def assert_fails(self, args, codes, culprits, layer=None, cwd=None):
        """Runs kiln; checks rc is in `codes`, stderr has an "error:" line and
        matches every regex in `culprits` (case-insensitive), and that `layer`
        (when given) has no published version. Returns stderr."""
        rc, out, err = kt.run_kiln(args, cwd=cwd)
        context = "kiln %s\nrc=%d\nstderr:\n%s" % (" ".join(map(str, args)), rc, err[-3000:])
        self.assertIn(rc, codes, context)
        self.assertRegex(err, r"(?m)error:", context)
        for pattern in culprits:
            self.assertRegex(err, re.compile(pattern, re.I), context)
        if layer is not None:
            kt.assert_nothing_published(self, self.cat, "default", layer)
        return err

    def corrupt_scene(self):
        """An RGB copy of the Landsat scene whose file is cut in half: GDAL
        opens it, reading the pixels past the cut fails."""
        return kt.truncated_geotiff(kt.l7_path(), os.path.join(self.work, "corrupt.tif"),
                                    bands=[3, 2, 1])

    # --- sources -------------------------------------------------------

    def test_missing_source(self):
        missing = os.path.join(self.work, "no-such-scene.tif")
        self.assert_fails(kt.ingest_args(missing, self.cat, "missing"), [kt.EXIT_INPUT],
                          [re.escape("no-such-scene.tif")], layer="missing")

    def test_text_file_named_tif(self):
        fake = os.path.join(self.work, "not-an-image.tif")
        with open(fake, "w") as f:
            f.write("this is a text file, not a GeoTIFF\n" * 20)
        self.assert_fails(kt.ingest_args(fake, self.cat, "text"), [kt.EXIT_INPUT],
                          [re.escape("not-an-image.tif")], layer="text")

    def test_band_out_of_range(self):
        # L7_ETMs.tif has 6 bands.
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, "band7", "--bands", "7"),
                          [kt.EXIT_INPUT, kt.EXIT_USAGE], [r"band[s]?\W{0,3}7\b"],
                          layer="band7")

    def test_corrupt_tif(self):
        # Metadata opens fine; the tiles past the cut are truncated, so this
        # fails while tiles are being read, after staging has started.
        src = self.corrupt_scene()
        self.assert_fails(kt.ingest_args(src, self.cat, "corrupt"), [kt.EXIT_INPUT],
                          [re.escape("corrupt.tif")], layer="corrupt")

    def test_no_geotransform_or_crs(self):
        src = kt.data_path("rc_cog_no_offest.tif")
        self.assert_fails(kt.ingest_args(src, self.cat, "nogeo"), [kt.EXIT_INPUT],
                          [re.escape("rc_cog_no_offest.tif"), NO_GEOREF], layer="nogeo")

    def test_no_crs_for_zoomed_layout(self):
        # float_nan.tif has a geotransform but no CRS: it cannot be placed on
        # the Web Mercator grid.
        src = kt.data_path("float_nan.tif")
        self.assert_fails(kt.ingest_args(src, self.cat, "nocrs", "--layout", "zoomed"),
                          [kt.EXIT_INPUT], [re.escape("float_nan.tif"), NO_GEOREF],
                          layer="nocrs")

    # --- nothing to ingest ---------------------------------------------

    def test_all_nodata_scene(self):
        src = kt.write_raster(os.path.join(self.work, "all-nodata.tif"),
                              np.zeros((64, 64), dtype=np.uint8),
                              geotransform=(10.0, 0.001, 0, 10.0, 0, -0.001),
                              srs="EPSG:4326", nodata=0)
        self.assert_fails(kt.ingest_args(src, self.cat, "empty"), [kt.EXIT_EMPTY],
                          [re.escape("all-nodata.tif") + "|empty|nothing|no (valid )?data"],
                          layer="empty")

    def test_scene_beyond_web_mercator_latitudes(self):
        # 86..89 degrees N lies outside the Web Mercator square (85.05 N):
        # the footprint meets no tile.
        src = kt.write_raster(os.path.join(self.work, "polar.tif"),
                              np.full((30, 100), 7, dtype=np.uint8),
                              geotransform=(0.0, 0.1, 0, 89.0, 0, -0.1), srs="EPSG:4326")
        self.assert_fails(kt.ingest_args(src, self.cat, "polar"), [kt.EXIT_EMPTY],
                          [re.escape("polar.tif") + "|empty|nothing|no tile|intersect"],
                          layer="polar")

    # --- options and definitions ---------------------------------------

    def test_unknown_resample_option(self):
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, "resample", "--resample",
                                         "bogus"), [kt.EXIT_USAGE], ["resample", "bogus"],
                          layer="resample")

    def test_max_zoom_out_of_range(self):
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, "zoom", "--max-zoom", "31"),
                          [kt.EXIT_USAGE], [r"max[-_ ]?zoom|zoom\.max", r"\b31\b"], layer="zoom")

    def test_tile_size_not_a_power_of_two(self):
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, "ts", "--tile-size", "300"),
                          [kt.EXIT_USAGE], [r"tile[-_ ]?size", r"\b300\b"], layer="ts")

    def test_invalid_json_definition(self):
        path = os.path.join(self.work, "broken.json")
        with open(path, "w") as f:
            # The stray comma on line 4 makes this invalid JSON.
            f.write('{\n  "layer": "broken",\n  "sources": [\n'
                    '    {"uri": "data/L7_ETMs.tif",,}\n  ]\n}\n')
        self.assert_fails(["ingest", "--definition", path, "--catalog", self.cat.path],
                          [kt.EXIT_USAGE], [re.escape("broken.json"), r"line\s*4\b|:4:\d+"],
                          layer="broken")

    def test_unknown_resample_in_definition(self):
        # The example definition with its warp resample method replaced.
        src_dir = kt.source_dir()
        with open(os.path.join(src_dir, "examples", "landsat-rgb.json")) as f:
            doc = json.load(f)
        hit = find_key(doc, lambda k: "resample" in k.lower() and "pyramid" not in k.lower())
        if hit is None:
            hit = find_key(doc, lambda k: k == "catalog")
            self.assertIsNotNone(hit, "examples/landsat-rgb.json has no output section")
            hit = (hit[0], "resample")
        hit[0][hit[1]] = "bogus"
        path = os.path.join(self.work, "bad-resample.json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=2)
        self.assert_fails(["ingest", "--definition", path, "--catalog", self.cat.path],
                          [kt.EXIT_USAGE], ["resample", "bogus"], layer="landsat-rgb",
                          cwd=src_dir)

    # --- names that would escape the catalog -----------------------------

    def test_layer_name_with_dot_dot(self):
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, "../evil"),
                          [kt.EXIT_OUTPUT, kt.EXIT_USAGE], [re.escape("../evil")])
        for dirpath, dirs, files in os.walk(self.cat.tmp):
            self.assertNotIn("evil", dirs + files, "kiln wrote %s/evil" % dirpath)

    def test_absolute_layer_name(self):
        target = os.path.join(self.cat.tmp, "abs-layer")
        self.assert_fails(kt.ingest_args(kt.l7_path(), self.cat, target),
                          [kt.EXIT_OUTPUT, kt.EXIT_USAGE], [re.escape(target)])
        self.assertFalse(os.path.lexists(target), "kiln wrote into %s" % target)

    # --- a failure leaves the previous version alone ----------------------

    def check_failed_reingest_keeps_version(self, bad_source):
        layer = "keep"
        kt.ingest_l7(self.cat, layer)
        ldir = kt.layer_dir(self.cat, "default", layer)
        before = tree_digest(os.path.join(ldir, "current"))
        self.assertTrue(any(p.endswith(".png") for p in before))
        self.assert_fails(kt.ingest_args(bad_source, self.cat, layer), [kt.EXIT_INPUT],
                          [re.escape(os.path.basename(bad_source))])
        self.assertEqual(os.path.normpath(os.readlink(os.path.join(ldir, "current"))),
                         os.path.join("versions", "v000001"))
        self.assertEqual(os.listdir(os.path.join(ldir, "versions")), ["v000001"])
        kt.assert_staging_clean(self, ldir)
        self.assertEqual(tree_digest(os.path.join(ldir, "current")), before,
                         "the published version changed after a failed ingest")

    def test_failed_reingest_from_missing_file_keeps_previous_version(self):
        self.check_failed_reingest_keeps_version(os.path.join(self.work, "gone.tif"))

    def test_failed_reingest_from_corrupt_file_keeps_previous_version(self):
        self.check_failed_reingest_keeps_version(self.corrupt_scene())


if __name__ == "__main__":
    unittest.main()

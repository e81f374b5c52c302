"""The papercuts a new user hit at the command line (issue 15): what kiln
says for a mistyped command or option, a missing file, an unreachable
server, a zoom far past the source's resolution, and whether --help and
the docs agree with what the tool accepts."""

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import unittest

import kiln_server as ks
import kiln_test as kt


class TypoTest(unittest.TestCase):
    def assert_suggests(self, args, wrong, right):
        rc, out, err = kt.run_kiln(args)
        context = "kiln %s\nrc=%d\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), rc, out, err)
        self.assertEqual(rc, kt.EXIT_USAGE, context)
        self.assertRegex(err, r"(?m)^kiln: error: .*'%s'.*did you mean '%s'\?$" % (
            re.escape(wrong), re.escape(right)), context)

    def test_mistyped_subcommand(self):
        self.assert_suggests(["ingset"], "ingset", "ingest")
        self.assert_suggests(["step", "sumbit", "x.tif"], "sumbit", "submit")
        self.assert_suggests(["cluster", "stats"], "stats", "status")

    def test_mistyped_option(self):
        self.assert_suggests(["ingest", kt.l7_path(), "--layr", "x", "--catalog", "/nonexistent"],
                             "--layr", "--layer")
        self.assert_suggests(["plan", kt.l7_path(), "--layer", "x", "--max-zom", "3"],
                             "--max-zom", "--max-zoom")
        self.assert_suggests(["plan", kt.l7_path(), "--layr=x"], "--layr", "--layer")
        self.assert_suggests(["--log-levl", "debug", "catalog"], "--log-levl", "--log-level")

    def test_words_far_from_any_name_get_no_guess(self):
        for args in (["frobnicate"], ["plan", kt.l7_path(), "--zzz"]):
            rc, _, err = kt.run_kiln(args)
            self.assertEqual(rc, kt.EXIT_USAGE, err)
            self.assertNotIn("did you mean", err)

    def test_help_is_not_a_typo(self):
        rc, out, err = kt.run_kiln(["ingest", "--help"])
        self.assertEqual(rc, kt.EXIT_OK, err)
        self.assertIn("--layer", out)


class SubmitMissingFileTest(unittest.TestCase):
    """`kiln step submit` checks relative paths where the user is; a missing
    one is reported as missing before anything is sent (no server needed)."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="kiln-cli-")
        self.addCleanup(shutil.rmtree, self.work)

    def assert_missing(self, args):
        rc, out, err = kt.run_kiln(args + ["--server", "http://127.0.0.1:9", "--token", "t"],
                                   cwd=self.work)
        context = "rc=%d\nstderr:\n%s" % (rc, err)
        self.assertEqual(rc, kt.EXIT_INPUT, context)
        self.assertIn("source 'rel.tif' does not exist", err)
        self.assertIn(os.path.join(os.path.realpath(self.work), "rel.tif"),
                      err.replace(self.work, os.path.realpath(self.work)))
        self.assertNotIn("is relative", err)
        self.assertNotIn("cannot reach", err)  # refused before any request

    def test_missing_relative_source(self):
        self.assert_missing(["step", "submit", "rel.tif", "--layer", "x"])

    def test_missing_relative_source_in_a_definition(self):
        with open(os.path.join(self.work, "def.json"), "w") as f:
            json.dump({"layer": "x", "sources": [{"uri": "rel.tif"}]}, f)
        self.assert_missing(["step", "submit", "--definition", "def.json"])


class ConnectionErrorTest(unittest.TestCase):
    """When kiln serve cannot be reached, the error says why."""

    def test_nothing_listening(self):
        url = "http://127.0.0.1:%d" % ks.free_port()
        for args in (["step", "list"], ["cluster", "status"]):
            rc, _, err = kt.run_kiln(args + ["--server", url, "--token", "t"])
            self.assertEqual(rc, kt.EXIT_INTERNAL, err)
            self.assertIn("kiln: error: cannot reach kiln serve at %s: connection refused" % url,
                          err)

    def test_server_hangs_up(self):
        # Something listens, accepts and closes without answering.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)
        self.addCleanup(listener.shutdown, socket.SHUT_RDWR)  # wakes accept()

        def hang_up():
            try:
                while True:
                    conn, _ = listener.accept()
                    conn.close()
            except OSError:  # the listener was closed: the test is over
                pass

        threading.Thread(target=hang_up, daemon=True).start()
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        rc, _, err = kt.run_kiln(["step", "list", "--server", url, "--token", "t"])
        self.assertEqual(rc, kt.EXIT_INTERNAL, err)
        self.assertIn("cannot reach kiln serve at %s: the connection closed" % url, err)
        self.assertNotIn("connection refused", err)


class PlanOversamplingTest(unittest.TestCase):
    """data/L7_ETMs.tif has 28.5 m pixels: zoom 12 at 256 px tiles."""

    def plan(self, *extra):
        return kt.run_kiln(["plan", kt.l7_path(), "--layer", "l7", "--catalog", "/nonexistent",
                            "--bands", "3,2,1"] + list(extra), expect_rc=kt.EXIT_OK)

    def test_warns_past_two_levels_finer_than_the_source(self):
        _, out, err = self.plan("--max-zoom", "16")
        self.assertRegex(err, r"(?m)^kiln: warning: layer l7: max zoom 16 oversamples the "
                              r"sources by 4 levels: their resolution gives zoom 12")
        self.assertRegex(out, r"(?m)^\s+16\s+\d+")  # the plan is still printed
        _, out, _ = self.plan("--max-zoom", "16", "--json")
        plan = json.loads(out)
        self.assertEqual(plan["zoom"]["native"], 12)
        self.assertEqual(len(plan["warnings"]), 1)
        self.assertIn("oversamples", plan["warnings"][0])

    def test_quiet_up_to_two_levels(self):
        for extra in ([], ["--max-zoom", "14"]):
            _, out, err = self.plan(*extra)
            self.assertNotIn("warning", err)
            _, out, _ = self.plan("--json", *extra)
            self.assertEqual(json.loads(out)["warnings"], [])


class FlaglessIngestTest(unittest.TestCase):
    """A float32 DEM, a uint16 scene or a 6-band scene ingests with no format
    flag: tif is picked (the default png is for 1 or 3 bands of uint8) and
    kiln says so."""

    def setUp(self):
        self.cat = kt.TempCatalog().__enter__()
        self.addCleanup(self.cat.__exit__, None, None, None)

    def ingest(self, source, layer, *extra, expect_rc=kt.EXIT_OK):
        return kt.run_kiln(kt.ingest_args(source, self.cat, layer, *extra), expect_rc=expect_rc)

    def assert_tif_layer(self, layer, cell_type, bands):
        cur = kt.current_dir(self.cat, "default", layer)
        meta = kt.load_metadata(self.cat, "default", layer)
        self.assertEqual(meta["format"], "tif")
        self.assertEqual(meta["cell_type"], cell_type)
        tiles = kt.list_tiles(cur)
        self.assertTrue(tiles)
        self.assertEqual(kt.list_tiles(cur, "tif"), tiles)  # no png among them
        top = tiles[max(tiles)]
        data, _ = kt.read_tile(next(iter(top.values())))
        self.assertEqual(data.shape[0], bands)
        self.assertEqual(str(data.dtype), cell_type)

    def test_float_dem(self):
        dem = kt.data_path("dem-hills.crop.tif")
        _, out, _ = self.ingest(dem, "dem")
        self.assertRegex(out, r"(?m)^tiles\s+\d+ tif tiles")
        self.assertRegex(out, r"(?m)^format\s+tif \(picked: the default png is for 1 or 3 bands "
                              r"of uint8, not 1 band of float32\)$")
        self.assert_tif_layer("dem", "float32", 1)
        _, out, _ = kt.run_kiln(["plan", dem, "--layer", "dem", "--catalog", str(self.cat)],
                                expect_rc=kt.EXIT_OK)
        self.assertIn("format tif (picked", out)

    def test_six_band_scene(self):
        _, out, _ = self.ingest(kt.l7_path(), "analytic")
        self.assertRegex(out, r"(?m)^format\s+tif .*not 6 bands of uint8\)$")
        self.assert_tif_layer("analytic", "uint8", 6)

    def test_uint16_scene(self):
        # png could hold it, but as 16-bit values no viewer shows as they are.
        scene = kt.data_path("rt_scene_band1.crop.tif")
        _, out, _ = self.ingest(scene, "scene16")
        self.assertRegex(out, r"(?m)^format\s+tif .*not 1 band of uint16\)$")
        self.assert_tif_layer("scene16", "uint16", 1)
        # Asked for, png still holds it.
        _, out, _ = self.ingest(scene, "scene16png", "--format", "png")
        self.assertRegex(out, r"(?m)^tiles\s+\d+ png tiles")

    def test_three_bands_stay_png(self):
        _, out, _ = self.ingest(kt.l7_path(), "rgb", "--bands", "3,2,1")
        self.assertRegex(out, r"(?m)^tiles\s+\d+ png tiles")
        self.assertRegex(out, r"(?m)^format\s+png \(the default; it holds 3 bands of uint8\)$")

    def test_png_asked_for_a_dem_names_the_file(self):
        dem = kt.data_path("dem-hills.crop.tif")
        _, _, err = self.ingest(dem, "dem", "--format", "png", expect_rc=kt.EXIT_USAGE)
        self.assertIn("png tiles hold 1 or 3 bands of uint8 or uint16", err)
        self.assertIn(dem, err)
        kt.assert_nothing_published(self, self.cat, "default", "dem")


class HelpAgreesWithTheToolTest(unittest.TestCase):
    def test_tile_size(self):
        _, out, _ = kt.run_kiln(["ingest", "--help"], expect_rc=kt.EXIT_OK)
        m = re.search(r"--tile-size INT\s+Tile size in pixels: a power of two from (\d+) to (\d+)",
                      out)
        self.assertTrue(m, out)
        low, high = int(m.group(1)), int(m.group(2))
        plan = ["plan", kt.l7_path(), "--layer", "t", "--catalog", "/nonexistent", "--bands",
                "3,2,1", "--max-zoom", "4", "--tile-size"]
        for ok in (low, 128, 512, high):
            kt.run_kiln(plan + [str(ok)], expect_rc=kt.EXIT_OK)
        for bad in (low // 2, 384, high * 2):
            _, _, err = kt.run_kiln(plan + [str(bad)], expect_rc=kt.EXIT_USAGE)
            self.assertIn("--tile-size: must be a power of two from %d to %d" % (low, high), err)

    def test_band_numbering(self):
        # `--bands` counts source bands from 1, as docs/definition.md says.
        _, out, _ = kt.run_kiln(["ingest", "--help"], expect_rc=kt.EXIT_OK)
        self.assertRegex(out, r"--bands TEXT\s+Source bands in output order, 1-based")
        with open(os.path.join(kt.source_dir(), "docs", "definition.md")) as f:
            doc = f.read()
        self.assertIn("counted from 1 as GDAL counts them", doc)
        self.assertIn("| `target_bands` | array of integers | `0, 1, 2, ...` | Output band of "
                      "each entry of `bands` (same length), counted from 0.", doc)
        plan = ["plan", kt.l7_path(), "--layer", "t", "--catalog", "/nonexistent",
                "--max-zoom", "4"]
        _, _, err = kt.run_kiln(plan + ["--bands", "0"], expect_rc=kt.EXIT_USAGE)
        self.assertIn("source bands count from 1", err)
        _, _, err = kt.run_kiln(plan + ["--bands", "7"], expect_rc=kt.EXIT_INPUT)
        self.assertRegex(err, r"\b7\b")
        kt.run_kiln(plan + ["--bands", "6"], expect_rc=kt.EXIT_OK)


if __name__ == "__main__":
    unittest.main()

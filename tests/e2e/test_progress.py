"""What the CLI tells a user while and before it works: progress lines,
--quiet, --help, and `kiln plan`, which writes nothing."""

import json
import os
import re
import unittest

import kiln_test as kt

INGEST_OPTIONS = ("--definition", "--catalog", "--layer", "--env", "--layout", "--tile-size",
                  "--min-zoom", "--max-zoom", "--bands", "--cell-type", "--nodata",
                  "--resample", "--pyramid-resample", "--format", "--threads", "--progress",
                  "--quiet")


def find_levels(doc):
    """The first list of objects carrying "zoom" and "tiles" in a JSON doc."""
    if isinstance(doc, list):
        if doc and all(isinstance(e, dict) and "zoom" in e and "tiles" in e for e in doc):
            return doc
        items = doc
    elif isinstance(doc, dict):
        items = doc.values()
    else:
        return None
    for v in items:
        hit = find_levels(v)
        if hit is not None:
            return hit
    return None


class ProgressTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A reference ingest: the per-zoom tile counts plan must predict.
        cls.ref = kt.TempCatalog().__enter__()
        # Runs even when setUpClass fails, unlike tearDownClass.
        cls.addClassCleanup(cls.ref.__exit__, None, None, None)
        kt.ingest_l7(cls.ref, "ref")
        meta = kt.load_metadata(cls.ref, "default", "ref")
        cls.levels = {lv["zoom"]: lv["tiles"] for lv in meta["levels"]}

    def test_json_progress_reaches_the_total(self):
        with kt.TempCatalog() as cat:
            args = kt.ingest_args(kt.l7_path(), cat, "p", "--bands", "3,2,1")
            args[args.index("--progress") + 1] = "json"
            _, _, err = kt.run_kiln(args, expect_rc=kt.EXIT_OK)
            events = []
            for line in err.splitlines():
                if line.strip().startswith("{"):
                    events.append(json.loads(line))  # a malformed line fails here
            progress = [e for e in events if "tiles_done" in e]
            self.assertTrue(progress, "no JSON progress line on stderr:\n" + err[-2000:])
            done = [e["tiles_done"] for e in progress]
            self.assertEqual(done, sorted(done), "tiles_done went backwards")
            total = progress[-1]["tiles_total"]
            self.assertEqual(done[-1], total)
            self.assertTrue(all(e["tiles_total"] == total for e in progress))
            # The total counts either every tile of the pyramid or the
            # max-zoom tiles that get warped.
            self.assertIn(total, (sum(self.levels.values()), self.levels[max(self.levels)]))

    def test_quiet_prints_nothing_on_success(self):
        with kt.TempCatalog() as cat:
            args = ["ingest", kt.l7_path(), "--layer", "q", "--catalog", cat.path, "--bands",
                    "3,2,1", "--quiet"]
            _, _, err = kt.run_kiln(args, expect_rc=kt.EXIT_OK)
            self.assertEqual(err, "")
            self.assertTrue(os.path.isdir(kt.current_dir(cat, "default", "q")))

    def test_help(self):
        _, out, err = kt.run_kiln(["--help"], expect_rc=kt.EXIT_OK)
        for cmd in ("ingest", "plan", "catalog"):
            self.assertIn(cmd, out + err)
        _, out, err = kt.run_kiln(["ingest", "--help"], expect_rc=kt.EXIT_OK)
        for opt in INGEST_OPTIONS:
            self.assertIn(opt, out + err)
        _, out, err = kt.run_kiln(["catalog", "--help"], expect_rc=kt.EXIT_OK)
        for cmd in ("ls", "info"):
            self.assertRegex(out + err, r"\b%s\b" % cmd)

    def test_unknown_subcommand_is_a_usage_error(self):
        rc, _, err = kt.run_kiln(["frobnicate"])
        self.assertEqual(rc, kt.EXIT_USAGE, err)

    def test_plan_prints_tiles_per_zoom_and_writes_nothing(self):
        with kt.TempCatalog() as cat:
            args = ["plan", kt.l7_path(), "--layer", "plan", "--catalog", cat.path, "--bands",
                    "3,2,1"]
            _, out, err = kt.run_kiln(args, expect_rc=kt.EXIT_OK)
            lines = out.splitlines()
            for z, n in self.levels.items():
                # Some line names zoom z and then its tile count.
                pattern = re.compile(r"\b%d\b.*\b%d\b" % (z, n))
                self.assertTrue(any(pattern.search(l) for l in lines),
                                "plan output has no line for zoom %d with %d tiles:\n%s"
                                % (z, n, out))
            _, out, err = kt.run_kiln(args + ["--json"], expect_rc=kt.EXIT_OK)
            levels = find_levels(json.loads(out))
            self.assertIsNotNone(levels, "plan --json has no [{zoom, tiles}] list:\n" + out)
            self.assertEqual({lv["zoom"]: lv["tiles"] for lv in levels}, self.levels)
            self.assertFalse(os.path.lexists(kt.layer_dir(cat, "default", "plan")))
            self.assertEqual(kt.all_files(cat.tmp), [], "plan wrote files")

    def test_plan_reports_input_errors_like_ingest(self):
        with kt.TempCatalog() as cat:
            missing = os.path.join(cat.tmp, "absent.tif")
            rc, _, err = kt.run_kiln(["plan", missing, "--layer", "x", "--catalog", cat.path])
            self.assertEqual(rc, kt.EXIT_INPUT, err)
            self.assertIn("absent.tif", err)


if __name__ == "__main__":
    unittest.main()

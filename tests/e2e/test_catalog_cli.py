"""`kiln catalog ls|info`: what a user sees of the layers in a catalog."""

import json
import os
import re
import unittest

import kiln_test as kt

METADATA_FIELDS = (
    "kiln_version", "layer", "environment", "version", "created_at", "layout", "crs",
    "tile_size", "format", "cell_type", "bands", "nodata", "zoom", "extent", "tile_matrix",
    "levels", "statistics", "sources", "resample", "pyramid_resample", "definition",
)


def layer_entries(doc):
    """The per-layer objects of `catalog ls --json`: a list of objects, or an
    object holding such a list under "layers"."""
    if isinstance(doc, dict):
        doc = doc.get("layers")
    if not isinstance(doc, list):
        raise AssertionError("catalog ls --json: expected a list of layers, got %r" % (doc,))
    return doc


def entry_version(entry):
    for key in ("current_version", "version", "current"):
        if key in entry:
            return entry[key]
    raise AssertionError("no version in catalog ls entry %r" % (entry,))


class CatalogCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cat = kt.TempCatalog().__enter__()
        # Runs even when setUpClass fails, unlike tearDownClass.
        cls.addClassCleanup(cls.cat.__exit__, None, None, None)
        src = kt.l7_path()
        # "alpha" in env default, published twice; "beta" in env staging.
        for _ in range(2):
            kt.run_kiln(kt.ingest_args(src, cls.cat, "alpha", "--bands", "3,2,1"),
                        expect_rc=kt.EXIT_OK)
        kt.run_kiln(kt.ingest_args(src, cls.cat, "beta", "--bands", "1", "--env", "staging",
                                   "--max-zoom", "10"), expect_rc=kt.EXIT_OK)

    def test_ls_lists_layers_with_their_version(self):
        _, out, _ = kt.run_kiln(["catalog", "ls", "--catalog", self.cat.path],
                                expect_rc=kt.EXIT_OK)
        alpha = [l for l in out.splitlines() if re.search(r"\balpha\b", l)]
        beta = [l for l in out.splitlines() if re.search(r"\bbeta\b", l)]
        self.assertEqual(len(alpha), 1, out)
        self.assertEqual(len(beta), 1, out)
        self.assertRegex(alpha[0], r"\bdefault\b")
        self.assertRegex(alpha[0], r"\b(v0*)?2\b", "alpha's current version is 2")
        self.assertRegex(beta[0], r"\bstaging\b")
        self.assertRegex(beta[0], r"\b(v0*)?1\b")

    def test_ls_of_one_environment(self):
        _, out, _ = kt.run_kiln(["catalog", "ls", "--catalog", self.cat.path, "--env",
                                 "staging"], expect_rc=kt.EXIT_OK)
        self.assertRegex(out, r"\bbeta\b")
        self.assertNotRegex(out, r"\balpha\b")

    def test_ls_json(self):
        _, out, _ = kt.run_kiln(["catalog", "ls", "--catalog", self.cat.path, "--json"],
                                expect_rc=kt.EXIT_OK)
        entries = layer_entries(json.loads(out))
        by_name = {(e["environment"], e["layer"]): e for e in entries}
        self.assertEqual(sorted(by_name), [("default", "alpha"), ("staging", "beta")])
        self.assertEqual(entry_version(by_name[("default", "alpha")]), 2)
        self.assertEqual(entry_version(by_name[("staging", "beta")]), 1)

    def test_info_prints_the_current_metadata(self):
        _, out, _ = kt.run_kiln(["catalog", "info", "--catalog", self.cat.path, "alpha"],
                                expect_rc=kt.EXIT_OK)
        info = json.loads(out)
        for field in METADATA_FIELDS:
            self.assertIn(field, info)
        self.assertEqual(info, kt.load_metadata(self.cat, "default", "alpha"))
        self.assertEqual(info["version"], 2)
        self.assertEqual(info["layer"], "alpha")

    def test_info_of_an_older_version(self):
        _, out, _ = kt.run_kiln(["catalog", "info", "--catalog", self.cat.path, "alpha",
                                 "--version", "1"], expect_rc=kt.EXIT_OK)
        v1 = os.path.join(kt.layer_dir(self.cat, "default", "alpha"), "versions", "v000001")
        info = json.loads(out)
        self.assertEqual(info["version"], 1)
        self.assertEqual(info, kt.load_metadata(self.cat, "default", "alpha", v1))

    def test_info_in_another_environment(self):
        _, out, _ = kt.run_kiln(["catalog", "info", "--catalog", self.cat.path, "--env",
                                 "staging", "beta"], expect_rc=kt.EXIT_OK)
        info = json.loads(out)
        self.assertEqual((info["environment"], info["layer"]), ("staging", "beta"))
        self.assertEqual(info["zoom"]["max"], 10)
        self.assertEqual(len(info["bands"]), 1)

    def assert_not_found(self, args, culprit):
        rc, out, err = kt.run_kiln(["catalog", "info", "--catalog", self.cat.path] + args)
        self.assertEqual(rc, kt.EXIT_NOT_FOUND, err)
        self.assertIn("error:", err)
        self.assertIn(culprit, err)

    def test_info_of_a_missing_layer(self):
        self.assert_not_found(["no-such-layer"], "no-such-layer")

    def test_info_of_a_missing_version(self):
        self.assert_not_found(["alpha", "--version", "9"], "9")

    def test_environments_do_not_see_each_other(self):
        self.assert_not_found(["--env", "staging", "alpha"], "alpha")


if __name__ == "__main__":
    unittest.main()

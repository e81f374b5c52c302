"""Re-running an ingest publishes a new version with byte-identical tiles: a
retried job or a re-run definition never changes what readers see."""

import filecmp
import os
import unittest

import kiln_test as kt

DEFINITION = os.path.join("examples", "landsat-rgb.json")
LAYER = "landsat-rgb"  # the layer examples/landsat-rgb.json names


class IdempotentTest(unittest.TestCase):
    def test_same_definition_twice_gives_identical_versions(self):
        kt.l7_path()  # fail early with a clear message when data/ is missing
        src_dir = kt.source_dir()
        self.assertTrue(os.path.isfile(os.path.join(src_dir, DEFINITION)),
                        "%s missing" % DEFINITION)
        with kt.TempCatalog() as cat:
            for _ in range(2):
                # The definition names data/L7_ETMs.tif relative to the
                # repository root, where `make demo` runs it.
                kt.run_kiln(["ingest", "--definition", DEFINITION, "--catalog", cat.path,
                             "--progress", "none"], expect_rc=kt.EXIT_OK, cwd=src_dir)
            ldir = kt.layer_dir(cat, "default", LAYER)
            self.assertEqual(sorted(os.listdir(os.path.join(ldir, "versions"))),
                             ["v000001", "v000002"])
            self.assertEqual(os.path.normpath(os.readlink(os.path.join(ldir, "current"))),
                             os.path.join("versions", "v000002"))
            v1 = os.path.join(ldir, "versions", "v000001")
            v2 = os.path.join(ldir, "versions", "v000002")
            self.assertEqual(kt.load_metadata(cat, "default", LAYER, v1)["version"], 1)
            self.assertEqual(kt.load_metadata(cat, "default", LAYER, v2)["version"], 2)
            self.assertEqual(kt.load_metadata(cat, "default", LAYER)["version"], 2)

            files1, files2 = kt.all_files(v1), kt.all_files(v2)
            self.assertEqual(files1, files2, "the two versions hold different files")
            tiles1 = kt.list_tiles(v1)
            self.assertGreater(sum(len(t) for t in tiles1.values()), 13)
            for z, tiles in tiles1.items():
                for (x, y), path in tiles.items():
                    other = os.path.join(v2, os.path.relpath(path, v1))
                    self.assertTrue(filecmp.cmp(path, other, shallow=False),
                                    "tile %d/%d/%d differs between versions" % (z, x, y))
            kt.assert_staging_clean(self, ldir)


if __name__ == "__main__":
    unittest.main()

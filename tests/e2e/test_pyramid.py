"""Pyramid levels: each tile below max zoom must be the 2x2 average of its
four children as written on disk."""

import unittest

import numpy as np

import kiln_test as kt

LAYER = "l7-pyramid"
# PNG is lossless and the engine builds parents in memory from the very
# pixels it writes as children, so the expected parent is exact: no
# tolerance. (Raise only if the engine documents a different rounding.)
MAX_DIFF = 0


def expected_parent(children, tile_size=256):
    """The parent tile the average pyramid rule gives for `children`, a dict
    {(dx, dy): (data, valid)} with dx, dy in {0, 1} (missing: all invalid).
    Mean of the valid child pixels under each parent pixel, rounded half away
    from zero; valid iff at least one of them is."""
    nb = next(iter(children.values()))[0].shape[0]
    full = np.zeros((nb, 2 * tile_size, 2 * tile_size), dtype=np.float64)
    full_valid = np.zeros((2 * tile_size, 2 * tile_size), dtype=bool)
    for (dx, dy), (data, valid) in children.items():
        rows = slice(dy * tile_size, (dy + 1) * tile_size)
        cols = slice(dx * tile_size, (dx + 1) * tile_size)
        full[:, rows, cols] = data
        full_valid[rows, cols] = valid
    weights = full_valid.astype(np.float64)
    w4 = weights.reshape(tile_size, 2, tile_size, 2).sum(axis=(1, 3))
    sums = (full * weights).reshape(nb, tile_size, 2, tile_size, 2).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / w4
    # Non-negative (uint8) values: half away from zero is floor(x + 0.5).
    out = np.floor(mean + 0.5)
    return out, w4 > 0


class PyramidTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cat = kt.TempCatalog().__enter__()
        # Runs even when setUpClass fails, unlike tearDownClass.
        cls.addClassCleanup(cls.cat.__exit__, None, None, None)
        kt.run_kiln(kt.ingest_args(kt.l7_path(), cls.cat, LAYER, "--bands", "3,2,1",
                                   "--format", "png", "--pyramid-resample", "average"),
                    expect_rc=kt.EXIT_OK)
        cls.meta = kt.load_metadata(cls.cat, "default", LAYER)
        cls.tiles = kt.list_tiles(kt.current_dir(cls.cat, "default", LAYER))

    def test_each_level_holds_the_parents_of_the_level_below(self):
        max_z = self.meta["zoom"]["max"]
        self.assertEqual(self.meta["pyramid_resample"], "average")
        for z in range(max_z - 1, -1, -1):
            self.assertEqual(set(self.tiles.get(z, {})), kt.parents_of(self.tiles[z + 1]),
                             "tiles at zoom %d are not the parents of zoom %d" % (z, z + 1))

    def test_parents_are_the_average_of_their_children(self):
        max_z = self.meta["zoom"]["max"]
        checked = 0
        for z in range(max_z - 1, -1, -1):
            for (x, y), path in sorted(self.tiles[z].items()):
                children = {}
                for dx in (0, 1):
                    for dy in (0, 1):
                        child = self.tiles[z + 1].get((2 * x + dx, 2 * y + dy))
                        if child is not None:
                            data, alpha = kt.read_tile(child)
                            children[(dx, dy)] = (data, kt.valid_mask(data, alpha))
                want, want_valid = expected_parent(children)
                got, alpha = kt.read_tile(path)
                got_valid = kt.valid_mask(got, alpha)
                where = "%d/%d/%d" % (z, x, y)
                np.testing.assert_array_equal(got_valid, want_valid,
                                              "valid mask of %s" % where)
                diff = np.abs(got.astype(np.float64) - want)[:, want_valid]
                self.assertTrue(diff.size > 0, where)
                self.assertLessEqual(diff.max(), MAX_DIFF,
                                     "%s: max diff %d, %d pixels differ"
                                     % (where, diff.max(), np.count_nonzero(diff)))
                checked += 1
        # Zooms 0..11 hold at least one tile each.
        self.assertGreaterEqual(checked, max_z)


if __name__ == "__main__":
    unittest.main()

"""Rendered tiles from a real `kiln serve` (docs/rendering.md): an analytic
(tif) layer's tile asked for as .png or .webp is rendered by the
environment's renderer process, which runs in the sandbox with only that
environment's catalog in view. The server's image equals `kiln render-tile`
on the same stored tile (which test_render_reference.py checks against
numpy); bad parameters are 400s naming the parameter; a corrupt stored tile
is a 500 naming the tile and harms no other request; another environment
sees nothing."""

import os
import shutil
import tempfile
import unittest

import kiln_server as ks
import kiln_test as kt

U16 = "u16"      # RGBA.uint16.tif: 4 bands of uint16
DEM = "dem"      # dem-hills.crop.tif: 1 band of elevation
PNG = "rgb"      # the Landsat scene as png (stored 8-bit tiles)


def definition(layer, name, fmt="tif"):
    return {"layer": layer,
            "sources": [{"uri": kt.data_path(name)}],
            "output": {"encoding": {"format": fmt}}}


class RenderTilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ks.KilnServer()
        cls.out = tempfile.mkdtemp(prefix="kiln-render-tiles-")
        try:
            cls.srv.start()
            for d in (definition(U16, "RGBA.uint16.tif"), definition(DEM, "dem-hills.crop.tif"),
                      ks.l7_definition(PNG)):
                step = cls.srv.wait_step(cls.srv.submit(d)["id"])
                if step["state"] != "COMPLETED":
                    raise AssertionError("the ingest did not complete: %r" % step)
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.out, ignore_errors=True)

    def get(self, path, token=ks.PRODUCTION_TOKEN, headers=None):
        return self.srv.request("GET", path, token=token, headers=headers)

    def fullest(self, layer):
        """(z, x, y, path) of the largest stored tile at the layer's max zoom
        (the one with the most data)."""
        vdir = os.path.realpath(kt.current_dir(self.srv.catalog, "production", layer))
        tiles = kt.list_tiles(vdir)
        z = max(tiles)
        (x, y), path = max(tiles[z].items(), key=lambda kv: os.path.getsize(kv[1]))
        return z, x, y, path

    def reference(self, tile_path, params, name):
        out = os.path.join(self.out, name)
        kt.run_kiln(["render-tile", "--tile", tile_path, "--params", params, "--out", out],
                    expect_rc=kt.EXIT_OK)
        with open(out, "rb") as f:
            return f.read()

    def renderers(self):
        """Pids of this server's renderer processes (`kiln task render`,
        inside bwrap when sandboxed)."""
        return [pid for pid, argv in ks.descendants(self.srv.proc.pid).items()
                if argv[1:3] == ["task", "render"] and ks.is_kiln_process(argv)]

    def test_rendered_tile_equals_kiln_render_tile(self):
        z, x, y, path = self.fullest(U16)
        for params in ("rescale=0,4000", "bidx=1&colormap=viridis&rescale=100,3000",
                       "bidx=3,2,1&rescale=0,3000;0,3500;0,4000"):
            r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png?%s" % (U16, z, x, y, params))
            self.assertEqual(r.status, 200, (params, r))
            self.assertEqual(r.headers["content-type"], "image/png")
            self.assertEqual(r.body, self.reference(path, params, "ref.png"), params)

    def test_default_rescale_comes_from_the_layer_statistics(self):
        z, x, y, path = self.fullest(U16)
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png" % (U16, z, x, y))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.reference(path, "", "default.png"))

    def test_webp_and_hillshade(self):
        z, x, y, path = self.fullest(DEM)
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.webp?colormap=terrain" % (DEM, z, x, y))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "image/webp")
        self.assertEqual(r.body[:4], b"RIFF")
        self.assertEqual(r.body[8:12], b"WEBP")
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png?hillshade=true&azimuth=300"
                     % (DEM, z, x, y))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body[:8], b"\x89PNG\r\n\x1a\n")

    def test_the_stored_analytic_tile_is_still_served_as_it_is(self):
        z, x, y, path = self.fullest(U16)
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.tif" % (U16, z, x, y))
        self.assertEqual(r.status, 200, r)
        with open(path, "rb") as f:
            self.assertEqual(r.body, f.read())

    def test_bad_parameters_are_400_naming_the_parameter(self):
        z, x, y, _ = self.fullest(U16)
        base = "/v1/layers/%s/tiles/%d/%d/%d" % (U16, z, x, y)
        for query, named in (("colormap=rainbow", "colormap"), ("bidx=9", "bidx"),
                             ("rescale=5", "rescale"), ("size=3", "size"),
                             ("format=webp", "format")):
            r = self.get(base + ".png?" + query)
            self.assertEqual(r.status, 400, (query, r))
            self.assertIn(named, r.json()["error"]["message"], query)
        # A stored 8-bit layer is served as it is: no rendering parameters.
        pz, px, py, _ = self.fullest(PNG)
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png?colormap=viridis" % (PNG, pz, px, py))
        self.assertEqual(r.status, 400, r)
        self.assertIn("colormap", r.json()["error"]["message"])

    def test_etags_and_caching(self):
        z, x, y, _ = self.fullest(U16)
        pinned = "/v1/layers/%s@1/tiles/%d/%d/%d.png?rescale=0,4000" % (U16, z, x, y)
        r = self.get(pinned)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["cache-control"], "public, max-age=31536000, immutable")
        etag = r.headers["etag"]
        self.assertEqual(self.get(pinned, headers={"If-None-Match": etag}).status, 304)
        other = self.get(pinned.replace("0,4000", "0,3000"))
        self.assertNotEqual(other.headers["etag"], etag, "another rendering, another ETag")
        current = self.get(pinned.replace("@1", ""))
        self.assertEqual(current.headers["cache-control"], "no-cache")

    def test_missing_tile_inside_the_extent_is_204(self):
        # A layer of its own with one tile taken away: inside the extent,
        # never written as far as the tile door can tell.
        step = self.srv.wait_step(self.srv.submit(definition("holey", "RGBA.uint16.tif"))["id"])
        self.assertEqual(step["state"], "COMPLETED", step)
        z, x, y, path = self.fullest("holey")
        os.remove(path)
        r = self.get("/v1/layers/holey/tiles/%d/%d/%d.png?rescale=0,4000" % (z, x, y))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")

    def test_another_environment_cannot_render_the_layer(self):
        z, x, y, _ = self.fullest(U16)
        r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png" % (U16, z, x, y), token=ks.STAGING_TOKEN)
        self.assertEqual(r.status, 404, r)

    def test_renderers_run_sandboxed_and_see_only_their_environment(self):
        z, x, y, _ = self.fullest(U16)
        self.assertEqual(self.get("/v1/layers/%s/tiles/%d/%d/%d.png" % (U16, z, x, y)).status, 200)
        pids = self.renderers()
        self.assertTrue(pids, "no renderer process")
        if os.environ.get("KILN_E2E_SANDBOX") == "none":
            return  # make tsan runs without the sandbox: nothing more to see
        inner = [p for p in pids if os.stat("/proc/%d" % p).st_uid == 65534]
        self.assertTrue(inner, "no renderer runs as nobody: %r" % pids)
        root = "/proc/%d/root" % inner[0]
        catalog = self.srv.catalog
        self.assertTrue(os.path.isdir(root + os.path.join(catalog, "production", U16)))
        self.assertFalse(os.path.exists(root + os.path.join(catalog, "staging")),
                         "the renderer sees another environment's catalog")
        self.assertFalse(os.path.exists(root + self.srv.state_dir),
                         "the renderer sees the server's state")

    def test_a_corrupt_stored_tile_is_a_500_naming_it_and_harms_nothing_else(self):
        # Its own layer, so the other tests' tiles stay intact.
        step = self.srv.wait_step(self.srv.submit(definition("broken", "RGBA.uint16.tif"))["id"])
        self.assertEqual(step["state"], "COMPLETED", step)
        z, x, y, path = self.fullest("broken")
        with open(path, "r+b") as f:
            f.seek(8)
            f.write(os.urandom(4096))
        r = self.get("/v1/layers/broken/tiles/%d/%d/%d.png?rescale=0,4000" % (z, x, y))
        self.assertEqual(r.status, 500, r)
        message = r.json()["error"]["message"]
        self.assertIn("%d/%d/%d" % (z, x, y), message)
        self.assertNotIn(self.srv.catalog, message, "the server's paths stay private")
        # The next render of a sound tile is fine.
        uz, ux, uy, _ = self.fullest(U16)
        self.assertEqual(
            self.get("/v1/layers/%s/tiles/%d/%d/%d.png?rescale=0,4000" % (U16, uz, ux, uy)).status,
            200)


if __name__ == "__main__":
    unittest.main()

"""Layers and tiles over HTTP from a real `kiln serve` (docs/cluster.md,
"Layers and tiles"): the stored tiles byte for byte, ETags and 304s, 204
inside and 404 outside a layer's extent, one environment blind to another's
layers, the browser session cookie, TileJSON, and GDAL's WMTS driver
reading the layer through /v1/wmts."""

import json
import os
import shutil
import subprocess
import unittest

import numpy as np
from osgeo import gdal

import kiln_server as ks
import kiln_test as kt

gdal.UseExceptions()

LAYER = "l7"
HALF = 20037508.342789244  # half the Web Mercator world, metres


class TilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ks.KilnServer()
        try:
            cls.srv.start()
            step = cls.srv.wait_step(cls.srv.submit(ks.l7_definition(LAYER))["id"])
            if step["state"] != "COMPLETED":
                raise AssertionError("the ingest did not complete: %r" % step)
        except BaseException:
            cls.srv.close()
            raise
        cls.vdir = os.path.realpath(kt.current_dir(cls.srv.catalog, "production", LAYER))
        cls.meta = kt.load_metadata(cls.srv.catalog, "production", LAYER)
        cls.tiles = kt.list_tiles(cls.vdir)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def get(self, path, token=ks.PRODUCTION_TOKEN, headers=None):
        return self.srv.request("GET", path, token=token, headers=headers)

    def max_level(self):
        return next(l for l in self.meta["levels"] if l["zoom"] == self.meta["zoom"]["max"])

    def inner_tile(self):
        """A stored tile at max zoom away from the layer's edges."""
        lv = self.max_level()
        z = lv["zoom"]
        x, y = (lv["min_x"] + lv["max_x"]) // 2, (lv["min_y"] + lv["max_y"]) // 2
        self.assertIn((x, y), self.tiles[z])
        return z, x, y

    # --- listing and metadata -------------------------------------------------

    def test_layers_lists_the_environments_layers_with_versions_and_extents(self):
        r = self.get("/v1/layers")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["environment"], "production")
        [layer] = [l for l in body["layers"] if l["name"] == LAYER]
        self.assertEqual(layer["current_version"], 1)
        self.assertEqual(layer["versions"], [1])
        self.assertEqual(layer["format"], "png")
        self.assertEqual(layer["extent"]["wgs84"], self.meta["extent"]["wgs84"])
        self.assertEqual(layer["zoom"], self.meta["zoom"])

    def test_layer_shows_its_metadata_and_statistics(self):
        for path in ("/v1/layers/" + LAYER, "/v1/layers/%s@1" % LAYER):
            r = self.get(path)
            self.assertEqual(r.status, 200, r)
            body = r.json()
            self.assertEqual(body["version"], 1)
            self.assertEqual(body["current_version"], 1)
            self.assertEqual(body["metadata"]["statistics"], self.meta["statistics"])
            self.assertTrue(body["tiles"].endswith("/v1/layers/l7@1/tiles/{z}/{x}/{y}.png"),
                            body["tiles"])
        r = self.get("/v1/layers/%s@2" % LAYER)
        self.assertEqual(r.status, 404, r)
        self.assertIn("no version 2", r.json()["error"]["message"])

    # --- tiles ----------------------------------------------------------------

    def test_every_tile_equals_the_stored_file(self):
        n = 0
        for z, tiles in sorted(self.tiles.items()):
            for (x, y), path in sorted(tiles.items()):
                with open(path, "rb") as f:
                    stored = f.read()
                for ref in (LAYER, LAYER + "@1"):
                    r = self.get("/v1/layers/%s/tiles/%d/%d/%d.png" % (ref, z, x, y))
                    self.assertEqual(r.status, 200, (ref, z, x, y, r))
                    self.assertEqual(r.body, stored, "tile %s %d/%d/%d differs" % (ref, z, x, y))
                    self.assertEqual(r.headers["content-type"], "image/png")
                n += 1
        self.assertGreater(n, 10)

    def test_versioned_urls_are_immutable_and_current_urls_revalidate(self):
        z, x, y = self.inner_tile()
        pinned = self.get("/v1/layers/l7@1/tiles/%d/%d/%d.png" % (z, x, y))
        current = self.get("/v1/layers/l7/tiles/%d/%d/%d.png" % (z, x, y))
        self.assertEqual(pinned.headers["cache-control"], "public, max-age=31536000, immutable")
        self.assertEqual(current.headers["cache-control"], "no-cache")
        etag = pinned.headers["etag"]
        self.assertTrue(etag.startswith('"v1-') and etag.endswith('"'), etag)
        self.assertEqual(current.headers["etag"], etag)
        for url in ("/v1/layers/l7@1/tiles/%d/%d/%d.png", "/v1/layers/l7/tiles/%d/%d/%d.png"):
            url = url % (z, x, y)
            r = self.get(url, headers={"If-None-Match": etag})
            self.assertEqual(r.status, 304, r)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.headers["etag"], etag)
            r = self.get(url, headers={"If-None-Match": 'W/"other", ' + etag})
            self.assertEqual(r.status, 304, r)
            r = self.get(url, headers={"If-None-Match": '"v1-elsewhere"'})
            self.assertEqual(r.status, 200, r)
        # Another tile of the same version has another ETag.
        other = self.get("/v1/layers/l7@1/tiles/%d/%d/%d.png" % (z, x, y + 1))
        self.assertNotEqual(other.headers["etag"], etag)

    def test_missing_tile_inside_the_extent_is_204_outside_404(self):
        z, x, y = self.inner_tile()
        path = self.tiles[z][(x, y)]
        aside = path + ".aside"
        os.rename(path, aside)  # a tile the ingest never wrote (no data there)
        try:
            r = self.get("/v1/layers/l7/tiles/%d/%d/%d.png" % (z, x, y))
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.body, b"")
        finally:
            os.rename(aside, path)
        lv = self.max_level()
        for zz, xx, yy in ((z, lv["max_x"] + 1, y), (z, x, lv["min_y"] - 1),
                           (z + 1, 2 * x, 2 * y), (0, 0, 0) if self.meta["zoom"]["min"] > 0
                           else (z, lv["min_x"] - 1, y)):
            r = self.get("/v1/layers/l7/tiles/%d/%d/%d.png" % (zz, xx, yy))
            self.assertEqual(r.status, 404, (zz, xx, yy, r))
            self.assertIn("outside layer 'l7'", r.json()["error"]["message"])

    def test_another_format_than_stored_is_404_naming_the_stored_one(self):
        z, x, y = self.inner_tile()
        for ext in ("webp", "tif"):
            r = self.get("/v1/layers/l7/tiles/%d/%d/%d.%s" % (z, x, y, ext))
            self.assertEqual(r.status, 404, r)
            self.assertIn("stores png tiles", r.json()["error"]["message"])

    def test_malformed_addresses_are_refused(self):
        z, x, y = self.inner_tile()
        for path in ("/v1/layers/l7/tiles/0%d/%d/%d.png" % (z, x, y),
                     "/v1/layers/l7/tiles/%d/+%d/%d.png" % (z, x, y),
                     "/v1/layers/l7/tiles/%d/%d/%d.jpg" % (z, x, y),
                     "/v1/layers/l7/tiles/%d/%d/%d" % (z, x, y),
                     "/v1/layers/l7/tiles/31/0/0.png",
                     "/v1/layers/l7/tiles/2/4/0.png",
                     "/v1/layers/l7@0/tiles/%d/%d/%d.png" % (z, x, y),
                     "/v1/layers/l7@01/tiles/%d/%d/%d.png" % (z, x, y),
                     "/v1/layers/.l7/tiles/%d/%d/%d.png" % (z, x, y),
                     "/v1/layers/%2e%2e/tiles/0/0/0.png"):
            r = self.get(path)
            self.assertEqual(r.status, 400, (path, r))
        # %2F decodes to '/': no route has a layer with a slash in it.
        r = self.get("/v1/layers/..%2Fstaging%2Fl7/tiles/0/0/0.png")
        self.assertIn(r.status, (400, 404), r)

    def test_planted_symlinks_lead_nowhere(self):
        z, x, y = self.inner_tile()
        path = self.tiles[z][(x, y)]
        aside = path + ".aside"
        os.rename(path, aside)
        secret = os.path.join(self.srv.tmp, "secret.png")
        with open(secret, "wb") as f:
            f.write(b"not a tile of this layer")
        os.symlink(secret, path)
        alias = os.path.join(kt.layer_dir(self.srv.catalog, "production", "alias"))
        os.symlink(kt.layer_dir(self.srv.catalog, "production", LAYER), alias)
        try:
            r = self.get("/v1/layers/l7/tiles/%d/%d/%d.png" % (z, x, y))
            self.assertNotIn(b"not a tile", r.body)
            self.assertEqual(r.status, 204, r)
            r = self.get("/v1/layers/alias/tiles/%d/%d/%d.png" % (z, x, y))
            self.assertEqual(r.status, 404, r)
            names = [l["name"] for l in self.get("/v1/layers").json()["layers"]]
            self.assertNotIn("alias", names)
        finally:
            os.unlink(alias)
            os.unlink(path)
            os.rename(aside, path)

    # --- environments and authentication ----------------------------------------

    def test_staging_cannot_read_productions_layers(self):
        z, x, y = self.inner_tile()
        names = [l["name"] for l in self.get("/v1/layers", token=ks.STAGING_TOKEN).json()["layers"]]
        self.assertNotIn(LAYER, names)
        for fmt in ("/v1/layers/%s", "/v1/layers/%s@1", "/v1/layers/%s/tilejson.json",
                    "/v1/layers/%s/tiles/" + "%d/%d/%d.png" % (z, x, y),
                    "/v1/layers/%s@1/tiles/" + "%d/%d/%d.png" % (z, x, y)):
            theirs = self.get(fmt % LAYER, token=ks.STAGING_TOKEN)
            unknown = self.get(fmt % "nosuch", token=ks.STAGING_TOKEN)
            self.assertEqual(theirs.status, 404, (fmt, theirs))
            self.assertEqual(unknown.status, 404, (fmt, unknown))
            self.assertEqual(theirs.text().replace(LAYER, "X"),
                             unknown.text().replace("nosuch", "X"), fmt)
        wmts = self.get("/v1/wmts", token=ks.STAGING_TOKEN)
        self.assertEqual(wmts.status, 200, wmts)
        self.assertNotIn("<ows:Identifier>l7</ows:Identifier>", wmts.text())

    def test_no_credential_is_401(self):
        for path in ("/v1/layers", "/v1/layers/l7", "/v1/wmts", "/v1/layers/l7/tiles/0/0/0.png"):
            self.assertEqual(self.get(path, token=None).status, 401, path)
            self.assertEqual(self.get(path, token="wrong").status, 401, path)

    def test_session_cookie_opens_the_layers_of_its_environment(self):
        z, x, y = self.inner_tile()
        tile = "/v1/layers/l7/tiles/%d/%d/%d.png" % (z, x, y)
        r = self.srv.request("POST", "/v1/session", token=ks.PRODUCTION_TOKEN)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["environment"], "production")
        set_cookie = r.headers["set-cookie"]
        attrs = [a.strip() for a in set_cookie.split(";")]
        self.assertIn("HttpOnly", attrs)
        self.assertIn("SameSite=Strict", attrs)
        self.assertIn("Path=/", attrs)
        cookie = attrs[0]
        self.assertTrue(cookie.startswith("kiln_session="), cookie)
        self.assertNotIn(ks.PRODUCTION_TOKEN, set_cookie)

        r = self.get(tile, token=None, headers={"Cookie": "other=1; " + cookie})
        self.assertEqual(r.status, 200, r)
        with open(self.tiles[z][(x, y)], "rb") as f:
            self.assertEqual(r.body, f.read())
        self.assertEqual(self.get("/v1/session", token=None,
                                  headers={"Cookie": cookie}).json()["environment"], "production")

        # Altered: the environment swapped, or the signature changed.
        name, value = cookie.split("=", 1)
        forged = name + "=" + value.replace("~production~", "~staging~")
        self.assertEqual(self.get(tile, token=None, headers={"Cookie": forged}).status, 401)
        flipped = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
        self.assertEqual(self.get(tile, token=None, headers={"Cookie": flipped}).status, 401)

        # A staging session sees staging's catalog only.
        r = self.srv.request("POST", "/v1/session", token=ks.STAGING_TOKEN)
        staging = r.headers["set-cookie"].split(";")[0]
        self.assertEqual(self.get(tile, token=None, headers={"Cookie": staging}).status, 404)

        # Without a bearer token no session is made.
        self.assertEqual(self.srv.request("POST", "/v1/session", token=None).status, 401)

        r = self.srv.request("DELETE", "/v1/session", token=None, headers={"Cookie": cookie})
        self.assertEqual(r.status, 200, r)
        self.assertIn("Max-Age=0", r.headers["set-cookie"])
        self.assertTrue(r.headers["set-cookie"].startswith("kiln_session=;"))

    # --- TileJSON and WMTS ------------------------------------------------------

    def test_tilejson(self):
        r = self.get("/v1/layers/l7/tilejson.json")
        self.assertEqual(r.status, 200, r)
        tj = r.json()
        self.assertEqual(tj["tilejson"], "3.0.0")
        self.assertEqual(tj["tiles"], ["http://127.0.0.1:%d/v1/layers/l7@1/tiles/{z}/{x}/{y}.png"
                                       % self.srv.port])
        self.assertEqual(tj["minzoom"], self.meta["zoom"]["min"])
        self.assertEqual(tj["maxzoom"], self.meta["zoom"]["max"])
        self.assertEqual(tj["bounds"], self.meta["extent"]["wgs84"])
        w, s, e, n = tj["bounds"]
        self.assertAlmostEqual(tj["center"][0], (w + e) / 2)
        self.assertAlmostEqual(tj["center"][1], (s + n) / 2)
        self.assertTrue(tj["minzoom"] <= tj["center"][2] <= tj["maxzoom"])
        # The template fetches the stored tiles.
        z, x, y = self.inner_tile()
        url = tj["tiles"][0].split(str(self.srv.port), 1)[1]
        r = self.get(url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)))
        with open(self.tiles[z][(x, y)], "rb") as f:
            self.assertEqual(r.body, f.read())

    def gdal_env(self):
        env = dict(os.environ)
        env["GDAL_HTTP_HEADERS"] = "Authorization: Bearer " + ks.PRODUCTION_TOKEN
        env["GDAL_ENABLE_WMS_CACHE"] = "NO"
        env["GDAL_HTTP_TIMEOUT"] = "60"
        return env

    def test_gdalinfo_lists_the_layer_through_wmts(self):
        for url in ("WMTS:http://127.0.0.1:%d/v1/wmts" % self.srv.port,
                    "WMTS:http://127.0.0.1:%d/v1/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"
                    % self.srv.port):
            out = subprocess.run(["gdalinfo", url], env=self.gdal_env(), capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            # One layer: GDAL opens it (more would be listed as subdatasets).
            self.assertIn("TITLE=l7", out.stdout)
            info = json.loads(subprocess.run(
                ["gdalinfo", "-json", url], env=self.gdal_env(), capture_output=True, text=True,
                timeout=120, check=True).stdout)
            # The layer's extent at its max zoom, not the world.
            w, s, e, n = self.meta["extent"]["layer_crs"]
            res = 2 * HALF / 256 / (1 << self.meta["zoom"]["max"])
            self.assertAlmostEqual(info["geoTransform"][1], res)
            self.assertLessEqual(abs(info["size"][0] - (e - w) / res), 2)
            self.assertLessEqual(abs(info["size"][1] - (n - s) / res), 2)

    def test_gdal_translate_through_wmts_equals_the_stored_tiles(self):
        z, x, y = self.inner_tile()
        size = 2 * HALF / (1 << z)
        # A window of 2x2 tiles at max zoom.
        ulx, uly = -HALF + x * size, HALF - y * size
        dst = os.path.join(self.srv.tmp, "wmts-window.tif")
        src = "WMTS:http://127.0.0.1:%d/v1/wmts,layer=l7" % self.srv.port
        cmd = ["gdal_translate", "-q", "-projwin", repr(ulx), repr(uly), repr(ulx + 2 * size),
               repr(uly - 2 * size), "-outsize", "512", "512", src, dst]
        out = subprocess.run(cmd, env=self.gdal_env(), capture_output=True, text=True,
                             timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = gdal.Open(dst).ReadAsArray()
        for dx in (0, 1):
            for dy in (0, 1):
                stored = gdal.Open(self.tiles[z][(x + dx, y + dy)]).ReadAsArray()
                part = got[:stored.shape[0], dy * 256:(dy + 1) * 256, dx * 256:(dx + 1) * 256]
                self.assertTrue(np.array_equal(part, stored),
                                "tile %d/%d/%d differs through WMTS" % (z, x + dx, y + dy))

    def test_wmts_capabilities(self):
        r = self.get("/v1/wmts?SERVICE=WMTS&REQUEST=GetCapabilities")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/xml")
        text = r.text()
        self.assertIn("<ows:Identifier>l7</ows:Identifier>", text)
        self.assertIn('template="http://127.0.0.1:%d/v1/layers/l7@1/tiles/{TileMatrix}/{TileCol}/'
                      '{TileRow}.png"' % self.srv.port, text)
        r = self.get("/v1/wmts?SERVICE=WMTS&REQUEST=GetTile")
        self.assertEqual(r.status, 400, r)


if __name__ == "__main__":
    unittest.main()

"""The web console (docs/console.md) in headless Chromium against a real
`kiln serve`: sign in with a token, the map shows the demo layer (checked on
the screenshot's pixels against the tile served over HTTP), a running step's
progress advances on screen, cancel from the console cancels, the server's
validation error is shown beside the editor, and a staging session sees
none of production's steps or layers. Screenshots of each page are written
to build/test-output/console/ (the test prints the directory), with the
steps page's first meaningful paint and the page weight."""

import json
import os
import time
import unittest
import uuid

import numpy as np
from osgeo import gdal
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import browser
import kiln_server as ks
import kiln_test as kt

gdal.UseExceptions()

LAYER = "l7"
ANALYTIC = "l7tif"  # the scene stored as analytic (tif) tiles
# A max zoom above L7's own (12): a step of thousands of tiles, slow enough
# to watch (test_serve_steps.py).
SLOW_ZOOM = 17
# The map's background (console.css, .map): what the page shows where no
# tile is.
BACKGROUND = (0xdd, 0xe3, 0xea)
WAIT = 60  # seconds a page may take to show what a test waits for


def output_dir():
    d = os.path.join(os.path.dirname(kt.kiln_bin()), "..", "..", "test-output", "console")
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):  # the last run's screenshots
        if name.endswith(".png"):
            os.unlink(os.path.join(d, name))
    return d


def decode_png(data):
    """(H, W, bands) uint8 array of PNG bytes, through GDAL. Transparency
    is always the last band: the alpha band, or the mask GDAL makes of a
    tRNS colour key (rendered tiles use one), or all 255 without either."""
    name = "/vsimem/console-%s.png" % uuid.uuid4().hex
    gdal.FileFromMemBuffer(name, data)
    try:
        ds = gdal.Open(name)
        bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
        arrays = [b.ReadAsArray() for b in bands]
        if bands[-1].GetColorInterpretation() != gdal.GCI_AlphaBand:
            arrays.append(bands[0].GetMaskBand().ReadAsArray())
        return np.dstack(arrays)
    finally:
        gdal.Unlink(name)


class ConsoleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = output_dir()
        print("console screenshots in", cls.out, flush=True)
        cls.srv = ks.KilnServer()
        cls.browser = None
        try:
            cls.srv.start()
            # Two versions of the layer, for the map's version switcher.
            cls.ingests = [cls.srv.wait_step(cls.srv.submit(d)["id"]) for d in (
                ks.l7_definition(LAYER), ks.l7_definition(LAYER),
                ks.l7_definition(ANALYTIC, fmt="tif"))]
            for step in cls.ingests:
                if step["state"] != "COMPLETED":
                    raise AssertionError("the ingest did not complete: %r" % step)
            cls.ingest = cls.ingests[0]
            cls.browser = browser.Browser()
        except BaseException:
            cls.srv.close()
            raise
        cls.driver = cls.browser.driver

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.browser is not None:
                cls.browser.close()
        finally:
            cls.srv.close()

    def tearDown(self):
        # No script error on any page a test opened.
        self.assertEqual(self.browser.script_errors(), [])

    # --- helpers --------------------------------------------------------------

    def wait(self, what, fn, timeout=WAIT):
        """fn()'s first truthy value within `timeout` seconds."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda d: fn())
        except Exception as e:
            self.shot("failed-" + what.replace(" ", "-"))
            raise AssertionError("the console did not show %s in %d s (%s)\n%s"
                                 % (what, timeout, type(e).__name__, self.srv.log_tail(2000)))

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name):
        path = os.path.join(self.out, name + ".png")
        self.driver.save_screenshot(path)
        return path

    def visible(self, element_id):
        return self.js("const e = document.getElementById(arguments[0]);"
                       "return !!e && !e.closest('[hidden]') && e.offsetParent !== null;",
                       element_id)

    def environment_shown(self):
        return self.js("return document.getElementById('who').dataset.environment || '';")

    def sign_in(self, token, environment):
        """Opens the console afresh and signs in with `token` (signing out a
        session of another environment first)."""
        self.driver.get(self.srv.url + "/#/steps")
        self.wait("the sign-in page or a session",
                  lambda: self.visible("page-signin") or self.environment_shown())
        if self.environment_shown() and self.environment_shown() != environment:
            self.driver.find_element(By.ID, "signout").click()
            self.wait("the sign-in page", lambda: self.visible("page-signin"))
        if self.environment_shown() != environment:
            box = self.driver.find_element(By.ID, "signin-token")
            box.clear()
            box.send_keys(token)
            self.driver.find_element(By.ID, "signin-button").click()
            self.wait("the environment's name", lambda: self.environment_shown() == environment)
        self.assertFalse(self.visible("page-signin"))

    def wait_tiles(self, version):
        """Waits until the map's tiles are of `version` ("@2/") and every
        one it asked for has loaded (or had no data)."""
        self.wait("the layer's tiles " + version, lambda: self.js("""
            const imgs = [...document.querySelectorAll('#map img')];
            return imgs.length > 0 && imgs.every((i) => i.complete) &&
                   imgs.every((i) => i.getAttribute('src').includes(arguments[0])) &&
                   imgs.some((i) => i.naturalWidth > 0);""", version))

    def go(self, hash_route):
        self.js("location.hash = arguments[0];", hash_route)

    def step_row(self, step_id):
        """{"state", "done", "total", "text"} of a step's row in the steps table, or None."""
        return self.js("""
            const tr = document.querySelector('#steps-body tr[data-id="' + arguments[0] + '"]');
            if (!tr || tr.closest('[hidden]')) return null;
            const bar = tr.querySelector('.progress');
            return {state: tr.dataset.state, done: Number(bar.dataset.done),
                    total: Number(bar.dataset.total), text: tr.innerText};
        """, step_id)

    # --- tests ----------------------------------------------------------------

    def test_assets_are_served_without_a_session_with_etags(self):
        for path, ctype in (("/", "text/html"), ("/console/console.js", "text/javascript"),
                            ("/console/console.css", "text/css")):
            r = self.srv.request("GET", path, token=None)
            self.assertEqual(r.status, 200, (path, r))
            self.assertTrue(r.headers["content-type"].startswith(ctype), r.headers)
            etag = r.headers["etag"]
            self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
            self.assertEqual(r.headers["cache-control"], "no-cache")
            again = self.srv.request("GET", path, token=None, headers={"If-None-Match": etag})
            self.assertEqual(again.status, 304, again)
        with open(os.path.join(kt.source_dir(), "src", "server", "console", "console.js"),
                  "rb") as f:
            self.assertEqual(self.srv.request("GET", "/console/console.js", token=None).body,
                             f.read())
        self.assertEqual(self.srv.request("GET", "/console/nope.js", token=None).status, 404)

    def assert_map_shows_its_tiles(self, shot_name):
        """The screenshot shows each fully visible tile's own colours where the
        tile has data (fetched over HTTP with the same URL), not the map's
        background."""
        self.assertEqual(self.js("return window.devicePixelRatio;"), 1)
        tiles = self.js("""
            const m = document.getElementById('map').getBoundingClientRect();
            return [...document.querySelectorAll('#map img')].filter((i) => i.naturalWidth > 0)
              .map((i) => { const r = i.getBoundingClientRect();
                return {key: i.dataset.tile, src: i.getAttribute('src'), x: r.left, y: r.top,
                        w: r.width, h: r.height,
                        inside: r.left >= m.left && r.top >= m.top && r.right <= m.right &&
                                r.bottom <= m.bottom}; });""")
        with open(self.shot(shot_name), "rb") as f:
            shot = decode_png(f.read())[:, :, :3].astype(int)
        compared = 0
        for t in tiles:
            if not t["inside"]:
                continue
            r = self.srv.request("GET", t["src"])  # with the production token
            self.assertEqual(r.status, 200, (t, r))
            tile = decode_png(r.body)
            self.assertEqual(tile.shape[:2], (int(t["h"]), int(t["w"])), t)
            x, y = int(round(t["x"])), int(round(t["y"]))
            on_screen = shot[y:y + tile.shape[0], x:x + tile.shape[1]]
            rgb = tile[:, :, :3].astype(int) if tile.shape[2] >= 3 else \
                np.repeat(tile[:, :, :1].astype(int), 3, axis=2)
            opaque = tile[:, :, -1] == 255 if tile.shape[2] in (2, 4) else \
                np.ones(tile.shape[:2], bool)
            if opaque.sum() < 1000:
                continue  # mostly the scene's edge: too little to compare
            diff = np.abs(on_screen - rgb)[opaque]
            # The screen shows the tile's own colours where the tile has data ...
            self.assertLess(diff.mean(), 2.0, (t, diff.mean()))
            self.assertLess(np.percentile(diff, 99), 8, t)
            # ... which are not the map's background.
            background = np.all(np.abs(on_screen[opaque] - BACKGROUND) <= 2, axis=1)
            self.assertLess(background.mean(), 0.05, t)
            compared += 1
        self.assertGreater(compared, 0, tiles)

    def test_sign_in_and_the_map_shows_the_layer(self):
        self.sign_in(ks.PRODUCTION_TOKEN, "production")
        self.wait("the ingest step in the table", lambda: self.step_row(self.ingest["id"]))
        self.shot("steps")
        # The state filter asks the server for those states only.
        self.js("const s = document.getElementById('steps-filter'); s.value = 'FAILED';"
                "s.dispatchEvent(new Event('change'));")
        self.wait("no failed step", lambda: self.step_row(self.ingest["id"]) is None)
        self.js("const s = document.getElementById('steps-filter'); s.value = 'COMPLETED';"
                "s.dispatchEvent(new Event('change'));")
        self.wait("the completed steps", lambda: self.step_row(self.ingests[1]["id"]))
        # The find box keeps the rows that match.
        self.driver.find_element(By.ID, "steps-search").send_keys(self.ingests[1]["id"])
        self.wait("one row", lambda: self.js(
            "return [...document.querySelectorAll('#steps-body tr')].filter((t) => !t.hidden)"
            ".map((t) => t.dataset.id);") == [self.ingests[1]["id"]])
        self.driver.find_element(By.ID, "steps-search").clear()
        self.js("const s = document.getElementById('steps-filter'); s.value = '';"
                "s.dispatchEvent(new Event('change'));")
        self.go("#/catalog")
        self.wait("the layer in the catalog", lambda: self.js(
            "return !!document.querySelector('#layers-body tr[data-layer=\"l7\"]');"))
        self.shot("catalog")
        self.go("#/catalog/" + LAYER)
        self.wait_tiles("@2/")
        # The version switcher: version 1's immutable tiles.
        self.assertEqual(self.js("return [...document.getElementById('layer-version').options]"
                                 ".map((o) => o.value);"), ["2", "1"])
        self.js("const s = document.getElementById('layer-version'); s.value = '1';"
                "s.dispatchEvent(new Event('change'));")
        self.wait_tiles("@1/")
        self.wait("the histograms", lambda: self.js(
            "return document.querySelectorAll('#layer-stats .band rect').length > 0;"))
        self.assert_map_shows_its_tiles("layer")
        # A picture layer's tiles are served as they are: no rendering controls.
        for control in ("layer-bidx", "layer-rescale", "layer-colormap", "layer-hillshade"):
            self.assertFalse(self.driver.find_element(By.ID, control).is_enabled(), control)
        self.assertTrue(self.visible("layer-render-note"))
        # An analytic layer is asked for as rendered PNG, with the controls' parameters.
        self.go("#/catalog/" + ANALYTIC)
        self.wait("the analytic layer's tile URL", lambda: self.js(
            "return document.getElementById('layer-url').textContent;").startswith(
                "/v1/layers/%s@1/tiles/{z}/{x}/{y}.png" % ANALYTIC))
        self.assertFalse(self.visible("layer-render-note"))
        self.driver.find_element(By.ID, "layer-bidx").send_keys("1")
        self.driver.find_element(By.ID, "layer-rescale").send_keys("0,200")
        self.js("const s = document.getElementById('layer-colormap'); s.value = 'viridis';"
                "s.dispatchEvent(new Event('change'));")
        self.wait("the rendering query in the tile URL", lambda: self.js(
            "return document.getElementById('layer-url').textContent;").endswith(
                ".png?bidx=1&rescale=0%2C200&colormap=viridis"))
        self.wait("the map showing the rendered tiles", lambda: self.js(
            "const i = [...document.querySelectorAll('#map img')];"
            "return i.length > 0 && i.every((t) => t.getAttribute('src').endsWith("
            "'&colormap=viridis') && t.complete);"))
        # The renderer's pictures reach the screen as they are.
        self.assert_map_shows_its_tiles("layer-analytic-viridis")
        self.driver.find_element(By.ID, "layer-hillshade").click()
        self.wait("hillshade in the tile URL", lambda: self.js(
            "return document.getElementById('layer-url').textContent;").endswith(
                "&colormap=viridis&hillshade=true"))
        self.wait("the map asking for those tiles", lambda: self.js(
            "const i = document.querySelector('#map img');"
            "return !!i && i.getAttribute('src').endsWith('&hillshade=true');"))
        # Hillshade takes no rescale: the server's refusal is shown under the map.
        src = self.js("return document.querySelector('#map img').getAttribute('src');")
        refusal = self.srv.request("GET", src)
        self.assertGreaterEqual(refusal.status, 400, refusal)
        self.wait("the tiles' error", lambda: self.js(
            "return document.getElementById('map-error').textContent;") ==
            "Tiles: " + refusal.json()["error"]["message"])
        self.shot("layer-analytic")

    def test_progress_advances_on_screen_and_cancel_cancels(self):
        step = self.srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM), name="slow")
        try:
            self.sign_in(ks.PRODUCTION_TOKEN, "production")
            self.go("#/steps")
            first = self.wait("the slow step with some tiles done", lambda: (
                lambda r: r if r and r["state"] == "RUNNING" and r["done"] > 0 else None)(
                    self.step_row(step["id"])), timeout=120)
            self.assertGreater(first["total"], first["done"])
            self.assertIn("tiles", first["text"])
            later = self.wait("the progress bar advance", lambda: (
                lambda r: r if r and r["done"] > first["done"] else None)(
                    self.step_row(step["id"])), timeout=120)
            self.assertGreater(later["done"], first["done"])
            self.shot("steps-running")
            self.go("#/steps/" + step["id"])
            self.wait("the step page", lambda: self.js(
                "return document.getElementById('step-state').dataset.state;") == "RUNNING")
            self.wait("the step's log", lambda: self.js(
                "return document.getElementById('step-log').textContent.length;") > 0)
            self.wait("an enabled cancel button", lambda: self.driver.find_element(
                By.ID, "step-cancel").is_enabled())
            self.shot("step")
            self.driver.find_element(By.ID, "step-cancel").click()
            done = self.srv.wait_step(step["id"], timeout=120)
            self.assertEqual(done["state"], "CANCELLED", done)
            self.wait("the step cancelled", lambda: self.js(
                "return document.getElementById('step-state').dataset.state;") == "CANCELLED")
            self.shot("step-cancelled")
        finally:
            s = self.srv.describe(step["id"])
            if s["state"] not in ks.TERMINAL:
                self.srv.cancel(step["id"], signal_name="KILL")
                self.srv.wait_step(step["id"], timeout=120)

    def test_submit_shows_the_servers_validation_error_beside_the_field(self):
        self.sign_in(ks.PRODUCTION_TOKEN, "production")
        self.go("#/submit")
        definition = {"layer": "bad", "sources": [{"uri": kt.l7_path(), "bands": [0]}]}
        expected = self.srv.request("POST", "/v1/steps",
                                    {"action": {"ingest": definition}}).json()["error"]["message"]
        self.js("document.getElementById('submit-definition').value = arguments[0];",
                json.dumps(definition, indent=2))
        self.driver.find_element(By.ID, "submit-button").click()
        self.wait("the validation error", lambda: self.visible("submit-error"))
        self.assertEqual(self.js(
            "return document.getElementById('submit-error-message').textContent;"), expected)
        field = self.js("return document.getElementById('submit-error').dataset.field;")
        self.assertTrue(field.endswith("sources[0].bands[0]"), (field, expected))
        # The editor's selection is the field's key.
        self.assertEqual(self.js("""const t = document.getElementById('submit-definition');
            return t.value.substring(t.selectionStart, t.selectionEnd);"""), '"bands"')
        self.shot("submit-error")
        self.assertEqual([s for s in self.srv.list_steps()["steps"] if s["layer"] == "bad"], [])

    def test_cluster_page_shows_slots_and_samples_them(self):
        self.sign_in(ks.PRODUCTION_TOKEN, "production")
        self.go("#/cluster")
        c = self.srv.cluster()
        self.wait("the slots", lambda: self.js(
            "return document.getElementById('c-slots').textContent;").endswith(
                "/ %d" % c["slots"]["total"]))
        self.wait("the workers", lambda: self.js(
            "return document.querySelectorAll('#c-workers tr').length;") == len(c["workers"]))
        self.wait("two samples on the chart", lambda: self.js(
            "const p = document.querySelector('#c-chart polyline');"
            "return !!p && p.getAttribute('points').split(' ').length >= 2;"), timeout=30)
        self.shot("cluster")
        # The server's own samples, which the chart starts from: the slots
        # of the cluster and this environment's queue.
        deadline = time.monotonic() + 30  # a sample every 10 s
        while True:
            h = self.srv.call("GET", "/v1/cluster/history")
            self.assertEqual(h["interval_seconds"], 10)
            if h["samples"] and h["samples"][-1][1] == c["slots"]["total"]:
                break
            self.assertLess(time.monotonic(), deadline, h)
            time.sleep(0.5)
        t, total, busy, queued = h["samples"][-1]
        self.assertGreaterEqual(total, busy)
        self.assertGreaterEqual(queued, 0)
        self.assertEqual(self.srv.request("GET", "/v1/cluster/history", token=None).status, 401)

    def test_staging_sees_none_of_productions_steps_or_layers(self):
        self.sign_in(ks.STAGING_TOKEN, "staging")
        self.wait("the steps page", lambda: self.js(
            "return document.getElementById('steps-updated').textContent;"))
        self.assertIsNone(self.step_row(self.ingest["id"]))
        self.assertEqual(self.js("return document.querySelectorAll('#steps-body tr').length;"), 0)
        self.go("#/catalog")
        self.wait("the empty catalog", lambda: self.visible("layers-empty"))
        self.assertEqual(self.js("return document.querySelectorAll('#layers-body tr').length;"), 0)
        self.shot("staging-catalog")
        self.go("#/catalog/" + LAYER)
        self.wait("the layer's error", lambda: "not found" in self.js(
            "return document.getElementById('layer-facts').textContent;"))
        self.go("#/steps/" + self.ingest["id"])
        self.wait("the step's error", lambda: self.ingest["id"] in self.js(
            "return document.getElementById('step-message').textContent;"))
        self.assertEqual(self.js("return document.getElementById('step-facts').textContent;"), "")
        self.assertEqual(self.js("return document.getElementById('step-log').textContent;"), "")
        self.shot("staging-step")
        # The session cookie answers for staging only, and a state change
        # sent with it but without the console's header is refused (CSRF).
        got = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const id = arguments[0];
            Promise.all([
              fetch('/v1/layers/l7/tiles/0/0/0.png', {credentials: 'same-origin'}),
              fetch('/v1/steps/' + id, {credentials: 'same-origin'}),
              fetch('/v1/steps', {method: 'POST', credentials: 'same-origin',
                                  body: '{"action": {"ingest_uri": "file:///x.json"}}'}),
              fetch('/v1/environment', {credentials: 'same-origin'}).then((r) => r.json()),
            ]).then((r) => done([r[0].status, r[1].status, r[2].status, r[3].name]));
        """, self.ingest["id"])
        self.assertEqual(got, [404, 404, 403, "staging"])

    def test_steps_page_first_paint_and_weight_are_reported(self):
        self.sign_in(ks.PRODUCTION_TOKEN, "production")
        self.driver.get("about:blank")
        self.driver.get(self.srv.url + "/#/steps")
        paint = self.wait("the steps table's paint mark", lambda: self.js(
            "const m = performance.getEntriesByName('kiln-steps-table');"
            "return m.length ? m[0].startTime : null;"))
        weight = browser.page_weight(self.driver)
        print("console: steps page first meaningful paint %.1f ms, page weight %d bytes "
              "(%d transferred, %d resources)"
              % (paint, weight["body_bytes"], weight["transfer_bytes"], weight["resources"]),
              flush=True)
        # Only the console's own origin was asked for anything.
        for name in weight["names"]:
            self.assertTrue(name.startswith(self.srv.url + "/"), name)


if __name__ == "__main__":
    unittest.main()

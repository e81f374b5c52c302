"""A staging tenant attacks a cluster that is running production's step
(issue 14; docs/security.md).

One real `kiln serve` with the native and EMR doors, production and staging
each with its own source roots and catalog. Production's step runs while
staging, in parallel, tries one attack of every class the issue lists:
bodies that crashed or confused the server, sources that read through to
production's files or the server's secrets, a VRT that points out of its
own root (the sandbox's case), forged and replayed SigV4 requests aimed at
production's step, slow and idle sockets, and another environment's list
markers. Afterwards: every attack was refused or bounded, the server never
went down, production's tiles are byte-identical to an undisturbed
`kiln ingest` of the same definition, and no byte of production's data or
secrets appears in anything staging received or can read.

The per-area suites go deeper into each class: test_hostile_sources.py,
test_hostile_api.py, test_sandbox.py, test_emr_auth.py, src/http's tests.
"""

import json
import os
import shutil
import socket
import tempfile
import threading
import unittest

import emr_helpers as emr  # cleans the AWS environment before botocore loads
import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.credentials  # noqa: E402
import kiln_server as ks
import kiln_test as kt

PRODUCTION = ks.PRODUCTION_TOKEN
STAGING = ks.STAGING_TOKEN
# A value only production's files hold; it must never reach staging.
SECRET = "kiln-hostile-production-secret-7f3a9c"
METRICS_TOKEN = "kiln-hostile-metrics"
PROD_ZOOM = 12  # a step that runs long enough to be attacked while it runs


class HostileTenantTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-hostile-")
        t = lambda *p: os.path.join(cls.tmp, *p)  # noqa: E731
        cls.prod_root, cls.staging_root = t("production") + "/", t("staging") + "/"
        os.makedirs(cls.prod_root)
        os.makedirs(cls.staging_root)
        cls.prod_scene = t("production", "scene.tif")
        shutil.copyfile(kt.l7_path(), cls.prod_scene)
        cls.prod_secret = t("production", "secret.txt")
        with open(cls.prod_secret, "w", encoding="utf-8") as f:
            f.write(SECRET + "\n")
        cls.staging_scene = t("staging", "own.tif")
        shutil.copyfile(kt.data_path("RGB.byte.crop.tif"), cls.staging_scene)
        # A VRT inside staging's root whose band reads production's scene.
        cls.escape_vrt = t("staging", "escape.vrt")
        with open(cls.escape_vrt, "w", encoding="utf-8") as f:
            f.write(_vrt_of(cls.prod_scene))
        cls.staging_catalog = t("catalog-staging")
        cls.prod_catalog = t("catalog-production")
        cls.srv = emr.EmrServer(tmp=cls.tmp, environments=[
            {"name": "production", "token": PRODUCTION, "concurrency": 2, "priority": 10,
             "catalog": cls.prod_catalog, "source_roots": [cls.prod_root]},
            {"name": "staging", "token": STAGING, "catalog": cls.staging_catalog,
             "source_roots": [cls.staging_root]},
        ], aws_keys={"production": [emr.PRODUCTION_KEY], "staging": [emr.STAGING_KEY]},
            server={"metrics_token_sha256": [ks.sha256_hex(METRICS_TOKEN)]})
        cls.srv.metrics_token = METRICS_TOKEN
        cls.srv.start()
        with open(cls.srv.config_path, encoding="utf-8") as f:
            cls.config_text = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------

    def staging(self, method, path, body=None, raw=None, **kw):
        r = self.srv.request(method, path, body=body, raw=raw, token=STAGING, **kw)
        self.received.append(r.body)
        return r

    def assert_refused(self, r, status=400, what=""):
        self.assertEqual(r.status, status, "%s: %r" % (what, r))
        self.assertIn("error", r.json(), what)

    def assert_up(self):
        r = self.srv.request("GET", "/healthz", token=None, timeout=10)
        self.assertEqual(r.status, 200, "the server stopped answering /healthz")

    def definition(self, layer, uri):
        return {"layer": layer, "sources": [{"uri": uri, "bands": [3, 2, 1]}],
                "output": {"encoding": {"format": "png"}}}

    # --- the test --------------------------------------------------------------

    def test_staging_attacks_while_production_runs(self):
        self.received = []
        prod_def = ks.l7_definition("prod-layer", max_zoom=PROD_ZOOM, uri=self.prod_scene)
        reference = ks.tile_digests(ks.reference_ingest(prod_def, self.tmp))
        prod = self.srv.submit(prod_def, token=PRODUCTION)
        # One of production's tasks is held (SIGSTOP) through the attacks, so
        # they all land while its step is RUNNING, not after it ended.
        paused = self.srv.pause_task_of(prod["id"])

        # Slow and idle sockets held open through the whole attack.
        slow = _SlowSockets(self.srv.port, idle=200, slow=200)
        slow.start()
        try:
            self.attack_bodies()
            self.attack_sources()
            staging_step = self.attack_through_a_vrt()
            self.attack_sigv4(prod["id"])
            self.attack_markers()
            self.assert_up()
            self.assertEqual(self.srv.describe(prod["id"], token=PRODUCTION)["state"], "RUNNING")
        finally:
            slow.stop()
            ks.resume_task(paused)

        done = self.srv.wait_step(prod["id"], token=PRODUCTION, timeout=600)
        self.assertEqual(done["state"], "COMPLETED", done)
        got = ks.tile_digests(os.path.realpath(
            kt.current_dir(self.prod_catalog, "production", "prod-layer")))
        self.assertEqual(got, reference, "production's tiles differ from an undisturbed run")

        if staging_step is not None:
            st = self.srv.wait_step(staging_step, token=STAGING, timeout=300)
            self.assertNotEqual(st["state"], "COMPLETED",
                                "a VRT reading production's scene was ingested for staging")
            self.received.append(json.dumps(self.srv.logs(staging_step, token=STAGING)).encode())
        self.assert_nothing_leaked()

    def attack_bodies(self):
        deep = b'{"action": {"ingest": ' + b"[" * 100000 + b"]" * 100000 + b"}}"
        self.assert_refused(self.staging("POST", "/v1/steps", raw=deep), what="100,000-deep body")
        self.assert_up()
        dup = b'{"name": "x", "name": "y", "action": {"ingest": {}}}'
        self.assert_refused(self.staging("POST", "/v1/steps", raw=dup), what="duplicate keys")
        big = b'{"concurrency": 1e400}'
        self.assert_refused(self.staging("PUT", "/v1/environment", raw=big), what="1e400")
        for token in (None, STAGING):
            r = self.srv.request("GET", "/metrics", token=token)
            self.assertEqual(r.status, 401, "/metrics answered %s: %r" % (token, r))
        self.assert_up()

    def attack_sources(self):
        layer_xml = os.path.join(self.prod_catalog, "production", "prod-layer", "layer.xml")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        inline_vrt = _vrt_of(self.srv.config_path)
        try:
            for uri in (self.prod_scene, layer_xml, self.prod_secret, "/proc/self/environ",
                        self.staging_root + "../production/scene.tif", inline_vrt,
                        "MEM:::DATAPOINTER=0x1000,PIXELS=256,LINES=256",
                        "/vsicurl/http://127.0.0.1:%d/scene.tif" % port,
                        "vrt://%s?bands=1" % self.prod_scene):
                r = self.staging("POST", "/v1/steps",
                                 body={"name": "x", "action": {"ingest": self.definition(
                                     "stolen", uri)}})
                self.assert_refused(r, what=uri[:80])
            for path in (self.prod_secret, "/dev/zero", "/etc/shadow"):
                r = self.staging("POST", "/v1/steps",
                                 body={"name": "x", "action": {"ingest_uri": path}})
                self.assert_refused(r, what="ingest_uri " + path)
            with self.assertRaises(BlockingIOError, msg="the server connected to a loopback URL"):
                listener.accept()
        finally:
            listener.close()
        self.assert_up()

    def attack_through_a_vrt(self):
        """A VRT inside staging's root pointing at production's scene: refused
        at submit (the driver allowlist), or the sandbox keeps the task from
        reading the file. Returns the step id when it was accepted."""
        r = self.staging("POST", "/v1/steps", body={
            "name": "vrt", "action": {"ingest": self.definition("via-vrt", self.escape_vrt)}})
        if r.status == 201:
            return r.json()["id"]
        self.assert_refused(r, what="a VRT pointing out of staging's root")
        return None

    def attack_sigv4(self, prod_step):
        cluster = emr.cluster_id("staging")
        # A request signed over host;x-amz-date only (botocore signs what is
        # present), then sent as CancelSteps of production's step.
        body = json.dumps({"ClusterId": emr.cluster_id("production"),
                           "StepIds": [prod_step]}).encode()
        request = botocore.awsrequest.AWSRequest(method="POST", url=self.srv.url + "/", data=body)
        botocore.auth.SigV4Auth(
            botocore.credentials.Credentials(emr.STAGING_KEY.id, emr.STAGING_KEY.secret),
            emr.SERVICE, emr.REGION).add_auth(request)
        forged = dict(request.headers.items(), **{"X-Amz-Target": "ElasticMapReduce.CancelSteps",
                                                  "Content-Type": emr.CONTENT_TYPE})
        r = emr.raw_post(self.srv, forged, body)
        self.received.append(r.body)
        self.assertEqual(r.status, 400, "a forged CancelSteps was not refused: %r" % r)
        self.assertIn(b"InvalidSignatureException", r.body)
        # The exact bytes of a signed AddJobFlowSteps, sent twice.
        definition = os.path.join(self.staging_root, "replayed.json")
        with open(definition, "w", encoding="utf-8") as f:
            json.dump(self.definition("replayed", self.staging_scene), f)
        add = json.dumps({"JobFlowId": cluster,
                          "Steps": [emr.kiln_ingest_step("replayed", definition)]}).encode()
        headers = emr.signed_headers(self.srv, emr.STAGING_KEY, "AddJobFlowSteps", add)
        first = emr.raw_post(self.srv, headers, add)
        second = emr.raw_post(self.srv, headers, add)
        self.received += [first.body, second.body]
        self.assertEqual(first.status, 200, "staging's own AddJobFlowSteps: %r" % first)
        self.assertGreaterEqual(second.status, 400, "a replayed AddJobFlowSteps was accepted")
        self.assertNotEqual(self.srv.describe(prod_step, token=PRODUCTION)["state"], "CANCELLED")

    def attack_markers(self):
        """Staging's list marker is refused when production presents it (and
        says nothing about production's own steps)."""
        for i in range(2):
            self.srv.submit(self.definition("own-%d" % i, self.staging_scene), token=STAGING)
        page = self.staging("GET", "/v1/steps?limit=1").json()
        self.assertTrue(page.get("next_marker"), "staging has two steps by now: %r" % page)
        r = self.srv.request("GET", "/v1/steps?limit=1&marker=" + page["next_marker"],
                             token=PRODUCTION)
        self.assert_refused(r, what="staging's list marker used by production")

    def assert_nothing_leaked(self):
        """No byte of production's secret file, its token, its AWS secret or
        the config's token hashes in what staging received or can read in
        its catalog. (Paths staging itself sent may come back in its
        errors: they are its own words.)"""
        needles = [SECRET.encode(), PRODUCTION.encode(), emr.PRODUCTION_KEY.secret.encode(),
                   METRICS_TOKEN.encode()]
        for line in self.config_text.splitlines():
            if "sha256" in line and "=" in line:
                needles.append(line.split("=", 1)[1].strip().strip('[]"').split('"')[0].encode())
        # Staging's own steps first finish, so its catalog holds what stays.
        for step in self.srv.list_steps(token=STAGING)["steps"]:
            self.srv.wait_step(step["id"], token=STAGING, timeout=300)
        blobs = list(self.received)
        for rel in kt.all_files(self.staging_catalog) if os.path.isdir(
                self.staging_catalog) else []:
            with open(os.path.join(self.staging_catalog, rel), "rb") as f:
                blobs.append(f.read())
        for blob in blobs:
            for needle in needles:
                if needle:
                    self.assertNotIn(needle, blob, "staging received production's %r" % needle)


def _vrt_of(path):
    return ('<VRTDataset rasterXSize="64" rasterYSize="64">'
            '<SRS>EPSG:4326</SRS><GeoTransform>0,0.01,0,0,0,-0.01</GeoTransform>'
            '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
            '<SourceFilename relativeToVRT="0">%s</SourceFilename><SourceBand>1</SourceBand>'
            '</SimpleSource></VRTRasterBand></VRTDataset>' % path)


class _SlowSockets:
    """`idle` sockets that connect and say nothing, and `slow` ones that send
    a request header one byte a second, from 127.0.0.2-127.0.0.9 (not the
    address the test's own calls come from)."""

    def __init__(self, port, idle, slow):
        self.port, self.idle, self.slow = port, idle, slow
        self.socks, self.stopping = [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        for i in range(self.idle + self.slow):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.%d" % (2 + i % 8), 0))
            try:
                s.connect(("127.0.0.1", self.port))
            except OSError:
                s.close()  # refused by the per-address cap: also fine
                continue
            self.socks.append(s)
        self.thread.start()

    def run(self):
        header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
        pos = 0
        while not self.stopping.wait(1.0) and pos < len(header):
            for s in self.socks[self.idle:]:
                try:
                    s.send(header[pos:pos + 1])
                except OSError:
                    pass
            pos += 1

    def stop(self):
        self.stopping.set()
        self.thread.join()
        for s in self.socks:
            s.close()


if __name__ == "__main__":
    unittest.main()

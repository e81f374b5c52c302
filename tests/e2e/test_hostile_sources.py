"""A hostile staging tenant tries to read through its sources (issue 14,
"Where a step may read: source roots"; docs/security.md).

One real `kiln serve` (native API and EMR endpoint) where production and
staging each have their own source roots and catalog, and production has
published a layer. Staging then tries what was found to work before the
roots existed: production's files and layer.xml as sources, inline VRTs
reading kiln.toml and /proc/self/environ, MEM::: pointers, loopback URLs
(SSRF), `..` and symlink escapes, and definition files that are devices,
FIFOs, another environment's mode-600 file or /etc/shadow. Each must be a
400 that names the source and staging's roots, without any byte of what
lies outside and without telling a file that exists from one that does
not; nothing may connect; the server stays up and production still works.
"""

import os
import shutil
import socket
import tempfile
import time
import unittest

import emr_helpers as emr
import kiln_server as ks
import kiln_test as kt

STAGING = ks.STAGING_TOKEN
PRODUCTION = ks.PRODUCTION_TOKEN
TINY_ZOOM = 7  # a few tiles of the Landsat scene: production's step is quick


class HostileSourcesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-hostile-sources-")
        t = lambda *p: os.path.join(cls.tmp, *p)  # noqa: E731
        cls.prod_root, cls.staging_root = t("production") + "/", t("staging") + "/"
        for d in (cls.prod_root, cls.staging_root):
            os.makedirs(d)
        # Production's imagery and its private definition (mode 600).
        cls.prod_scene = t("production", "scene.tif")
        shutil.copyfile(kt.data_path("RGB.byte.crop.tif"), cls.prod_scene)
        cls.prod_definition = t("production", "private.json")
        with open(cls.prod_definition, "w", encoding="utf-8") as f:
            f.write('{"layer": "production-private-layer", "sources": [{"uri": "%s"}]}'
                    % cls.prod_scene)
        os.chmod(cls.prod_definition, 0o600)
        # Staging's own scene, a symlink that leaves its root, a FIFO.
        cls.staging_scene = t("staging", "own.tif")
        shutil.copyfile(kt.data_path("RGB.byte.crop.tif"), cls.staging_scene)
        os.symlink(cls.prod_scene, t("staging", "link.tif"))
        os.symlink(cls.prod_root, t("staging", "prod-dir"))
        os.mkfifo(t("staging", "fifo.json"))

        cls.srv = emr.EmrServer(tmp=cls.tmp, environments=[
            {"name": "production", "token": PRODUCTION, "concurrency": 2, "priority": 10,
             "catalog": t("catalog-production"),
             "source_roots": [cls.prod_root] + kt.data_dirs()},
            {"name": "staging", "token": STAGING, "catalog": t("catalog-staging"),
             "source_roots": [cls.staging_root]},
            {"name": "empty", "token": "kiln-test-empty", "catalog": t("catalog-empty"),
             "source_roots": []},
        ], aws_keys={"production": [emr.PRODUCTION_KEY], "staging": [emr.STAGING_KEY]})
        try:
            cls.srv.start()
            # Production publishes a layer whose layer.xml staging will aim at.
            step = cls.srv.submit(ks.l7_definition("prod-layer", max_zoom=TINY_ZOOM),
                                  token=PRODUCTION)
            done = cls.srv.wait_step(step["id"], token=PRODUCTION)
            assert done["state"] == "COMPLETED", done
        except BaseException:
            cls.srv.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.layer_xml = os.path.join(kt.current_dir(t("catalog-production"), "production",
                                                    "prod-layer"), "layer.xml")
        with open(cls.srv.config_path, encoding="utf-8") as f:
            cls.config_text = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------

    def staging_steps(self):
        return [s["id"] for s in self.srv.list_steps(token=STAGING, limit=100)["steps"]]

    def refused(self, definition=None, ingest_uri=None, token=STAGING):
        """Submits as staging; asserts a 400 and that no step was created;
        returns the message."""
        before = self.staging_steps()
        action = {"ingest": definition} if definition is not None else {"ingest_uri": ingest_uri}
        started = time.monotonic()
        r = self.srv.request("POST", "/v1/steps", {"name": "probe", "action": action},
                             token=token, timeout=30)
        elapsed = time.monotonic() - started
        self.assertEqual(r.status, 400, r)
        message = r.json()["error"]["message"]
        self.assertEqual(self.staging_steps(), before, "a refused submit created a step")
        self.assert_server_up()
        self.assertLess(elapsed, 30)
        return message

    def source(self, uri):
        return {"layer": "probe", "sources": [{"uri": uri}]}

    def assert_server_up(self):
        self.assertIsNone(self.srv.proc.poll(), "kiln serve died\n" + self.srv.log_tail())
        self.assertEqual(self.srv.request("GET", "/healthz", token=None, timeout=10).status, 200)

    def assert_no_leak(self, message):
        """Nothing of production's config, files or the server's environment."""
        secrets = [ks.sha256_hex(PRODUCTION), emr.PRODUCTION_KEY.secret, "production-private-layer",
                   "KILN_", "PATH=", "root:", "last read"]
        for s in secrets:
            self.assertNotIn(s, message)

    def assert_outside(self, message, uri):
        self.assertIn(uri, message, "names the source")
        self.assertIn(self.staging_root, message, "names staging's roots")
        self.assertIn("not under", message)
        self.assertNotIn(self.prod_root, message.replace(uri, ""), "names production's roots")
        self.assert_no_leak(message)

    # --- the control -------------------------------------------------------------------

    def test_staging_ingests_its_own_source(self):
        step = self.srv.submit({"layer": "own", "sources": [{"uri": self.staging_scene}],
                                "output": {"zoom": {"max": TINY_ZOOM}}}, token=STAGING)
        self.assertEqual(self.srv.wait_step(step["id"], token=STAGING)["state"], "COMPLETED")
        self.assertEqual(step["action"]["ingest"]["sources"][0]["uri"],
                         os.path.realpath(self.staging_scene))

    # --- sources ------------------------------------------------------------------------

    def test_production_files_and_layer_xml_are_outside(self):
        self.assertTrue(os.path.isfile(self.layer_xml), self.layer_xml)
        for uri in (self.layer_xml, self.prod_scene, kt.l7_path(), self.srv.config_path):
            with self.subTest(uri=uri):
                self.assert_outside(self.refused(self.source(uri)), uri)

    def test_outside_paths_get_one_message_whether_or_not_they_exist(self):
        exists, missing = self.prod_scene, os.path.join(self.prod_root, "missing.tif")
        a = self.refused(self.source(exists)).replace(exists, "X")
        b = self.refused(self.source(missing)).replace(missing, "X")
        self.assertEqual(a, b)
        c = self.refused(self.source("/etc/passwd")).replace("/etc/passwd", "X")
        d = self.refused(self.source("/etc/no-such-file")).replace("/etc/no-such-file", "X")
        self.assertEqual(c, d)
        self.assertEqual(a, c)

    def test_dot_dot_and_symlink_escapes(self):
        s = self.staging_root
        for uri in (s + "../production/scene.tif", s + "link.tif", s + "prod-dir/scene.tif",
                    s + "prod-dir/../production/scene.tif", s + "prod-dir/missing.tif",
                    s + "prod-dir/../staging/../production/scene.tif"):
            with self.subTest(uri=uri):
                self.assert_outside(self.refused(self.source(uri)), uri)

    def test_inline_vrt_reading_the_config_and_environ(self):
        for target in (self.srv.config_path, "/proc/self/environ"):
            vrt = ('<VRTDataset rasterXSize="64" rasterYSize="8"><VRTRasterBand dataType="Byte" '
                   'band="1" subClass="VRTRawRasterBand"><SourceFilename relativeToVRT="0">%s'
                   '</SourceFilename><ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>'
                   '<LineOffset>64</LineOffset></VRTRasterBand></VRTDataset>' % target)
            with self.subTest(target=target):
                m = self.refused(self.source(vrt))
                self.assertIn("inline XML", m)
                self.assert_no_leak(m)

    def test_a_vrt_file_inside_the_root_is_not_opened(self):
        # A VRT that staging placed in its own root, also under a .tif name:
        # the driver allowlist refuses it whatever its name.
        for name in ("evil.vrt", "evil-vrt.tif"):
            path = os.path.join(self.staging_root, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write('<VRTDataset rasterXSize="64" rasterYSize="8"><VRTRasterBand '
                        'dataType="Byte" band="1" subClass="VRTRawRasterBand"><SourceFilename '
                        'relativeToVRT="0">%s</SourceFilename><ImageOffset>0</ImageOffset>'
                        '<PixelOffset>1</PixelOffset><LineOffset>64</LineOffset>'
                        '</VRTRasterBand></VRTDataset>' % self.srv.config_path)
            with self.subTest(name=name):
                m = self.refused(self.source(path))
                self.assertIn("format sources may use", m)
                self.assert_no_leak(m)

    def test_gdal_connection_strings_and_special_syntaxes(self):
        scene = self.staging_scene
        for uri in ("MEM:::DATAPOINTER=0x10,PIXELS=100,LINES=100,BANDS=1,DATATYPE=Byte",
                    "vrt://" + scene + "?bands=1", "/vsimem/x.tif", "/vsistdin/",
                    "/vsisubfile/0_1000," + scene, "/vsizip/" + scene + "/x.tif",
                    'NETCDF:"%s":z' % scene, "HDF5:%s://x" % scene, "GTIFF_DIR:1:" + scene,
                    "WMS:http://127.0.0.1:1/", "file://" + scene, "s3://bucket/key.tif"):
            with self.subTest(uri=uri):
                m = self.refused(self.source(uri))
                self.assertIn(uri, m)
                self.assertIn("sources[0].uri", m)

    def test_loopback_urls_connect_to_nothing_and_tell_nothing(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        open_port = listener.getsockname()[1]
        closed_port = ks.free_port()
        messages = {}
        for port in (open_port, closed_port):
            for form in ("/vsicurl/http://127.0.0.1:%d/scene.tif", "http://127.0.0.1:%d/scene.tif",
                         "/vsicurl/https://127.0.0.1:%d/scene.tif"):
                uri = form % port
                m = self.refused(self.source(uri))
                self.assert_outside(m, uri)
                messages.setdefault(port, []).append(m.replace(str(port), "PORT"))
        # The server answered without connecting: nothing is queued.
        with self.assertRaises(BlockingIOError):
            listener.accept()
        self.assertEqual(messages[open_port], messages[closed_port],
                         "an open port must read like a closed one")

    # --- definition files ---------------------------------------------------------------

    def test_definition_files_outside_the_roots(self):
        for uri in (self.prod_definition, "file://" + self.prod_definition, "/dev/zero",
                    "/etc/shadow", "/proc/self/environ", self.srv.config_path,
                    self.staging_root + "../production/private.json"):
            with self.subTest(uri=uri):
                m = self.refused(ingest_uri=uri)
                self.assertIn("not under", m)
                self.assertIn(self.staging_root, m)
                self.assert_no_leak(m)

    def test_definition_file_that_is_a_fifo_or_not_json(self):
        m = self.refused(ingest_uri=self.staging_root + "fifo.json")
        self.assertIn("not a regular file", m)
        words = os.path.join(self.staging_root, "words.json")
        with open(words, "w", encoding="utf-8") as f:
            f.write("root:$6$secret-hash:19000:0:99999:7:::\n")
        m = self.refused(ingest_uri=words)
        self.assertIn("words.json", m)
        self.assertNotIn("root", m.replace(self.staging_root, "").replace(words, ""))
        self.assert_no_leak(m)

    def test_definition_file_over_max_body_bytes(self):
        big = os.path.join(self.staging_root, "big.json")
        with open(big, "w", encoding="utf-8") as f:
            f.write('{"layer": "big", "pad": "%s"}' % ("x" * (2 << 20)))
        m = self.refused(ingest_uri=big)
        self.assertIn("max_body_bytes", m)

    def test_emr_definition_outside_the_roots(self):
        client = self.srv.client(emr.STAGING_KEY, max_attempts=1)
        for path in (self.prod_definition, "/dev/zero", "/etc/shadow",
                     self.staging_root + "fifo.json", self.staging_root + "link.tif"):
            with self.subTest(path=path):
                before = self.staging_steps()
                with self.assertRaises(emr.botocore.exceptions.ClientError) as caught:
                    client.add_job_flow_steps(JobFlowId=emr.cluster_id("staging"),
                                              Steps=[emr.kiln_ingest_step("probe", path)])
                status, code, message = emr.error_of(caught.exception)
                self.assertEqual((status, code), (400, "ValidationException"), message)
                self.assertIn(path, message)
                self.assert_no_leak(message)
                self.assertEqual(self.staging_steps(), before)
                self.assert_server_up()

    # --- roots as configured -----------------------------------------------------------------

    def test_an_environment_without_roots_ingests_nothing(self):
        m = self.refused(self.source(self.staging_scene), token="kiln-test-empty")
        self.assertIn("'empty' has no source roots", m)
        self.assertIn("source_roots", m)

    def test_production_still_works_after_the_attacks(self):
        step = self.srv.submit(ks.l7_definition("prod-after", max_zoom=TINY_ZOOM),
                               token=PRODUCTION)
        self.assertEqual(self.srv.wait_step(step["id"], token=PRODUCTION)["state"], "COMPLETED")
        self.assert_server_up()


if __name__ == "__main__":
    unittest.main()

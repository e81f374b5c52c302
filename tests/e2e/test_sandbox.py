"""The sandbox tenant input is opened in (docs/security.md), proved against a
real `kiln serve`: a staging tenant's files that point across the boundary
(a VRT band on production's imagery, raw bands on kiln.toml, the job store
or a worker's environment, a /vsicurl source on a loopback port) cannot be
read by its tasks, because the operating system does not show them; the
same kind of file pointing inside staging's own root works, and so does a
remote root on a host outside (a network namespace the test makes). A task that
allocates past its address-space limit fails cleanly, and a planner that
outlives its deadline answers 503 with no step created.

Run: KILN_BIN=build/src/cli/kiln /usr/bin/python3 -m unittest -v test_sandbox
(from tests/e2e). Needs bubblewrap (scripts/install-deps.sh).
"""

import os
import select
import shutil
import signal
import socket
import tempfile
import time
import unittest

from osgeo import gdal

import kiln_test as kt
from remote_host import RemoteHost
from kiln_server import (KilnServer, PRODUCTION_TOKEN, STAGING_TOKEN, assert_nothing_published_soon,
                         descendants,
                         is_kiln_process, l7_definition)

gdal.UseExceptions()

SECRET = "kiln-sandbox-secret-7f3a9c"  # planted in kiln.toml, as a real config's secrets

# A small georeferenced grid (EPSG:4326, ~100 m pixels) for the VRTs below.
GEO = "<SRS>EPSG:4326</SRS><GeoTransform>10.0, 0.001, 0, 20.0, 0, -0.001</GeoTransform>"


def raw_band_vrt(target, width=64, height=16):
    """A VRT whose one band is the raw bytes of `target` (what a tenant would
    use to read a file as pixels)."""
    return ('<VRTDataset rasterXSize="%d" rasterYSize="%d">%s'
            '<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
            '<SourceFilename relativeToVRT="0">%s</SourceFilename>'
            '<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>'
            '<LineOffset>%d</LineOffset><ByteOrder>LSB</ByteOrder>'
            '</VRTRasterBand></VRTDataset>\n' % (width, height, GEO, target, width))


def simple_source_vrt(target, size=200):
    """A VRT whose band is band 1 of `target`; its SourceProperties let GDAL
    open `target` only when pixels are read, so planning (metadata) works
    and only the task touches `target`."""
    return ('<VRTDataset rasterXSize="%d" rasterYSize="%d">%s'
            '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
            '<SourceFilename relativeToVRT="0">%s</SourceFilename><SourceBand>1</SourceBand>'
            '<SourceProperties RasterXSize="%d" RasterYSize="%d" DataType="Byte" '
            'BlockXSize="%d" BlockYSize="1"/>'
            '<SrcRect xOff="0" yOff="0" xSize="%d" ySize="%d"/>'
            '<DstRect xOff="0" yOff="0" xSize="%d" ySize="%d"/>'
            '</SimpleSource></VRTRasterBand></VRTDataset>\n'
            % (size, size, GEO, target, size, size, size, size, size, size, size))


SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def signal_masks(pid):
    """/proc/PID/status's signal masks of process `pid` (SigPnd, ShdPnd,
    SigCgt, ...) as ints, or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return {k: int(fields[k], 16) for k in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")}


def pending_signals(pid):
    """The signals pending for process `pid` (its own and its thread
    group's, as a mask), or None when it is gone."""
    masks = signal_masks(pid)
    return None if masks is None else masks["SigPnd"] | masks["ShdPnd"]


def files_under(root):
    """Absolute paths of the regular files under root."""
    return [os.path.join(root, rel) for rel in kt.all_files(root)] if os.path.isdir(root) else []


# The default drivers and VRT (examples/kiln.toml, [sandbox] tenant_drivers).
TENANT_DRIVERS = ('tenant_drivers = ["GTiff", "COG", "PNG", "JPEG", "WEBP", "JP2OpenJPEG", '
                  '"VRT"]\n')


def definition(layer, uri):
    return {"layer": layer, "sources": [{"uri": uri, "bands": [1]}],
            "output": {"encoding": {"format": "png"}}}


class SandboxedServer(unittest.TestCase):
    """One server: production reads data/, staging only its own root. The
    operator lets tenants open VRTs ([sandbox] tenant_drivers): what a VRT
    names is then up to the sandbox, which is what these tests prove. More
    [sandbox] keys for a subclass go in `sandbox_toml`."""

    sandbox_toml = ""

    @classmethod
    def extra_staging_roots(cls):
        return []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-sandbox-e2e-")
        cls.staging_root = os.path.join(cls.tmp, "imagery", "staging")
        os.makedirs(cls.staging_root)
        # A real raster inside staging's root: a window of the Landsat scene.
        cls.inside_tif = os.path.join(cls.staging_root, "inside.tif")
        gdal.Translate(cls.inside_tif, kt.l7_path(), srcWin=[0, 0, 200, 200], bandList=[1])
        cls.inside_bytes = os.path.join(cls.staging_root, "inside.bin")
        with open(cls.inside_bytes, "wb") as f:
            f.write(bytes(range(256)) * 4)
        cls.srv = KilnServer(
            tmp=cls.tmp,
            environments=[
                {"name": "production", "token": PRODUCTION_TOKEN, "concurrency": 2,
                 "priority": 10, "source_roots": [d + "/" for d in kt.data_dirs()]},
                {"name": "staging", "token": STAGING_TOKEN, "concurrency": 2,
                 "source_roots": [cls.staging_root + "/"] + cls.extra_staging_roots()},
            ],
            extra_toml="# %s\n[sandbox]\n%s%s" % (SECRET, TENANT_DRIVERS, cls.sandbox_toml))
        try:
            cls.srv.start()
        except BaseException:
            cls.srv.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.staging_root, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def staging_run(self, layer, uri):
        """Submits as staging. Returns ("refused", response) when the submit is
        refused (the sandboxed planner could not read it either), else
        (final state, step)."""
        r = self.srv.request("POST", "/v1/steps",
                             {"name": layer, "action": {"ingest": definition(layer, uri)}},
                             token=STAGING_TOKEN)
        if r.status != 201:
            self.assertEqual(r.status // 100, 4, r)
            return "refused", r
        step = self.srv.wait_step(r.json()["id"], token=STAGING_TOKEN, timeout=180)
        return step["state"], step

    def assert_nothing_readable(self, layer):
        """Nothing published for `layer` in staging (and its staging gone)."""
        assert_nothing_published_soon(self, self.srv.catalog, "staging", layer)


class TestFilesystemBoundary(SandboxedServer):

    def test_vrt_pointing_inside_the_root_works_and_outside_fails(self):
        inside = self.write("inside.vrt", simple_source_vrt(self.inside_tif))
        state, step = self.staging_run("vrt-inside", inside)
        self.assertEqual(state, "COMPLETED", step)
        self.assertTrue(kt.list_tiles(kt.current_dir(self.srv.catalog, "staging", "vrt-inside")))

        # The same VRT on production's imagery: planning (metadata only) may
        # pass, but the task's view holds no such file.
        outside = self.write("steal.vrt", simple_source_vrt(kt.l7_path()))
        state, step = self.staging_run("vrt-outside", outside)
        self.assertEqual(state, "FAILED", step)
        self.assertEqual(step["failure"]["reason"], "SOURCE_ERROR", step)
        self.assertIn("No such file", step["failure"]["message"], step)
        self.assert_nothing_readable("vrt-outside")

    def test_symlink_out_of_the_root_is_not_followed(self):
        link = os.path.join(self.staging_root, "link.tif")
        if not os.path.lexists(link):
            os.symlink(kt.l7_path(), link)
        vrt = self.write("via-link.vrt", simple_source_vrt(link))
        state, _ = self.staging_run("via-link", vrt)
        self.assertIn(state, ("refused", "FAILED"))
        self.assert_nothing_readable("via-link")

    def test_raw_bands_read_inside_the_root_only(self):
        control = self.write("raw-inside.vrt", raw_band_vrt(self.inside_bytes))
        state, step = self.staging_run("raw-inside", control)
        self.assertEqual(state, "COMPLETED", step)

        db = [p for p in files_under(self.srv.state_dir) if p.endswith("kiln.db")]
        self.assertTrue(db, "the job store is a file in the state dir")
        targets = {"raw-config": self.srv.config_path, "raw-store": db[0],
                   "raw-log": self.srv.log_path}
        for layer, target in targets.items():
            with self.subTest(target=target):
                state, got = self.staging_run(layer, self.write(layer + ".vrt",
                                                                raw_band_vrt(target)))
                self.assertIn(state, ("refused", "FAILED"), got)
                self.assert_nothing_readable(layer)

    def test_worker_token_is_out_of_reach(self):
        workers = [p for p, a in descendants(self.srv.proc.pid).items()
                   if is_kiln_process(a, "worker")]
        self.assertTrue(workers)
        with open("/proc/%d/environ" % workers[0], "rb") as f:
            self.assertIn(b"KILN_WORKER_TOKEN=", f.read(), "the worker holds the token")
        # Its environment is a file of another pid namespace: absent.
        layer = "env-worker"
        state, got = self.staging_run(layer, self.write(
            layer + ".vrt", raw_band_vrt("/proc/%d/environ" % workers[0], 256, 4)))
        self.assertIn(state, ("refused", "FAILED"), got)
        self.assert_nothing_readable(layer)

    def test_production_still_ingests_its_own_root(self):
        r = self.srv.submit(definition("prod-l7", kt.l7_path()), token=PRODUCTION_TOKEN)
        step = self.srv.wait_step(r["id"], timeout=300)
        self.assertEqual(step["state"], "COMPLETED", step)
        tiles = kt.list_tiles(kt.current_dir(self.srv.catalog, "production", "prod-l7"))
        self.assertTrue(tiles)
        # Written by the sandbox user, readable by the server and readers.
        st = os.stat(kt.layer_dir(self.srv.catalog, "production", "prod-l7"))
        if os.geteuid() == 0:
            self.assertEqual(st.st_uid, 65534)


class TestGracefulStop(SandboxedServer):
    """The worker holds the outer bwrap's pid, which passes no signal on: a
    cancel with TERM must still reach the task inside, whose own stop
    handling runs (what it does unsandboxed), not end it like a KILL."""

    def stopped_task(self, step_id, timeout=60):
        """SIGSTOPs one running task process of the step (`kiln task run`
        inside its sandbox; partitions take under a second, far less than
        a cancel takes to reach the worker) and returns its pid. Only once
        the task catches SIGTERM: one stopped while still loading would die
        of the signal before it could handle it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for pid in self.srv.task_pids_of(step_id):
                masks = signal_masks(pid)
                if masks is None or not masks["SigCgt"] & SIGTERM_BIT:
                    continue
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                if pending_signals(pid) is not None:
                    return pid
            time.sleep(0.01)
        self.fail("no task of %s ran within %ss\n%s" % (step_id, timeout, self.srv.log_tail()))

    def test_cancel_term_reaches_the_sandboxed_task_itself(self):
        step = self.srv.submit(l7_definition("graceful-term", max_zoom=17))
        pid = self.stopped_task(step["id"])
        try:
            self.srv.cancel(step["id"], signal_name="TERM")
            # The worker's SIGTERM waits on the stopped task itself (sent to
            # the outer bwrap, the sandbox and the task would die at once).
            deadline = time.time() + 60
            while time.time() < deadline and not (pending_signals(pid) or 0) & SIGTERM_BIT:
                if pending_signals(pid) is None:
                    self.fail("the task died without its own stop\n" + self.srv.log_tail())
                time.sleep(0.01)
            self.assertTrue((pending_signals(pid) or 0) & SIGTERM_BIT, "no SIGTERM reached it")
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        done = self.srv.wait_step(step["id"], timeout=120)
        self.assertEqual(done["state"], "CANCELLED", done)
        log, _ = self.srv.logs(step["id"])
        self.assertIn("cancel requested (TERM)", log)
        # `kiln task run` on SIGTERM stops at its next tile and says so.
        self.assertIn("interrupted; nothing was published", log)
        self.assertNotIn("killed by signal", log + str(done))
        assert_nothing_published_soon(self, self.srv.catalog, "production", "graceful-term")


class TestNetworkBoundary(SandboxedServer):
    """Staging also reads from a remote host (a server in a network namespace
    this test makes): its tasks and plans get a network, through slirp4netns,
    which reaches that host and never this one's loopback."""

    @classmethod
    def extra_staging_roots(cls):
        cls.remote_dir = tempfile.mkdtemp(prefix="kiln-sandbox-remote-")
        gdal.Translate(os.path.join(cls.remote_dir, "remote.tif"), kt.l7_path(),
                       srcWin=[0, 0, 200, 200], bandList=[1])
        cls.addClassCleanup(shutil.rmtree, cls.remote_dir, ignore_errors=True)
        cls.remote = RemoteHost("net", 1)
        cls.addClassCleanup(cls.remote.close)  # also when the server does not start
        return [cls.remote.serve_directory(cls.remote_dir)]

    def test_task_reaches_its_remote_root(self):
        state, step = self.staging_run("remote",
                                       "/vsicurl/http://%s:8000/remote.tif" % self.remote.addr)
        self.assertEqual(state, "COMPLETED", step)
        self.assertTrue(kt.list_tiles(kt.current_dir(self.srv.catalog, "staging", "remote")))

    def test_task_cannot_reach_a_loopback_port(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        url = "/vsicurl/http://127.0.0.1:%d/scene.tif" % port
        state, step = self.staging_run("loopback", self.write("loopback.vrt",
                                                               simple_source_vrt(url)))
        self.assertIn(state, ("refused", "FAILED"), step)
        readable, _, _ = select.select([listener], [], [], 0.5)
        self.assertEqual(readable, [], "a connection reached the host's loopback port")


class TestAddressSpaceLimit(SandboxedServer):
    # Enough for a task of the Landsat window (it peaks near 400 MiB of
    # address space), too little for the 550 MiB block below.
    sandbox_toml = "address_space_mb = 520\n"

    def test_task_over_its_address_space_fails_cleanly(self):
        # A sparse GeoTIFF of 378 bytes whose one 24000x24000 tile GDAL must
        # allocate whole (576 MB) to read any pixel of it.
        big = os.path.join(self.staging_root, "one-tile.tif")
        if not os.path.exists(big):
            d = gdal.GetDriverByName("GTiff").Create(
                big, 24000, 24000, 1, gdal.GDT_Byte,
                ["TILED=YES", "BLOCKXSIZE=24000", "BLOCKYSIZE=24000", "SPARSE_OK=TRUE"])
            d.SetGeoTransform([10, 0.00001, 0, 20, 0, -0.00001])
            d.SetProjection('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
                            '298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",'
                            '0.0174532925199433],AUTHORITY["EPSG","4326"]]')
            d = None
        self.assertLess(os.path.getsize(big), 4096)
        state, step = self.staging_run("too-big", big)
        self.assertEqual(state, "FAILED", step)
        self.assertEqual(step["failure"]["reason"], "SOURCE_ERROR", step)
        self.assertIn("cannot allocate", step["failure"]["message"], step)
        self.assert_nothing_readable("too-big")
        # The server and its worker are unharmed: a small step still runs.
        state, step = self.staging_run("after-big", self.inside_tif)
        self.assertEqual(state, "COMPLETED", step)


class TestPlannerDeadline(SandboxedServer):
    sandbox_toml = "plan_timeout_seconds = 2\n"

    # Staging may read from a host that accepts connections and never
    # answers (issue 14: "a source on a slow host held a request thread").
    # A FIFO would do locally, but source roots refuse anything but regular
    # files before planning starts. The host is a listener in a network
    # namespace of the test's: the sandbox never reaches this host's loopback.
    @classmethod
    def extra_staging_roots(cls):
        cls.stalling = RemoteHost("slow", 2)
        cls.addClassCleanup(cls.stalling.close)
        cls.stalling_root = cls.stalling.stall()
        return [cls.stalling_root]

    def test_a_planner_past_its_deadline_answers_503_and_creates_no_step(self):
        slow = self.stalling_root + "scene.tif"
        before = self.srv.list_steps(token=STAGING_TOKEN)["steps"]
        r = self.srv.request("POST", "/v1/steps",
                             {"name": "slow", "action": {"ingest": definition("slow", slow)}},
                             token=STAGING_TOKEN)
        self.assertEqual(r.status, 503, r)
        self.assertIn("did not finish within 2 s", r.text())
        self.assertEqual(self.srv.list_steps(token=STAGING_TOKEN)["steps"], before)
        # The server still plans the next one.
        state, step = self.staging_run("after-slow", self.inside_tif)
        self.assertEqual(state, "COMPLETED", step)
        # And no planner is left behind.
        self.assertEqual([a for a in descendants(self.srv.proc.pid).values()
                          if is_kiln_process(a, "task") and "plan" in a], [])


if __name__ == "__main__":
    unittest.main()

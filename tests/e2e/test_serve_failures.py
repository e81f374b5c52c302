"""kiln serve when things break: a corrupt source fails its step only; a
worker killed mid-task or the server killed with work in every state loses
nothing and duplicates nothing; SIGTERM shuts down cleanly."""

import os
import signal
import time
import unittest

import kiln_server as ks
import kiln_test as kt

# See test_serve_steps.SLOW_ZOOM: thousands of tiles, several seconds.
SLOW_ZOOM = 17
MID_ZOOM = 16


class ServeFailuresTest(unittest.TestCase):
    def start_server(self, **settings):
        srv = ks.KilnServer(self, **settings)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def assert_no_processes_left(self, srv, timeout=30):
        """No kiln process of this server is left: neither its children nor
        orphans re-parented to the test."""
        deadline = time.time() + timeout
        left = {}
        while time.time() < deadline:
            left = dict(srv.processes())
            left.update(srv.orphans())
            if not left:
                return
            time.sleep(0.2)
        self.fail("processes left behind: %s\n%s" % (left, srv.log_tail()))

    def test_corrupt_source_fails_its_step_while_another_completes(self):
        srv = self.start_server(scheduler={"max_attempts": 3})
        bad_src = kt.truncated_geotiff(kt.l7_path(), os.path.join(srv.tmp, "truncated-scene.tif"),
                                       keep=0.4)
        from osgeo import gdal
        ds = gdal.Open(bad_src)  # precondition: it opens, so planning accepts it
        self.assertIsNotNone(ds)
        ds = None

        bad = srv.submit(ks.l7_definition("broken", uri=bad_src), name="broken")
        good = srv.submit(ks.l7_definition("fine"), name="fine")
        bad_done = srv.wait_step(bad["id"])
        good_done = srv.wait_step(good["id"])

        self.assertEqual(good_done["state"], "COMPLETED", good_done)
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "fine"), ["v000001"])
        self.assertEqual(bad_done["state"], "FAILED", bad_done)
        failure = bad_done.get("failure")
        self.assertIsInstance(failure, dict, bad_done)
        self.assertEqual(failure.get("reason"), "SOURCE_ERROR", failure)
        self.assertIn("truncated-scene.tif", failure.get("message", ""),
                      "the failure names the corrupt file")
        # ... and the block GDAL could not read, and that it was not retried:
        # a corrupt block fails every attempt the same way.
        self.assertRegex(failure.get("message", ""), r"IReadBlock failed at X offset \d+, Y offset \d+")
        self.assertIn("(attempt 1 of 3; not retried: the error is permanent)", failure["message"])
        self.assertTrue(failure.get("log_file"), failure)
        log, _ = srv.logs(bad["id"])
        self.assertIn("truncated-scene.tif", log)
        self.assertRegex(log, r"attempt 1 leased")
        self.assertNotRegex(log, r"attempt 2 leased", "a permanent failure was retried")
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "broken")

    def test_task_killed_is_retried_and_its_step_completes(self):
        # A crash is transient: unlike a corrupt source, it is tried again.
        srv = self.start_server(scheduler={"max_attempts": 3})
        step = srv.submit(ks.l7_definition("crashy", max_zoom=14))
        victim = srv.pause_task_of(step["id"])
        os.kill(victim, signal.SIGKILL)
        done = srv.wait_step(step["id"], timeout=600)
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "crashy"), ["v000001"])
        log, _ = srv.logs(step["id"])
        self.assertRegex(log, r"attempt 1 failed: TASK_CRASHED")
        self.assertRegex(log, r"attempt 2 leased", "the crashed task was not retried")

    def test_cancel_and_wait_cancels_pending_steps_after_a_failure(self):
        srv = self.start_server(scheduler={"max_attempts": 1}, environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        bad_src = kt.truncated_geotiff(kt.l7_path(), os.path.join(srv.tmp, "cut.tif"), keep=0.4)
        bad = srv.submit(ks.l7_definition("broken", uri=bad_src),
                         action_on_failure="CANCEL_AND_WAIT")
        queued = srv.submit(ks.l7_definition("queued"))
        self.assertEqual(srv.wait_step(bad["id"])["state"], "FAILED")
        self.assertEqual(srv.wait_step(queued["id"])["state"], "CANCELLED")
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "queued")

    def test_worker_killed_mid_task_step_still_completes_identically(self):
        srv = self.start_server(executor={"workers": 2, "slots_per_worker": 1})
        definition = ks.l7_definition("resilient", max_zoom=MID_ZOOM)
        step = srv.submit(definition)
        victim, task = srv.wait_busy_worker()
        cluster_pids = {int(p) for p in _find_values(srv.cluster(), "pid")}
        self.assertIn(victim, cluster_pids, "/v1/cluster does not list worker pid %d" % victim)
        os.kill(victim, signal.SIGKILL)
        self.assertEqual(srv.describe(step["id"])["state"], "RUNNING",
                         "the step ended before its worker was killed: make it bigger")

        done = srv.wait_step(step["id"], timeout=300)
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "resilient"), ["v000001"])
        served = os.path.realpath(kt.current_dir(srv.catalog, "production", "resilient"))
        reference = ks.reference_ingest(definition, srv.tmp)
        self.assertEqual(ks.tile_digests(served), ks.tile_digests(reference),
                         "tiles differ from an undisturbed run")
        ks.assert_staging_clean_soon(self, kt.layer_dir(srv.catalog, "production", "resilient"))
        # kiln serve replaced the dead worker.
        deadline = time.time() + 30
        while time.time() < deadline and len(srv.worker_pids()) < 2:
            time.sleep(0.2)
        self.assertEqual(len(srv.worker_pids()), 2, "the killed worker was not replaced")
        self.assertNotIn(victim, srv.worker_pids())

    def test_server_killed_with_steps_in_every_state_recovers(self):
        srv = self.start_server(
            server={"shutdown_grace_seconds": 5},
            scheduler={"heartbeat_seconds": 2, "cancel_grace_seconds": 5},
            executor={"workers": 1, "slots_per_worker": 2},
            environments=[{"name": "production", "token": ks.PRODUCTION_TOKEN,
                           "concurrency": 2}])
        running_def = ks.l7_definition("running", max_zoom=SLOW_ZOOM)
        running = srv.submit(running_def)
        cancelling = srv.submit(ks.l7_definition("cancelling", max_zoom=SLOW_ZOOM))
        pending = srv.submit(ks.l7_definition("pending"))
        # Two zoom-17 steps share the cluster's 2 slots; under ThreadSanitizer
        # on a busy machine a first tile has taken over 120 s.
        srv.wait_running(running["id"], tiles_done=1, timeout=300)
        srv.wait_running(cancelling["id"], tiles_done=1, timeout=300)
        self.assertEqual(srv.describe(pending["id"])["state"], "PENDING")
        before = srv.processes()
        answer = srv.cancel(cancelling["id"])
        srv.kill9()  # at once, while the cancel is (most likely) still CANCEL_PENDING
        self.assertIn(answer["state"], ("CANCEL_PENDING", "CANCELLED"), answer)

        srv.start()  # same state dir, same port
        states = {k: srv.wait_step(s["id"], timeout=300)
                  for k, s in (("running", running), ("cancelling", cancelling),
                               ("pending", pending))}
        self.assertEqual(states["running"]["state"], "COMPLETED", states["running"])
        self.assertEqual(states["cancelling"]["state"], "CANCELLED", states["cancelling"])
        self.assertEqual(states["pending"]["state"], "COMPLETED", states["pending"])
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "running"), ["v000001"])
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "pending"), ["v000001"])
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "cancelling")
        for layer in ("running", "pending"):
            ks.assert_staging_clean_soon(self, kt.layer_dir(srv.catalog, "production", layer))
        served = os.path.realpath(kt.current_dir(srv.catalog, "production", "running"))
        self.assertEqual(ks.tile_digests(served),
                         ks.tile_digests(ks.reference_ingest(running_def, srv.tmp)))
        # Nothing of the killed server outlives its leases by much.
        lease = srv.scheduler["lease_seconds"]
        deadline = time.time() + 3 * lease + 10
        while time.time() < deadline and any(ks.pid_alive(p) for p in before):
            for p in before:
                ks.reap(p)
            time.sleep(0.2)
        self.assertEqual([p for p in before if ks.pid_alive(p)], [],
                         "workers/tasks of the killed server still alive: %s" % before)

    def test_restart_keeps_history_and_does_not_rerun_completed_steps(self):
        srv = self.start_server()
        done = srv.wait_step(srv.submit(ks.l7_definition("kept"))["id"])
        # A second step, so that a page of one hands out a marker.
        extra = srv.submit(ks.l7_definition("extra"))["id"]
        srv.cancel(extra, signal_name="KILL")
        srv.wait_step(extra)
        first_page = srv.list_steps(limit=1)
        self.assertEqual([s["id"] for s in first_page["steps"]], [extra])
        self.assertEqual(srv.stop(), 0)
        srv.start()
        # A marker handed out before the restart still continues the list.
        rest = srv.list_steps(limit=1, marker=first_page["next_marker"])
        self.assertEqual([s["id"] for s in rest["steps"]], [done["id"]])
        again = srv.describe(done["id"])
        self.assertEqual(again["state"], "COMPLETED")
        self.assertEqual(again["version"], 1)
        # Nothing was queued again by the restart (recovery runs before the
        # server is ready), and a scheduler pass that began after it started
        # nothing: a re-run would show as a step or a task in flight well
        # before it could publish a second version.
        srv.wait_for_scheduler_passes()
        self.assertEqual(srv.list_steps(state="PENDING,RUNNING,CANCEL_PENDING")["steps"], [])
        for state in ("pending", "running"):
            self.assertEqual(srv.metric("kiln_tasks", {"state": state}), 0, state)
        self.assertEqual(srv.describe(done["id"])["state"], "COMPLETED")
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "kept"), ["v000001"])

    def test_unconfigured_environment_steps_become_interrupted(self):
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1},
            {"name": "staging", "token": ks.STAGING_TOKEN, "concurrency": 1}])
        blocker = srv.submit(ks.l7_definition("blocker", max_zoom=SLOW_ZOOM),
                             token=ks.STAGING_TOKEN)
        queued = srv.submit(ks.l7_definition("queued"), token=ks.STAGING_TOKEN)
        srv.wait_running(blocker["id"], token=ks.STAGING_TOKEN)
        self.assertEqual(srv.stop(), 0)
        srv.environments = [e for e in srv.environments if e["name"] != "staging"]
        srv.environments.append({"name": "qa", "token": ks.STAGING_TOKEN})
        srv.start()
        # The staging token now opens "qa", which does not see staging's steps.
        r = srv.request("GET", "/v1/steps/" + queued["id"], token=ks.STAGING_TOKEN)
        self.assertEqual(r.status, 404, r)
        srv.stop()
        srv.environments = [e for e in srv.environments if e["name"] != "qa"]
        srv.environments.append({"name": "staging", "token": ks.STAGING_TOKEN})
        srv.start()
        for s in (blocker, queued):
            got = srv.describe(s["id"], token=ks.STAGING_TOKEN)
            self.assertEqual(got["state"], "INTERRUPTED", got)
            self.assertTrue(got.get("failure"), got)
        # INTERRUPTED publishes nothing (its staging may stay: the contract
        # removes staging for FAILED and CANCELLED).
        self.assertEqual(ks.layer_versions(srv.catalog, "staging", "blocker"), [])
        self.assertFalse(os.path.lexists(kt.current_dir(srv.catalog, "staging", "blocker")))

    def test_sigterm_shuts_down_gracefully_and_the_step_resumes(self):
        srv = self.start_server(server={"shutdown_grace_seconds": 3})
        definition = ks.l7_definition("graceful", max_zoom=SLOW_ZOOM)
        step = srv.submit(definition)
        srv.wait_running(step["id"], tiles_done=1)
        self.assertTrue(srv.worker_pids())
        # The task runs far longer than the 3 s grace: the server does not
        # wait for it to finish but stops it and exits 0 (stop() fails the
        # test if it has not exited 20 s past the grace).
        rc = srv.stop(signal.SIGTERM, timeout=3 + 20)
        self.assertEqual(rc, 0, "kiln serve's exit code on SIGTERM\n" + srv.log_tail())
        self.assertIn("waiting up to 3 s for running tasks", srv.log_tail(100000))
        self.assert_no_processes_left(srv, timeout=10)
        # Stopped mid-way: nothing published (its staging stays, to resume).
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "graceful"), [])
        self.assertFalse(os.path.lexists(kt.current_dir(srv.catalog, "production", "graceful")))

        srv.start()
        done = srv.wait_step(step["id"], timeout=300)
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "graceful"), ["v000001"])
        self.assertEqual(srv.stop(signal.SIGTERM), 0)
        self.assert_no_processes_left(srv, timeout=10)

    def test_sigterm_refuses_new_steps_while_draining(self):
        srv = self.start_server(server={"shutdown_grace_seconds": 10})
        step = srv.submit(ks.l7_definition("draining", max_zoom=SLOW_ZOOM))
        srv.wait_running(step["id"], tiles_done=1)
        srv.proc.send_signal(signal.SIGTERM)
        # The signal reaches the server's signal thread asynchronously; a
        # request it reads before that is an ordinary submit. Draining has
        # begun once /readyz says so; from then on every submit is refused.
        deadline = time.time() + 5
        while time.time() < deadline and srv.proc.poll() is None:
            try:
                if srv.request("GET", "/readyz", token=None, timeout=5).status == 503:
                    break
            except OSError:
                break
            time.sleep(0.01)
        deadline = time.time() + 5
        refused = None
        while time.time() < deadline and srv.proc.poll() is None:
            try:
                r = srv.request("POST", "/v1/steps", timeout=5,
                                body={"name": "late",
                                      "action": {"ingest": ks.l7_definition("late")}})
            except OSError:
                break  # the listener is already closed: refused too
            if r.status != 201:
                refused = r
                break
            self.fail("a step was accepted after SIGTERM: %r" % r)
        if refused is not None:
            self.assertIn(refused.status, (409, 503), refused)
        srv.proc.wait(30)
        self.assertEqual(srv.proc.returncode, 0)


def _find_values(doc, key):
    """Every value of `key` anywhere in a JSON document."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key:
                out.append(v)
            out += _find_values(v, key)
    elif isinstance(doc, list):
        for v in doc:
            out += _find_values(v, key)
    return out


if __name__ == "__main__":
    unittest.main()

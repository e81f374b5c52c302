"""Steps on a real `kiln serve`: a submitted ingest completes with the same
tiles `kiln ingest` writes; listing, progress, cancelling and logs behave as
docs/cluster.md says."""

import os
import re
import time
import unittest

import kiln_server as ks
import kiln_test as kt

# A max zoom above L7's own (12) makes a step with thousands of tiles: slow
# enough (several seconds on 2 cores) to be seen RUNNING and cancelled.
SLOW_ZOOM = 17

STEP_ID = re.compile(r"^s-[0-9A-Z]{13}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class ServeStepsTest(unittest.TestCase):
    def start_server(self, **settings):
        srv = ks.KilnServer(self, **settings)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def test_submitted_ingest_completes_with_the_tiles_kiln_ingest_writes(self):
        srv = self.start_server()
        definition = ks.l7_definition("l7")
        step = srv.submit(definition, name="landsat")
        self.assertRegex(step["id"], STEP_ID)
        self.assertEqual(step["name"], "landsat")
        self.assertEqual(step["environment"], "production")
        self.assertIn(step["state"], ("PENDING", "RUNNING"))
        self.assertEqual(step["action_on_failure"], "CONTINUE")
        self.assertRegex(step["created_at"], RFC3339_UTC)
        self.assertIsNone(step["ended_at"])

        done = srv.wait_step(step["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(done["layer"], "l7")
        self.assertEqual(done["version"], 1)
        self.assertIsNone(done.get("failure"))
        for key in ("created_at", "started_at", "ended_at"):
            self.assertRegex(done[key], RFC3339_UTC, key)
        self.assertLessEqual(done["created_at"], done["started_at"])
        self.assertLessEqual(done["started_at"], done["ended_at"])

        # The output went to the environment's catalog, whatever the body said.
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])
        served = os.path.realpath(kt.current_dir(srv.catalog, "production", "l7"))
        self.assertEqual(kt.load_metadata(srv.catalog, "production", "l7")["version"], 1)
        ks.assert_staging_clean_soon(self, kt.layer_dir(srv.catalog, "production", "l7"))

        reference = ks.reference_ingest(definition, srv.tmp)
        want = ks.tile_digests(reference)
        self.assertGreater(len(want), 13)
        self.assertEqual(ks.tile_digests(served), want,
                         "tiles of the step differ from kiln ingest's")

        # The final progress counts the work done, however short the tasks.
        p = done["progress"]
        self.assertEqual(p["tasks_done"], p["tasks_total"])
        self.assertGreaterEqual(p["tasks_total"], 2, "at least one partition and the commit")
        self.assertGreater(p["tiles_done"], 0, "tiles_done of a COMPLETED step")
        self.assertLessEqual(p["tiles_done"], p["tiles_total"])
        self.assertGreater(p["bytes_written"], 0)

    def test_body_catalog_is_overwritten(self):
        srv = self.start_server()
        elsewhere = os.path.join(srv.tmp, "elsewhere")
        definition = ks.l7_definition("l7")
        definition["output"]["catalog"] = elsewhere
        done = srv.wait_step(srv.submit(definition)["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertFalse(os.path.exists(elsewhere), "a step wrote outside its catalog")
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])

    def test_body_environment_is_overwritten(self):
        # docs/cluster.md: "The definition's output.catalog and
        # output.environment are overwritten": the token decides.
        srv = self.start_server()
        definition = ks.l7_definition("l7")
        definition["output"]["environment"] = "staging"
        done = srv.wait_step(srv.submit(definition)["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(done["environment"], "production")
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])
        self.assertEqual(ks.layer_versions(srv.catalog, "staging", "l7"), [])

    def test_second_step_on_a_layer_publishes_the_next_version(self):
        srv = self.start_server()
        first = srv.wait_step(srv.submit(ks.l7_definition("l7"))["id"])
        second = srv.wait_step(srv.submit(ks.l7_definition("l7"))["id"])
        self.assertEqual((first["state"], first["version"]), ("COMPLETED", 1))
        self.assertEqual((second["state"], second["version"]), ("COMPLETED", 2))
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"),
                         ["v000001", "v000002"])

    def test_list_is_newest_first_and_pages_with_markers(self):
        # Concurrency 1 and a slow first step: the others stay PENDING, so
        # the list's order is the submission order and nothing else.
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        ids = [srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM), name="s0")["id"]]
        for i in range(1, 7):
            ids.append(srv.submit(ks.l7_definition("l%d" % i), name="s%d" % i)["id"])
        self.assertEqual(len(set(ids)), len(ids))

        everything = srv.list_steps()
        self.assertEqual([s["id"] for s in everything["steps"]], ids[::-1])
        self.assertFalse(everything.get("next_marker"))

        seen, marker, pages = [], None, 0
        while True:
            page = srv.list_steps(limit=3, marker=marker)
            self.assertLessEqual(len(page["steps"]), 3)
            seen += [s["id"] for s in page["steps"]]
            pages += 1
            marker = page.get("next_marker")
            if not marker:
                break
            self.assertLess(pages, 10, "pagination does not end")
        self.assertEqual(seen, ids[::-1], "pages skip or repeat steps")
        self.assertEqual(pages, 3)

        pending = srv.list_steps(state="PENDING")
        self.assertEqual([s["id"] for s in pending["steps"]], ids[1:][::-1])
        running_or_pending = srv.list_steps(state="RUNNING,PENDING")
        self.assertEqual(len(running_or_pending["steps"]), len(ids))
        self.assertEqual(srv.list_steps(state="COMPLETED")["steps"], [])
        bad = srv.request("GET", "/v1/steps?state=DONE")
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(bad.json()["error"]["code"], "bad_request")
        for limit in ("0", "abc", "100000"):
            bad = srv.request("GET", "/v1/steps?limit=" + limit)
            self.assertEqual(bad.status, 400, "limit=%s: %r" % (limit, bad))
        for i in ids:
            srv.cancel(i)

    def test_describe_shows_progress_while_running(self):
        srv = self.start_server()
        step = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        seen = []
        deadline = time.time() + 300
        while time.time() < deadline:
            s = srv.describe(step["id"])
            seen.append(s)
            if s["state"] in ks.TERMINAL:
                break
            time.sleep(0.1)
        self.assertEqual(seen[-1]["state"], "COMPLETED", seen[-1])
        running = [s for s in seen if s["state"] == "RUNNING"]
        self.assertTrue(running, "never saw the step RUNNING")
        total = running[0]["progress"]["tiles_total"]
        self.assertGreater(total, 100, "the plan's tile count is known once RUNNING")
        partial = [s for s in running if 0 < s["progress"]["tiles_done"] < total]
        self.assertTrue(partial, "no progress reported between 0 and %d tiles" % total)
        done = [s["progress"]["tiles_done"] for s in seen]
        self.assertEqual(done, sorted(done), "tiles_done went backwards")
        self.assertTrue(any(s["progress"].get("eta_seconds") is not None for s in partial),
                        "no eta while running")
        self.assertTrue(any(s["progress"]["bytes_read"] > 0 for s in partial))
        self.assertIsNotNone(running[0]["started_at"])
        self.assertIsNone(running[0]["ended_at"])

    def test_cancel_pending_step(self):
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        first = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        second = srv.submit(ks.l7_definition("never"))
        self.assertEqual(srv.describe(second["id"])["state"], "PENDING")
        cancelled = srv.cancel(second["id"])
        self.assertEqual(cancelled["state"], "CANCELLED", "a PENDING step is cancelled at once")
        self.assertIsNone(cancelled["started_at"])
        self.assertIsNotNone(cancelled["ended_at"])
        # Cancelling again is harmless and changes nothing.
        self.assertEqual(srv.cancel(second["id"])["state"], "CANCELLED")
        srv.cancel(first["id"])
        srv.wait_step(first["id"])
        # The slot is free: a scheduler pass that began after that would have
        # started the second step, had its cancel not stuck.
        srv.wait_for_scheduler_passes()
        self.assertEqual(srv.describe(second["id"])["state"], "CANCELLED")
        self.assertEqual(srv.list_steps(state="PENDING,RUNNING")["steps"], [])
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "never")

    def test_cancel_running_step_publishes_nothing(self):
        srv = self.start_server()
        step = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        srv.wait_running(step["id"], tiles_done=50)
        ldir = kt.layer_dir(srv.catalog, "production", "slow")
        self.assertTrue(os.path.isdir(os.path.join(ldir, ".staging")),
                        "a running step writes into the layer's .staging")
        answer = srv.cancel(step["id"])
        self.assertIn(answer["state"], ("CANCEL_PENDING", "CANCELLED"))
        done = srv.wait_step(step["id"], timeout=60)
        self.assertEqual(done["state"], "CANCELLED", done)
        self.assertIsNotNone(done["ended_at"])
        self.assertFalse(done.get("version"), "a cancelled step has no version")
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "slow")
        # Its task processes are gone (SIGTERM stops a task at the next tile).
        deadline = time.time() + 15
        while srv.task_pids() and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(srv.task_pids(), [], "task processes left after CANCELLED")

    def test_cancel_with_kill_signal(self):
        srv = self.start_server()
        step = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        srv.wait_running(step["id"], tiles_done=20)
        srv.cancel(step["id"], signal_name="KILL")
        done = srv.wait_step(step["id"], timeout=60)
        self.assertEqual(done["state"], "CANCELLED", done)
        ks.assert_nothing_published_soon(self, srv.catalog, "production", "slow")
        bad = srv.request("POST", "/v1/steps/%s/cancel" % step["id"], body={"signal": "HUP"})
        self.assertEqual(bad.status, 400, bad)

    def test_cancel_of_completed_step_changes_nothing(self):
        srv = self.start_server()
        done = srv.wait_step(srv.submit(ks.l7_definition("l7"))["id"])
        again = srv.cancel(done["id"])
        self.assertEqual(again["state"], "COMPLETED")
        self.assertEqual(again["version"], 1)
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])

    def test_logs_readable_while_running_and_by_offset(self):
        srv = self.start_server()
        step = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        srv.wait_running(step["id"], tiles_done=1)
        r = srv.request("GET", "/v1/steps/%s/logs?offset=0" % step["id"])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        self.assertIn("x-kiln-log-offset", r.headers)
        self.assertEqual(int(r.headers["x-kiln-log-offset"]), len(r.body))
        done = srv.wait_step(step["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        full, end = srv.logs(step["id"])
        self.assertEqual(end, len(full.encode("utf-8")))
        self.assertTrue(full.encode("utf-8").startswith(r.body),
                        "the log was rewritten, not appended to")
        self.assertTrue(full.strip(), "a completed step's log is empty")
        cut = len(full.encode("utf-8")) // 2
        rest, end2 = srv.logs(step["id"], offset=cut)
        self.assertEqual(rest.encode("utf-8"), full.encode("utf-8")[cut:])
        self.assertEqual(end2, end)
        tail, end3 = srv.logs(step["id"], offset=end)
        self.assertEqual((tail, end3), ("", end))

    def test_wait_returns_the_unfinished_step_at_its_timeout(self):
        # Concurrency 1: the second step stays PENDING behind the first, and
        # the first cannot end while one of its tasks is stopped. So neither
        # can end within the wait's timeout, whatever the machine's speed,
        # and /wait must answer with the step as it is at the timeout.
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        first = srv.submit(ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        second = srv.submit(ks.l7_definition("queued"))
        srv.pause_task_of(first["id"])
        for step, state in ((first, "RUNNING"), (second, "PENDING")):
            with self.subTest(state=state):
                s = srv.call("GET", "/v1/steps/%s/wait?timeout=1" % step["id"], timeout=30)
                self.assertEqual((s["id"], s["state"]), (step["id"], state), s)
                self.assertEqual(s["name"], step["name"])
                self.assertEqual(s["started_at"] is None, state == "PENDING", s)
                self.assertIsNone(s["ended_at"])
        for step in (first, second):
            srv.cancel(step["id"], signal_name="KILL")
        for step in (first, second):
            self.assertEqual(srv.wait_step(step["id"], timeout=60)["state"], "CANCELLED")

if __name__ == "__main__":
    unittest.main()

"""kiln serve's native API at its edges: tokens and environment isolation,
malformed and oversized requests, definitions refused at submit, the
unauthenticated probes. One server for the whole class (these requests are
cheap and leave no running work behind)."""

import json
import os
import re
import unittest

import kiln_server as ks
import kiln_test as kt

MAX_BODY = 64 * 1024


class ServeApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = ks.KilnServer(server={"max_body_bytes": MAX_BODY})
        try:
            cls.srv.start()
            # One finished production step for the isolation checks.
            cls.prod_step = cls.srv.wait_step(cls.srv.submit(ks.l7_definition("iso"))["id"])
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def assert_error(self, r, status, code, message_re=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"),
                        r.headers)
        err = r.json().get("error")
        self.assertIsInstance(err, dict, r)
        self.assertEqual(err.get("code"), code, r)
        self.assertIsInstance(err.get("message"), str)
        self.assertTrue(err["message"], "empty error message")
        if message_re:
            self.assertRegex(err["message"], re.compile(message_re, re.I))
        return err

    def post_step(self, body=None, raw=None, token=ks.PRODUCTION_TOKEN):
        return self.srv.request("POST", "/v1/steps", body=body, raw=raw, token=token)

    # --- probes ----------------------------------------------------------------

    def test_health_and_readiness_need_no_token(self):
        for path in ("/healthz", "/readyz"):
            r = self.srv.request("GET", path, token=None)
            self.assertEqual(r.status, 200, "%s: %r" % (path, r))

    def test_metrics_are_prometheus_text(self):
        r = self.srv.request("GET", "/metrics", token=None)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        text = r.text()
        self.assertRegex(text, r"(?m)^# TYPE kiln_\w+ (counter|gauge|histogram)$")
        # The step completed in setUpClass is counted under its environment.
        self.assertRegex(text, r'(?m)^kiln_steps\{[^}]*state="COMPLETED"[^}]*\} [1-9]')

    # --- tokens ------------------------------------------------------------------

    def test_missing_or_unknown_token_is_401(self):
        for token in (None, "", "not-a-token", ks.PRODUCTION_TOKEN + "x"):
            for method, path in (("GET", "/v1/steps"), ("GET", "/v1/cluster"),
                                 ("GET", "/v1/steps/" + self.prod_step["id"])):
                r = self.srv.request(method, path, token=token)
                self.assert_error(r, 401, "unauthorized")
            r = self.post_step({"name": "x", "action": {"ingest": ks.l7_definition("x")}},
                               token=token)
            self.assert_error(r, 401, "unauthorized")
        # A non-bearer scheme is no token either.
        r = self.srv.request("GET", "/v1/steps", token=None,
                             headers={"Authorization": "Basic " + ks.PRODUCTION_TOKEN})
        self.assert_error(r, 401, "unauthorized")

    def test_staging_cannot_see_production_steps(self):
        sid = self.prod_step["id"]
        unknown = "s-" + "0" * 13
        checks = [("GET", "/v1/steps/%s"), ("GET", "/v1/steps/%s/logs?offset=0"),
                  ("GET", "/v1/steps/%s/wait?timeout=1"), ("POST", "/v1/steps/%s/cancel")]
        for method, path in checks:
            body = {"signal": "TERM"} if method == "POST" else None
            other = self.srv.request(method, path % sid, body=body, token=ks.STAGING_TOKEN)
            never = self.srv.request(method, path % unknown, body=body, token=ks.STAGING_TOKEN)
            self.assert_error(other, 404, "not_found")
            self.assert_error(never, 404, "not_found")
            # Same answer as an id that never existed (modulo the id itself):
            # nothing tells a caller the step exists elsewhere.
            self.assertEqual(other.body.replace(sid.encode(), b"<id>"),
                             never.body.replace(unknown.encode(), b"<id>"), path)
            self.assertEqual(other.headers.get("content-type"), never.headers.get("content-type"))
        listed = self.srv.list_steps(token=ks.STAGING_TOKEN)
        self.assertNotIn(sid, [s["id"] for s in listed["steps"]])
        # The production step was left alone by the staging cancel.
        self.assertEqual(self.srv.describe(sid)["state"], "COMPLETED")

    def test_production_cannot_see_staging_steps(self):
        staging = self.srv.submit(ks.l7_definition("iso-staging"), token=ks.STAGING_TOKEN)
        self.assertEqual(staging["environment"], "staging")
        sid = staging["id"]
        r = self.srv.request("GET", "/v1/steps/" + sid)
        self.assert_error(r, 404, "not_found")
        r = self.srv.request("POST", "/v1/steps/%s/cancel" % sid, body={"signal": "KILL"})
        self.assert_error(r, 404, "not_found")
        r = self.srv.request("GET", "/v1/steps/%s/logs" % sid)
        self.assert_error(r, 404, "not_found")
        self.assertNotIn(sid, [s["id"] for s in self.srv.list_steps()["steps"]])
        done = self.srv.wait_step(sid, token=ks.STAGING_TOKEN)
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(ks.layer_versions(self.srv.catalog, "staging", "iso-staging"),
                         ["v000001"])
        self.assertEqual(ks.layer_versions(self.srv.catalog, "production", "iso-staging"), [])

    def test_unknown_step_and_path(self):
        self.assert_error(self.srv.request("GET", "/v1/steps/s-ZZZZZZZZZZZZZ"), 404, "not_found")
        self.assert_error(self.srv.request("GET", "/v1/steps/nonsense"), 404, "not_found")
        r = self.srv.request("GET", "/v1/nothing-here")
        self.assertEqual(r.status, 404, r)

    # --- bodies ------------------------------------------------------------------

    def test_malformed_json_is_400(self):
        for raw in (b"{", b"not json", b"[]", b'"a string"', b"", b'{"name": "x", "action": '):
            r = self.post_step(raw=raw)
            self.assert_error(r, 400, "bad_request")

    def test_unknown_fields_are_400_naming_the_field(self):
        body = {"name": "x", "action": {"ingest": ks.l7_definition("x")}, "colour": "blue"}
        self.assert_error(self.post_step(body), 400, "bad_request", "colour")
        body = {"name": "x", "action": {"shell": "rm -rf /"}}
        self.assert_error(self.post_step(body), 400, "bad_request", "shell")
        d = ks.l7_definition("x")
        d["output"]["tile_sise"] = 256
        body = {"name": "x", "action": {"ingest": d}}
        self.assert_error(self.post_step(body), 400, "bad_request", "tile_sise")

    def test_action_must_be_one_kiln_action(self):
        for action in ({}, {"command": ["kiln", "ingest"]}, {"ingest": "x.json"}, [],
                       {"ingest": ks.l7_definition("x"), "ingest_uri": "file:///x.json"}):
            r = self.post_step({"name": "x", "action": action})
            self.assert_error(r, 400, "bad_request")
        self.assert_error(self.post_step({"name": "x"}), 400, "bad_request", "action")

    def test_oversized_body_is_413(self):
        d = ks.l7_definition("big")
        d["output"]["band_names"] = ["b" * 1000] * (MAX_BODY // 1000 + 10)
        r = self.post_step({"name": "big", "action": {"ingest": d}})
        self.assert_error(r, 413, "payload_too_large")
        # The server is fine afterwards.
        self.assertEqual(self.srv.request("GET", "/healthz", token=None).status, 200)

    def test_invalid_definitions_are_refused_at_submit_with_the_reason(self):
        cases = [
            ("output.tile_size", lambda d: d["output"].update(tile_size=300)),
            ("layer", lambda d: d.update(layer="../escape")),
            ("sources", lambda d: d.update(sources=[])),
            ("zoom", lambda d: d["output"].update(zoom={"min": 9, "max": 3})),
            ("format", lambda d: d["output"].update(encoding={"format": "gif"})),
        ]
        before = self.srv.list_steps(limit=1000)["steps"]
        for field, mutate in cases:
            d = ks.l7_definition("bad")
            mutate(d)
            r = self.post_step({"name": "bad", "action": {"ingest": d}})
            self.assert_error(r, 400, "bad_request", re.escape(field))
        # A source that does not exist fails planning, which happens at submit.
        missing = os.path.join(self.srv.tmp, "no-such-scene.tif")
        r = self.post_step({"name": "bad",
                            "action": {"ingest": ks.l7_definition("bad", uri=missing)}})
        self.assert_error(r, 400, "bad_request", re.escape("no-such-scene.tif"))
        after = self.srv.list_steps(limit=1000)["steps"]
        self.assertEqual(len(after), len(before), "a refused step was stored")
        ks.assert_nothing_published_soon(self, self.srv.catalog, "production", "bad")

    def test_action_on_failure(self):
        body = {"name": "x", "action": {"ingest": ks.l7_definition("x")},
                "action_on_failure": "TERMINATE_CLUSTER"}
        self.assert_error(self.post_step(body), 400, "bad_request", "TERMINATE_CLUSTER")
        body["action_on_failure"] = "SOMETIMES"
        self.assert_error(self.post_step(body), 400, "bad_request")
        body["action_on_failure"] = "CANCEL_AND_WAIT"
        step = self.srv.submit(body["action"]["ingest"], action_on_failure="CANCEL_AND_WAIT")
        self.assertEqual(step["action_on_failure"], "CANCEL_AND_WAIT")
        self.assertEqual(self.srv.wait_step(step["id"])["state"], "COMPLETED")

    def test_ingest_uri_action(self):
        path = os.path.join(self.srv.tmp, "uri-def.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(ks.l7_definition("by-uri"), f)
        step = self.srv.call("POST", "/v1/steps",
                             {"name": "by-uri", "action": {"ingest_uri": "file://" + path}},
                             expect=201)
        done = self.srv.wait_step(step["id"])
        self.assertEqual(done["state"], "COMPLETED", done)
        self.assertEqual(done["layer"], "by-uri")

    def test_cluster_reports_workers_and_queue(self):
        c = self.srv.cluster()
        text = json.dumps(c)
        self.assertIn("workers", c)
        self.assertRegex(text, r'"concurrency": 2\b', "production's concurrency")
        staging = json.dumps(self.srv.cluster(token=ks.STAGING_TOKEN))
        self.assertRegex(staging, r'"concurrency": 1\b', "staging's concurrency")

    def test_workers_and_their_tasks_run_niced(self):
        # executor.nice defaults to 10 (make tsan's harness sets 0, see
        # kiln_server.py): workers run at it and their tasks lower still, so
        # a busy cluster leaves the API server (nice 0) the CPU.
        def nice(pid):
            with open("/proc/%d/stat" % pid, encoding="ascii") as f:
                return int(f.read().rsplit(")", 1)[1].split()[16])
        workers = self.srv.worker_pids()
        self.assertTrue(workers, "no worker processes")
        for pid in workers:
            self.assertEqual(nice(pid), self.srv.executor.get("nice", 10), "worker %d" % pid)
        self.assertEqual(nice(self.srv.proc.pid), os.getpriority(os.PRIO_PROCESS, 0),
                         "the server keeps its own priority")

    def test_environment_concurrency_can_change(self):
        env = self.srv.call("PUT", "/v1/environment", {"concurrency": 3})
        self.assertEqual(env.get("concurrency"), 3, env)
        try:
            for bad in (0, 257, "4"):
                r = self.srv.request("PUT", "/v1/environment", body={"concurrency": bad})
                self.assert_error(r, 400, "bad_request")
        finally:
            self.srv.call("PUT", "/v1/environment", {"concurrency": 2})


if __name__ == "__main__":
    unittest.main()

"""A hostile staging tenant against the API of a real `kiln serve` that runs
a production step at the same time (issue 14, "Smaller ones" and the
request-body, quota, /metrics and list-marker parts of "What to build").

Each attack is sent as staging and must be refused with a 4xx that names
the culprit; after it the server still answers /healthz, its process is the
same one, and production's step is untouched (it completes).

- A 200 KB body whose action.ingest is nested 100,000 levels deep (it used
  to kill the server with SIGSEGV); the same nesting in an EMR body.
- PUT /v1/environment {"concurrency": 1e400} (was a 500) and integers past
  int64; ModifyCluster StepConcurrencyLevel 2^63 (was echoed negative).
- Duplicate keys in an inline definition, a native body, an EMR body and an
  EMR definition file.
- /metrics without, or with a wrong, token when [server]
  metrics_token_sha256 is set; real Prometheus scraping with the token is
  test_serve_prometheus.py.
- List markers: opaque, valid only for the environment that got them,
  refused when altered, and carrying nothing but the tenant's own step id.
- Quotas: staging over its request rate gets 429 (native) and
  ThrottlingException (boto3), over its PENDING steps the same, while
  production goes on.
"""

import json
import unittest

import botocore.exceptions

import emr_helpers as eh
import kiln_server as ks

METRICS_TOKEN = "kiln-e2e-metrics-reader"
DEEP = 100000


def nested(depth):
    return "[" * depth + "]" * depth


def small_definition(layer):
    """A quick step: the Landsat scene up to zoom 7 only."""
    return ks.l7_definition(layer, max_zoom=7)


class HostileTenantMixin:
    srv = None
    production_step = None

    def assert_server_up(self):
        self.assertIsNone(self.srv.proc.poll(), "kiln serve exited\n" + self.srv.log_tail())
        r = self.srv.request("GET", "/healthz", token=None, timeout=10)
        self.assertEqual(r.status, 200, r)
        state = self.srv.describe(self.production_step)["state"]
        self.assertIn(state, ("PENDING", "RUNNING", "COMPLETED"), "production's step: " + state)

    def refused(self, method, path, raw, status=400, token=ks.STAGING_TOKEN):
        """Sends `raw` bytes as staging; asserts the status and returns the
        native error message."""
        r = self.srv.request(method, path, raw=raw, token=token)
        self.assertEqual(r.status, status, r)
        error = r.json()["error"]
        self.assertEqual(error["code"], {400: "bad_request", 429: "too_many_requests"}[status], r)
        return error["message"]


class HostileBodiesTest(HostileTenantMixin, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = eh.EmrServer(server={"metrics_token_sha256": [ks.sha256_hex(METRICS_TOKEN)]})
        cls.srv.metrics_token = METRICS_TOKEN
        try:
            cls.srv.start()
            cls.pid = cls.srv.proc.pid
            cls.production_step = cls.srv.submit(ks.l7_definition("prod"))["id"]
        except BaseException:
            cls.srv.close()
            raise
        cls.staging = cls.srv.client(eh.STAGING_KEY, max_attempts=1)
        cls.staging_cluster = eh.cluster_id("staging")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        self.assert_server_up()
        self.assertEqual(self.srv.proc.pid, self.pid, "the server was restarted")

    def staging_step_names(self):
        return [s["name"] for s in self.srv.list_steps(token=ks.STAGING_TOKEN, limit=1000)["steps"]]

    # --- depth ---------------------------------------------------------------------

    def test_definition_nested_100000_deep_is_refused_and_the_server_lives(self):
        body = ('{"name": "deep", "action": {"ingest": %s}}' % nested(DEEP)).encode()
        self.assertGreater(len(body), 199000)
        message = self.refused("POST", "/v1/steps", body)
        self.assertIn("JSON nested deeper than 64 levels", message)
        self.assertTrue(message.startswith("request body: action.ingest[0][0]"), message)
        # As deep as allowed, then one more: the limit is exact.
        ok_depth = 64 - 2  # the body's object and "action" hold the definition
        message = self.refused("POST", "/v1/steps", (
            '{"action": {"ingest": %s}}' % nested(ok_depth + 1)).encode())
        self.assertIn("nested deeper than 64", message)
        message = self.refused("POST", "/v1/steps", (
            '{"action": {"ingest": %s}}' % nested(ok_depth)).encode())
        self.assertNotIn("nested deeper", message)  # read, then refused as no definition
        self.assertNotIn("deep", self.staging_step_names())

    def test_emr_body_nested_100000_deep_is_a_serialization_exception(self):
        body = ('{"ClusterId": "%s", "StepIds": %s}' % (self.staging_cluster, nested(DEEP))).encode()
        r = eh.signed_call(self.srv, eh.STAGING_KEY, "ListSteps", body)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(eh.error_type(r), "SerializationException", r)
        self.assertIn("StepIds[0][0]", r.json()["Message"])
        self.assertIn("nested deeper than 64 levels", r.json()["Message"])

    # --- numbers -------------------------------------------------------------------

    def test_concurrency_out_of_range_is_a_400_naming_the_field(self):
        for raw, shown in ((b'{"concurrency": 1e400}', "number 1e400 is out of range"),
                           (b'{"concurrency": -1e400}', "number -1e400 is out of range"),
                           (b'{"concurrency": 9223372036854775808}',
                            "integer 9223372036854775808 is out of range"),
                           (b'{"concurrency": 18446744073709551616}',
                            "integer 18446744073709551616 is out of range")):
            message = self.refused("PUT", "/v1/environment", raw)
            self.assertEqual(message.split(" (")[0], "request body: concurrency: " + shown)
        for value in (0, 257, -9223372036854775808):
            message = self.refused("PUT", "/v1/environment", json.dumps({"concurrency": value}).encode())
            self.assertIn("concurrency", message)
            self.assertIn("1-256", message)
        env = self.srv.call("GET", "/v1/environment", token=ks.STAGING_TOKEN)
        self.assertEqual(env["concurrency"], 1)

    def test_worker_door_answers_wrong_typed_fields_with_a_400_naming_them(self):
        # Whoever holds the worker token (here: read from a worker's
        # environment, as a task that escaped would have to) still cannot
        # make the internal door answer 500 or crash.
        pid = self.srv.worker_pids()[0]
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        token = env[b"KILN_WORKER_TOKEN"].decode()
        cases = (
            ("/internal/v1/register", {"pid": "12", "slots": 1}, "pid: must be an integer"),
            ("/internal/v1/register", {"pid": 12, "slots": 2 ** 40}, "slots: must be within"),
            ("/internal/v1/lease", {"worker_id": 7, "free_slots": 1}, "worker_id: must be a string"),
            ("/internal/v1/heartbeat", {"worker_id": "w-X", "tasks": [5]},
             "tasks[0]: must be an object"),
            ("/internal/v1/heartbeat", {"worker_id": "w-X", "tasks": [{"attempt": "1"}]},
             "tasks[0].attempt: must be an integer"),
            ("/internal/v1/complete", {"worker_id": "w-X", "task_id": 1, "attempt": 2 ** 40},
             "attempt: must be"),
            ("/internal/v1/complete", {"worker_id": "w-X", "error": {"reason": 3}},
             "error.reason: must be a string"),
            ("/internal/v1/leave", [], "body must be a JSON object"),
        )
        for path, body, shown in cases:
            r = self.srv.request("POST", path, body=body, token=token)
            self.assertEqual(r.status, 400, (path, body, r))
            self.assertIn(shown, r.json()["error"]["message"], (path, body))
        self.assert_server_up()

    def test_step_concurrency_level_two_to_the_63_is_refused_not_echoed_negative(self):
        for raw, kind in ((b'{"ClusterId": "%s", "StepConcurrencyLevel": 9223372036854775808}',
                           "integer 9223372036854775808 is out of range"),
                          (b'{"ClusterId": "%s", "StepConcurrencyLevel": 1e400}',
                           "number 1e400 is out of range")):
            r = eh.signed_call(self.srv, eh.STAGING_KEY, "ModifyCluster",
                               raw.replace(b"%s", self.staging_cluster.encode()))
            self.assertEqual(r.status, 400, r)
            self.assertEqual(eh.error_type(r), "ValidationException", r)
            self.assertIn("StepConcurrencyLevel: " + kind, r.json()["Message"])
            self.assertNotIn("-9223372036854775808", r.text())
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.staging.modify_cluster(ClusterId=self.staging_cluster, StepConcurrencyLevel=257)
        self.assertEqual(eh.error_of(e.exception)[1], "ValidationException")
        self.assertIn("between 1 and 256", eh.error_of(e.exception)[2])
        level = self.staging.describe_cluster(ClusterId=self.staging_cluster)["Cluster"]
        self.assertEqual(level["StepConcurrencyLevel"], 1)

    # --- duplicate keys ------------------------------------------------------------

    def test_duplicate_keys_are_refused_with_their_path(self):
        uri = ks.l7_definition("dup")["sources"][0]["uri"]
        body = ('{"action": {"ingest": {"layer": "dup", "sources": [{"uri": %s, "bands": [3, 2, 1],'
                ' "uri": "/elsewhere.tif"}]}}}' % json.dumps(uri)).encode()
        message = self.refused("POST", "/v1/steps", body)
        self.assertIn('action.ingest.sources[0]: duplicate key "uri"', message)
        message = self.refused("POST", "/v1/steps", b'{"name": "a", "name": "b", "action": {}}')
        self.assertIn('duplicate key "name"', message)
        message = self.refused("PUT", "/v1/environment", b'{"concurrency": 1, "concurrency": 200}')
        self.assertIn('duplicate key "concurrency"', message)
        self.assertEqual(self.srv.call("GET", "/v1/environment", token=ks.STAGING_TOKEN)[
            "concurrency"], 1)
        self.assertNotIn("dup", self.staging_step_names())

    def test_duplicate_keys_in_emr_bodies_and_definition_files_are_refused(self):
        body = ('{"ClusterId": "%s", "ClusterId": "%s"}'
                % (self.staging_cluster, eh.cluster_id("production"))).encode()
        r = eh.signed_call(self.srv, eh.STAGING_KEY, "ListSteps", body)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(eh.error_type(r), "SerializationException", r)
        self.assertIn('duplicate key "ClusterId"', r.json()["Message"])

        path = eh.write_definition(self.srv, "dup", small_definition("dup"))
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace('"layer": "dup"', '"layer": "dup", "layer": "prod"', 1))
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            self.staging.add_job_flow_steps(JobFlowId=self.staging_cluster,
                                            Steps=[eh.kiln_ingest_step("dup", path)])
        status, code, message = eh.error_of(e.exception)
        self.assertEqual((status, code), (400, "ValidationException"), message)
        self.assertIn('duplicate key "layer"', message)

    # --- /metrics ------------------------------------------------------------------

    def test_metrics_needs_the_metrics_token(self):
        for token in (None, ks.STAGING_TOKEN, ks.PRODUCTION_TOKEN, METRICS_TOKEN + "x"):
            r = self.srv.request("GET", "/metrics", token=token)
            self.assertEqual(r.status, 401, (token, r))
            self.assertNotIn("kiln_steps", r.text())
            self.assertIn("metrics_token_sha256", r.json()["error"]["message"])
        self.assertIn('kiln_steps{environment="production"', self.srv.metrics())
        self.assertNotIn("/metrics needs no token", self.srv.log_tail(100000))

    # --- list markers --------------------------------------------------------------

    def submit_cancelled(self, n):
        ids = []
        for i in range(n):
            step = self.srv.submit(small_definition("s%d" % i), token=ks.STAGING_TOKEN)
            self.srv.cancel(step["id"], token=ks.STAGING_TOKEN, signal_name="KILL")
            ids.append(step["id"])
        return ids

    def test_list_markers_are_opaque_and_only_the_environments_own(self):
        ids = self.submit_cancelled(3)
        page = self.srv.list_steps(token=ks.STAGING_TOKEN, limit=1)
        marker = page["next_marker"]
        self.assertEqual([s["id"] for s in page["steps"]], [ids[2]])
        # What a tenant finds inside: its own step's id and a MAC, nothing
        # that counts the cluster's steps.
        version, cursor, mac = marker.split(".")
        self.assertEqual(version, "k1")
        self.assertEqual(bytes.fromhex(cursor).decode(), ids[2])
        self.assertRegex(mac, r"^[0-9a-f]{32}$")
        # The marker pages on for staging...
        rest = self.srv.list_steps(token=ks.STAGING_TOKEN, limit=5, marker=marker)
        self.assertEqual([s["id"] for s in rest["steps"]][:2], [ids[1], ids[0]])
        # ...and is refused to production, altered, or forged.
        forged = "k1.%s.%s" % (ids[1].encode().hex(), mac)
        flipped = marker[:-1] + ("0" if marker[-1] != "0" else "1")
        for token, m in ((ks.PRODUCTION_TOKEN, marker), (ks.STAGING_TOKEN, flipped),
                         (ks.STAGING_TOKEN, forged), (ks.STAGING_TOKEN, "p1.1"),
                         (ks.STAGING_TOKEN, "k1." + "00" * 1000 + "." + mac)):
            r = self.srv.request("GET", "/v1/steps?limit=1&marker=" + m, token=token)
            self.assertEqual(r.status, 400, (m, r))
            self.assertTrue(r.json()["error"]["message"].startswith("invalid marker"), r)

    def test_emr_list_steps_markers_are_the_environments_own(self):
        # EMR pages ListSteps by 50: 51 steps make a marker.
        ids = self.submit_cancelled(51)
        page = self.staging.list_steps(ClusterId=self.staging_cluster)
        self.assertEqual(len(page["Steps"]), 50)
        marker = page["Marker"]
        rest = self.staging.list_steps(ClusterId=self.staging_cluster, Marker=marker)
        self.assertEqual([s["Id"] for s in rest["Steps"]][0], ids[0])
        production = self.srv.client(eh.PRODUCTION_KEY, max_attempts=1)
        flipped = marker[:-1] + ("0" if marker[-1] != "0" else "1")
        for client, cluster, m in ((production, eh.cluster_id("production"), marker),
                                   (self.staging, self.staging_cluster, flipped)):
            with self.assertRaises(botocore.exceptions.ClientError) as e:
                client.list_steps(ClusterId=cluster, Marker=m)
            self.assertEqual(eh.error_of(e.exception)[:2], (400, "InvalidRequestException"))
            self.assertIn("is not valid", eh.error_of(e.exception)[2])

    # --- production ------------------------------------------------------------------

    def test_production_step_completes(self):
        step = self.srv.wait_step(self.production_step)
        self.assertEqual(step["state"], "COMPLETED", step)


class RequestRateQuotaTest(HostileTenantMixin, unittest.TestCase):
    BURST = 30

    def setUp(self):
        # Staging: 30 requests, then (practically) no refill during the test.
        self.srv = eh.EmrServer(self, environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 2, "priority": 10},
            {"name": "staging", "token": ks.STAGING_TOKEN, "concurrency": 1,
             "settings": {"requests_per_second": 0.001, "request_burst": self.BURST}},
        ])
        self.addCleanup(self.srv.close)
        self.srv.start()
        self.production_step = self.srv.submit(small_definition("prod"))["id"]

    def test_over_its_rate_staging_gets_429_and_throttling_and_production_goes_on(self):
        self.assertIn("/metrics needs no token", self.srv.log_tail(100000))
        served = 0
        for _ in range(self.BURST + 5):
            r = self.srv.request("GET", "/v1/environment", token=ks.STAGING_TOKEN)
            if r.status == 429:
                break
            self.assertEqual(r.status, 200, r)
            served += 1
        self.assertEqual(served, self.BURST)
        self.assertEqual(r.json()["error"]["code"], "too_many_requests", r)
        self.assertIn("environment 'staging' is over its request rate", r.json()["error"]["message"])
        self.assertEqual(r.headers.get("retry-after"), "1")
        message = self.refused("POST", "/v1/steps", json.dumps(
            {"action": {"ingest": small_definition("s")}}).encode(), status=429)
        self.assertIn("request rate", message)
        # The EMR door shares the environment's bucket.
        staging = self.srv.client(eh.STAGING_KEY, max_attempts=1)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            staging.describe_cluster(ClusterId=eh.cluster_id("staging"))
        self.assertEqual(eh.error_of(e.exception)[1], "ThrottlingException")
        self.assertIn("request rate", eh.error_of(e.exception)[2])
        # Production is served as before, at both doors.
        self.assertEqual(self.srv.call("GET", "/v1/environment")["name"], "production")
        production = self.srv.client(eh.PRODUCTION_KEY, max_attempts=1)
        cluster = production.describe_cluster(ClusterId=eh.cluster_id("production"))["Cluster"]
        self.assertEqual(cluster["Id"], eh.cluster_id("production"))
        self.assert_server_up()
        self.assertEqual(self.srv.wait_step(self.production_step)["state"], "COMPLETED")


class PendingStepsQuotaTest(HostileTenantMixin, unittest.TestCase):
    def setUp(self):
        self.srv = eh.EmrServer(self, environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 2, "priority": 10},
            {"name": "staging", "token": ks.STAGING_TOKEN, "concurrency": 1,
             "settings": {"max_pending_steps": 1}},
        ])
        self.addCleanup(self.srv.close)
        self.srv.start()
        self.production_step = self.srv.submit(small_definition("prod"))["id"]

    def test_over_its_pending_steps_staging_gets_429_and_throttling(self):
        # Staging's one RUNNING step is held (its task stopped), so the next
        # stays PENDING and the one after is over the quota.
        running = self.srv.submit(ks.l7_definition("held", max_zoom=13),
                                  token=ks.STAGING_TOKEN)["id"]
        self.srv.wait_running(running, tiles_done=0, token=ks.STAGING_TOKEN)
        self.srv.pause_task_of(running)
        pending = self.srv.submit(small_definition("waits"), token=ks.STAGING_TOKEN)["id"]
        self.assertEqual(self.srv.describe(pending, token=ks.STAGING_TOKEN)["state"], "PENDING")

        body = json.dumps({"action": {"ingest": small_definition("over")}}).encode()
        message = self.refused("POST", "/v1/steps", body, status=429)
        self.assertIn("environment 'staging' has 1 PENDING steps", message)
        self.assertIn("max_pending_steps", message)
        path = eh.write_definition(self.srv, "over", small_definition("over"))
        staging = self.srv.client(eh.STAGING_KEY, max_attempts=1)
        with self.assertRaises(botocore.exceptions.ClientError) as e:
            staging.add_job_flow_steps(JobFlowId=eh.cluster_id("staging"),
                                       Steps=[eh.kiln_ingest_step("over", path)])
        self.assertEqual(eh.error_of(e.exception)[1], "ThrottlingException")
        self.assertIn("PENDING steps", eh.error_of(e.exception)[2])
        self.assertEqual(len(self.srv.list_steps(token=ks.STAGING_TOKEN)["steps"]), 2)

        # Production's own quota is untouched.
        self.srv.submit(small_definition("prod2"))
        # Room again once the PENDING step is gone.
        self.srv.cancel(pending, token=ks.STAGING_TOKEN)
        self.srv.submit(small_definition("fits"), token=ks.STAGING_TOKEN)
        self.srv.cancel(running, token=ks.STAGING_TOKEN, signal_name="KILL")
        self.assert_server_up()
        self.assertEqual(self.srv.wait_step(self.production_step)["state"], "COMPLETED")


if __name__ == "__main__":
    unittest.main()

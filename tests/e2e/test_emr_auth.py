"""What the EMR Step API endpoint of `kiln serve` refuses (issue 5), and
that a refused call submits nothing: SigV4 failures (wrong secret, unknown
key, tampered body, stale or future date, wrong scope, no Authorization),
another environment's cluster, steps Kiln does not run, malformed JSON,
unknown operations, and per-key throttling.

Raw requests are signed with botocore's own SigV4 signer and sent with
http.client, so a body can be changed after signing and a date fixed.
"Nothing submitted" is read from the native API (/v1/steps of both
environments) and the catalog.
"""

import datetime
import json
import os
import time
import unittest

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions

import emr_helpers as emr
import kiln_server as ks
import kiln_test as kt

PROD = emr.PRODUCTION_KEY
STAGING = emr.STAGING_KEY
PROD_CLUSTER = emr.cluster_id("production")
STAGING_CLUSTER = emr.cluster_id("staging")
UNKNOWN_CLUSTER = "j-0000000000000"

TINY_ZOOM = 6
SLOW_ZOOM = 17


class EmrAuthTest(unittest.TestCase):
    def start_server(self, **kw):
        srv = emr.EmrServer(self, **kw)
        self.addCleanup(srv.close)
        srv.start()
        self.tiny = emr.write_definition(srv, "tiny",
                                         ks.l7_definition("tiny", max_zoom=TINY_ZOOM))
        return srv

    def add_body(self, path=None, cluster=PROD_CLUSTER, **step_kw):
        return {"JobFlowId": cluster,
                "Steps": [emr.kiln_ingest_step("tiny", path or self.tiny, **step_kw)]}

    def assert_nothing_submitted(self, srv, before=None):
        """Neither environment has a step beyond `before` (production ids),
        and the layer the refused calls named was not written."""
        self.assertEqual(srv.step_ids(ks.PRODUCTION_TOKEN), before or [],
                         "a refused call submitted a step\n" + srv.log_tail())
        self.assertEqual(srv.step_ids(ks.STAGING_TOKEN), [])
        for env in ("production", "staging"):
            self.assertFalse(os.path.exists(kt.layer_dir(srv.catalog, env, "tiny")),
                             "a refused call wrote into the catalog")

    def assert_error(self, response, status, error_type, message_part=None):
        self.assertEqual((response.status, emr.error_type(response)), (status, error_type),
                         response)
        self.assertEqual(response.headers.get("content-type"), emr.CONTENT_TYPE)
        self.assertTrue(response.headers.get("x-amzn-requestid"), response.headers)
        if message_part is not None:
            self.assertIn(message_part, response.json().get("Message", ""))

    def client_error(self, call, **kw):
        """(HTTP status, error code, message) of a boto3 call that must fail."""
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            call(**kw)
        return emr.error_of(caught.exception)

    # --- the control: correctly signed requests go through -----------------------------

    def test_correctly_signed_raw_requests_are_accepted(self):
        srv = self.start_server()
        r = emr.signed_call(srv, PROD, "DescribeCluster", {"ClusterId": PROD_CLUSTER})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), emr.CONTENT_TYPE)
        self.assertTrue(r.headers.get("x-amzn-requestid"))
        self.assertEqual(r.json()["Cluster"]["Id"], PROD_CLUSTER)
        # A client clock 5 minutes behind is within the allowed skew.
        r = emr.signed_call(srv, PROD, "DescribeCluster", {"ClusterId": PROD_CLUSTER},
                            when=emr.utc_now() - datetime.timedelta(minutes=5))
        self.assertEqual(r.status, 200, r)
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", self.add_body())
        self.assertEqual(r.status, 200, r)
        [step_id] = r.json()["StepIds"]
        self.assertEqual(srv.step_ids(), [step_id])
        self.assertEqual(srv.wait_step(step_id)["state"], "COMPLETED")

    # --- SigV4 ------------------------------------------------------------------------

    def test_wrong_secret_is_invalid_signature(self):
        srv = self.start_server()
        wrong = emr.AwsKey(PROD.id, PROD.secret + "x")
        client = srv.client(wrong, max_attempts=1)
        status, code, _ = self.client_error(client.add_job_flow_steps, **self.add_body())
        self.assertEqual((status, code), (400, "InvalidSignatureException"))
        rc, _, err = emr.aws(srv, wrong, "emr", "add-steps", "--cluster-id", PROD_CLUSTER,
                             "--steps", "Type=CUSTOM_JAR,Name=tiny,Jar=command-runner.jar,"
                             "Args=[kiln,ingest,--definition,%s]" % self.tiny, expect_rc=None)
        self.assertNotEqual(rc, 0)
        self.assertIn("InvalidSignatureException", err)
        # The staging secret with the production key id is just as wrong.
        r = emr.signed_call(srv, emr.AwsKey(PROD.id, STAGING.secret), "AddJobFlowSteps",
                            self.add_body())
        self.assert_error(r, 400, "InvalidSignatureException")
        self.assert_nothing_submitted(srv)

    def test_unknown_access_key_is_unrecognized_client(self):
        srv = self.start_server()
        stranger = emr.AwsKey("AKIAUNKNOWNKEY000000", PROD.secret)
        client = srv.client(stranger, max_attempts=1)
        status, code, _ = self.client_error(client.add_job_flow_steps, **self.add_body())
        self.assertEqual((status, code), (400, "UnrecognizedClientException"))
        status, code, _ = self.client_error(client.list_clusters)
        self.assertEqual((status, code), (400, "UnrecognizedClientException"))
        self.assert_nothing_submitted(srv)

    def test_tampered_request_is_invalid_signature(self):
        srv = self.start_server()
        other = emr.write_definition(srv, "other", ks.l7_definition("other", max_zoom=TINY_ZOOM))
        body = self.add_body()

        # The definition path changed in flight.
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body,
                            tamper=lambda b: b.replace(self.tiny.encode(), other.encode()))
        self.assert_error(r, 400, "InvalidSignatureException")
        # One byte of whitespace added.
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body, tamper=lambda b: b + b" ")
        self.assert_error(r, 400, "InvalidSignatureException")
        # A signed harmless call turned into AddJobFlowSteps (the target is signed).
        headers = emr.signed_headers(srv, PROD, "DescribeCluster",
                                     b'{"ClusterId": "%s"}' % PROD_CLUSTER.encode())
        headers["X-Amz-Target"] = "ElasticMapReduce.AddJobFlowSteps"
        r = emr.raw_post(srv, headers, b'{"ClusterId": "%s"}' % PROD_CLUSTER.encode())
        self.assert_error(r, 400, "InvalidSignatureException")
        self.assert_nothing_submitted(srv)
        self.assertFalse(os.path.exists(kt.layer_dir(srv.catalog, "production", "other")))

    def test_stale_or_future_date_is_refused(self):
        srv = self.start_server()
        now = emr.utc_now()
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", self.add_body(),
                            when=now - datetime.timedelta(minutes=20))
        self.assert_error(r, 400, "InvalidSignatureException", "Signature expired")
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", self.add_body(),
                            when=now + datetime.timedelta(minutes=20))
        self.assert_error(r, 400, "InvalidSignatureException")
        # A signature captured a day ago and replayed.
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", self.add_body(),
                            when=now - datetime.timedelta(days=1))
        self.assert_error(r, 400, "InvalidSignatureException", "Signature expired")
        self.assert_nothing_submitted(srv)

    def test_missing_authorization_is_missing_authentication_token(self):
        srv = self.start_server()
        body = b'{"ClusterId": "%s"}' % PROD_CLUSTER.encode()
        unsigned = {"X-Amz-Target": "ElasticMapReduce.ListSteps",
                    "Content-Type": emr.CONTENT_TYPE}
        self.assert_error(emr.raw_post(srv, unsigned, body), 403,
                          "MissingAuthenticationTokenException")
        # A signed request with its Authorization header dropped.
        headers = emr.signed_headers(srv, PROD, "AddJobFlowSteps",
                                     json.dumps(self.add_body()).encode())
        del headers["Authorization"]
        r = emr.raw_post(srv, headers, json.dumps(self.add_body()).encode())
        self.assert_error(r, 403, "MissingAuthenticationTokenException")
        # A native API bearer token is not an EMR credential.
        headers = dict(unsigned, Authorization="Bearer " + ks.PRODUCTION_TOKEN)
        r = emr.raw_post(srv, headers, body)
        self.assertEqual(r.status, 400, r)
        self.assertIn(emr.error_type(r), ("IncompleteSignatureException",
                                          "InvalidSignatureException"))
        self.assert_nothing_submitted(srv)

    def test_wrong_credential_scope_is_invalid_signature(self):
        srv = self.start_server()
        body = self.add_body()
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body, region="eu-west-1")
        self.assert_error(r, 400, "InvalidSignatureException", "region")
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body, service="s3")
        self.assert_error(r, 400, "InvalidSignatureException", "elasticmapreduce")
        self.assert_nothing_submitted(srv)

    # --- what a signature must cover, and only once (issue 14) ----------------------------

    def test_a_target_outside_the_signature_is_refused(self):
        """Issue 14 finding 5: a ListSteps request signed over host and
        x-amz-date only, re-sent with X-Amz-Target CancelSteps, cancelled a
        step. Every header the endpoint acts on must now be signed."""
        srv = self.start_server()
        slow = emr.write_definition(srv, "slow", ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        [step] = srv.client(PROD).add_job_flow_steps(
            JobFlowId=PROD_CLUSTER, Steps=[emr.kiln_ingest_step("slow", slow)])["StepIds"]
        srv.wait_running(step)
        body = json.dumps({"ClusterId": PROD_CLUSTER, "StepIds": [step]}).encode()
        # Signed by botocore's own signer, which signs every header present:
        # present only Host (and the X-Amz-Date it adds) at signing time.
        request = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + "/", data=body)
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(PROD.id, PROD.secret),
                                emr.SERVICE, emr.REGION).add_auth(request)
        headers = dict(request.headers.items())
        self.assertIn("SignedHeaders=host;x-amz-date,", headers["Authorization"])
        for target in ("CancelSteps", "ListSteps"):
            with self.subTest(target=target):
                forged = dict(headers, **{"X-Amz-Target": "ElasticMapReduce." + target,
                                          "Content-Type": emr.CONTENT_TYPE})
                r = emr.raw_post(srv, forged, body)
                self.assert_error(r, 400, "InvalidSignatureException",
                                  "not signed: content-type, x-amz-target.")
        # Content-Type unsigned alone is refused just as well.
        request = botocore.awsrequest.AWSRequest(
            method="POST", url=srv.url + "/", data=body,
            headers={"X-Amz-Target": "ElasticMapReduce.CancelSteps"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(PROD.id, PROD.secret),
                                emr.SERVICE, emr.REGION).add_auth(request)
        r = emr.raw_post(srv, dict(request.headers.items(), **{"Content-Type": emr.CONTENT_TYPE}),
                         body)
        self.assert_error(r, 400, "InvalidSignatureException", "not signed: content-type.")
        # The step was not cancelled: it is still running.
        self.assertEqual(srv.describe(step)["state"], "RUNNING")
        self.assert_nothing_submitted(srv, before=[step])
        srv.cancel(step, signal_name="KILL")
        srv.wait_step(step, timeout=60)

    def test_a_byte_exact_replay_is_refused(self):
        """Issue 14 finding 5: re-sending the exact bytes of a signed
        AddJobFlowSteps created a second step. A signature that changed
        something is accepted once within the clock-skew window."""
        srv = self.start_server()
        body = json.dumps(self.add_body()).encode()
        headers = emr.signed_headers(srv, PROD, "AddJobFlowSteps", body)
        first = emr.raw_post(srv, headers, body)
        self.assertEqual(first.status, 200, first)
        [step] = first.json()["StepIds"]
        for _ in range(3):
            r = emr.raw_post(srv, headers, body)
            self.assert_error(r, 400, "InvalidSignatureException", "already")
        self.assertEqual(srv.step_ids(), [step])
        # The replay of a CancelSteps is refused the same way.
        cancel = json.dumps({"ClusterId": PROD_CLUSTER, "StepIds": [step]}).encode()
        cancel_headers = emr.signed_headers(srv, PROD, "CancelSteps", cancel)
        self.assertEqual(emr.raw_post(srv, cancel_headers, cancel).status, 200)
        self.assert_error(emr.raw_post(srv, cancel_headers, cancel), 400,
                          "InvalidSignatureException", "already")
        srv.wait_step(step, timeout=60)
        # The same call signed again (at another time, so another signature)
        # is a new request and goes through.
        again = emr.signed_call(srv, PROD, "AddJobFlowSteps", self.add_body(),
                                when=emr.utc_now() - datetime.timedelta(minutes=5))
        self.assertEqual(again.status, 200, again)
        self.assertEqual(sorted(srv.step_ids()), sorted([step] + again.json()["StepIds"]))
        srv.wait_step(again.json()["StepIds"][0], timeout=60)
        # Reads are answered however often they come: botocore signs with
        # one-second resolution and no nonce, so a client polling faster
        # (an Airflow sensor, a boto3 loop) sends identical signed reads.
        describe = json.dumps({"ClusterId": PROD_CLUSTER}).encode()
        describe_headers = emr.signed_headers(srv, PROD, "DescribeCluster", describe)
        for _ in range(3):
            self.assertEqual(emr.raw_post(srv, describe_headers, describe).status, 200)

    # --- environments ------------------------------------------------------------------

    def test_staging_keys_against_production_cluster(self):
        srv = self.start_server()
        prod = srv.client(PROD)
        slow = emr.write_definition(srv, "slow", ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        [prod_step] = prod.add_job_flow_steps(
            JobFlowId=PROD_CLUSTER, Steps=[emr.kiln_ingest_step("slow", slow)])["StepIds"]
        srv.wait_running(prod_step)
        staging = srv.client(STAGING, max_attempts=1)

        # The production cluster id answers exactly like one that never existed.
        for op, kw in (("describe_step", {"StepId": prod_step}), ("list_steps", {}),
                       ("describe_cluster", {}),
                       ("cancel_steps", {"StepIds": [prod_step]}),
                       ("add_job_flow_steps", {"Steps": [emr.kiln_ingest_step("tiny",
                                                                              self.tiny)]})):
            with self.subTest(op=op):
                id_arg = "JobFlowId" if op == "add_job_flow_steps" else "ClusterId"
                call = getattr(staging, op)
                got = self.client_error(call, **dict(kw, **{id_arg: PROD_CLUSTER}))
                unknown = self.client_error(call, **dict(kw, **{id_arg: UNKNOWN_CLUSTER}))
                self.assertEqual(got[:2], unknown[:2])
                self.assertEqual(got[2].replace(PROD_CLUSTER, UNKNOWN_CLUSTER), unknown[2])
                expected = ("ValidationException" if op == "add_job_flow_steps"
                            else "InvalidRequestException")
                self.assertEqual(got[:2], (400, expected), got)

        # Through its own cluster, production's step id is unknown too.
        got = self.client_error(staging.describe_step, ClusterId=STAGING_CLUSTER,
                                StepId=prod_step)
        unknown = self.client_error(staging.describe_step, ClusterId=STAGING_CLUSTER,
                                    StepId="s-0000000000000")
        self.assertEqual(got[:2], (400, "InvalidRequestException"), got)
        self.assertEqual(got[2].replace(prod_step, "s-0000000000000"), unknown[2])
        [info] = staging.cancel_steps(ClusterId=STAGING_CLUSTER,
                                      StepIds=[prod_step])["CancelStepsInfoList"]
        self.assertEqual((info["StepId"], info["Status"]), (prod_step, "FAILED"), info)
        self.assertEqual(staging.list_steps(ClusterId=STAGING_CLUSTER)["Steps"], [])

        # Production's step ran on undisturbed; staging got nothing.
        self.assertEqual(prod.describe_step(ClusterId=PROD_CLUSTER, StepId=prod_step)
                         ["Step"]["Status"]["State"], "RUNNING")
        self.assertEqual(srv.describe(prod_step)["state"], "RUNNING")
        self.assert_nothing_submitted(srv, before=[prod_step])
        srv.cancel(prod_step, signal_name="KILL")
        srv.wait_step(prod_step, timeout=60)

    # --- steps Kiln does not run ----------------------------------------------------------

    def test_terminate_cluster_action_on_failure_is_refused(self):
        srv = self.start_server()
        client = srv.client(PROD)
        for action in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
            with self.subTest(action=action):
                status, code, message = self.client_error(
                    client.add_job_flow_steps,
                    **self.add_body(action_on_failure=action))
                self.assertEqual((status, code), (400, "ValidationException"), message)
                self.assertIn(action, message)
                self.assertIn("CONTINUE", message, "the message says what is accepted")
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps",
                            self.add_body(action_on_failure="EXPLODE"))
        self.assert_error(r, 400, "ValidationException")
        self.assert_nothing_submitted(srv)

    def test_unsupported_jar_or_args_is_refused_with_what_is_accepted(self):
        srv = self.start_server()
        client = srv.client(PROD)
        marker = os.path.join(srv.tmp, "shell-ran")
        rf = lambda *tail: ["/usr/bin/spark-submit", "--master", "yarn", "--class",  # noqa: E731
                            emr.RF_INGEST_CLASS, emr.RF_JAR_URI, "-t", "--overwrite"] + list(tail)
        cases = [
            # (Jar, Args, what the message must contain)
            ("s3://my-bucket/jars/app.jar", ["--input", self.tiny], "script-runner.jar"),
            ("command-runner.jar", ["bash", "-c", "touch " + marker], "command-runner.jar"),
            ("command-runner.jar", ["spark-submit", "--class", "org.example.WordCount",
                                    "s3://b/wc.jar"], emr.RF_INGEST_CLASS),
            ("command-runner.jar", ["kiln", "serve", "--config", "/etc/kiln.toml"], "ingest"),
            ("command-runner.jar", ["kiln", "ingest", "--definition", self.tiny,
                                    "--catalog", "/tmp/elsewhere"], "catalog"),
            ("command-runner.jar", ["kiln", "ingest", "--definition", "s3://bucket/def.json"],
             "not supported"),
            ("command-runner.jar", ["kiln", "ingest", "--definition", "defs/tiny.json"],
             "relative"),
            ("command-runner.jar", ["kiln", "ingest"], "--definition"),
            (emr.RF_SCRIPT_RUNNER, rf("-s", "scene", "-j", "s3://rf-bucket/ingest.json"),
             "not supported"),
            (emr.RF_SCRIPT_RUNNER, rf("-s", "scene", "-j", "file://" + self.tiny,
                                      "-b", "s3://status-bucket"), "DescribeStep"),
            (emr.RF_SCRIPT_RUNNER, rf("-j", "file://" + self.tiny), "-s"),
        ]
        for jar, args, part in cases:
            with self.subTest(jar=jar, args=args):
                step = {"Name": "tiny", "HadoopJarStep": {"Jar": jar, "Args": args}}
                status, code, message = self.client_error(
                    client.add_job_flow_steps, JobFlowId=PROD_CLUSTER, Steps=[step])
                self.assertEqual((status, code), (400, "ValidationException"), message)
                self.assertIn(part, message)

        # A definition file that does not exist (a shell would run the tail).
        missing = self.tiny + "; touch " + marker
        status, code, message = self.client_error(
            client.add_job_flow_steps, JobFlowId=PROD_CLUSTER,
            Steps=[emr.kiln_ingest_step("tiny", missing)])
        self.assertEqual((status, code), (400, "ValidationException"), message)
        self.assertIn(missing, message, "the message names the file")
        # MainClass and Properties have no meaning for Kiln's ingest.
        for extra in ({"MainClass": "org.example.Main"},
                      {"Properties": [{"Key": "spark.executor.memory", "Value": "4g"}]}):
            step = emr.kiln_ingest_step("tiny", self.tiny)
            step["HadoopJarStep"].update(extra)
            status, code, message = self.client_error(
                client.add_job_flow_steps, JobFlowId=PROD_CLUSTER, Steps=[step])
            self.assertEqual((status, code), (400, "ValidationException"), message)
        # All or nothing: a good step in the same call is not added either.
        status, code, message = self.client_error(
            client.add_job_flow_steps, JobFlowId=PROD_CLUSTER,
            Steps=[emr.kiln_ingest_step("tiny", self.tiny),
                   {"Name": "bad", "HadoopJarStep": {"Jar": "s3://b/app.jar"}}])
        self.assertEqual((status, code), (400, "ValidationException"), message)
        self.assertIn("Steps[1]", message)
        # Only a task of a step could run an argument, and no step exists
        # (a submit is in the store before its answer). A scheduler pass
        # that began after the last call would have started one: none did.
        self.assert_nothing_submitted(srv)
        srv.wait_for_scheduler_passes()
        self.assertEqual(srv.metric("kiln_tasks", {"state": "running"}), 0)
        self.assertFalse(os.path.exists(marker), "an argument reached a shell")
        self.assert_nothing_submitted(srv)

    # --- requests that are not EMR calls -----------------------------------------------------

    def test_malformed_json_is_serialization_exception(self):
        srv = self.start_server()
        for body in (b"{not json", b'{"JobFlowId": "j-', b"[]", b'"AddJobFlowSteps"',
                     b'{"JobFlowId": 7, "Steps": []}',
                     b'{"JobFlowId": "%s", "Steps": "kiln ingest"}' % PROD_CLUSTER.encode()):
            with self.subTest(body=body):
                r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body)
                self.assert_error(r, 400, "SerializationException")
        # Well-formed JSON missing a required member, or with an unknown one.
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", {"JobFlowId": PROD_CLUSTER})
        self.assert_error(r, 400, "ValidationException", "Steps")
        body = self.add_body()
        body["Steps"][0]["HadoopJarStep"]["Argz"] = ["kiln"]
        r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body)
        self.assert_error(r, 400, "ValidationException", "Argz")
        self.assert_nothing_submitted(srv)

    def test_unknown_operation(self):
        srv = self.start_server()
        client = srv.client(PROD, max_attempts=1)
        status, code, _ = self.client_error(client.terminate_job_flows,
                                            JobFlowIds=[PROD_CLUSTER])
        self.assertEqual((status, code), (400, "UnknownOperationException"))
        status, code, _ = self.client_error(
            client.run_job_flow, Name="new", Instances={"InstanceCount": 1})
        self.assertEqual((status, code), (400, "UnknownOperationException"))
        # The cluster is still there.
        self.assertEqual([c["Id"] for c in client.list_clusters()["Clusters"]], [PROD_CLUSTER])
        self.assert_nothing_submitted(srv)

    # --- throttling -------------------------------------------------------------------------

    def test_throttling_per_key(self):
        srv = self.start_server(emr={"requests_per_second": 2, "burst": 2})
        describe = {"ClusterId": PROD_CLUSTER}

        def drain():
            """Calls DescribeCluster with the production key until it is
            throttled; checks no more calls got through than the burst plus
            what the rate refilled meanwhile. Returns the throttled answer."""
            # The bound is the limiter's contract, burst + rate x time, and
            # the time is the test's own: it spans the server's window (from
            # before the first call to after the last), so a slow machine
            # only loosens the bound; it never fails a correct limiter.
            t0, passed = time.monotonic(), 0
            for _ in range(50):
                r = emr.signed_call(srv, PROD, "DescribeCluster", describe)
                if r.status != 200:
                    break
                passed += 1
            self.assertLessEqual(passed, 2 + 2 * (time.monotonic() - t0) + 1,
                                 "more calls went through than burst 2 at 2/s allows")
            return r

        # Whatever the bucket holds now (start-up may have used some), calls
        # go through until it is empty, then are throttled.
        r = drain()
        self.assert_error(r, 400, "ThrottlingException", "Rate exceeded")
        # Another key has its own bucket.
        r = emr.signed_call(srv, STAGING, "DescribeCluster", {"ClusterId": STAGING_CLUSTER})
        self.assertEqual(r.status, 200, r)

        # A throttled AddJobFlowSteps adds nothing: exactly the steps of the
        # calls that were answered 200 exist. (The bucket refills continuously,
        # so a call is sure to be throttled only in a loop like this one.)
        # Each call is another step (a name of its own): byte-identical
        # AddJobFlowSteps calls within one second would be one signature,
        # refused as a replay after the first.
        accepted = []
        for i in range(50):
            body = self.add_body()
            body["Steps"][0]["Name"] = "tiny-%d" % i
            r = emr.signed_call(srv, PROD, "AddJobFlowSteps", body)
            if r.status != 200:
                break
            accepted += r.json()["StepIds"]
        self.assert_error(r, 400, "ThrottlingException")
        self.assertEqual(sorted(srv.step_ids()), sorted(accepted))
        self.assertEqual(srv.step_ids(ks.STAGING_TOKEN), [])

        # boto3 without retries sees the error...
        no_retry = srv.client(PROD, max_attempts=1)
        for _ in range(50):
            try:
                no_retry.describe_cluster(**describe)
            except botocore.exceptions.ClientError as e:
                self.assertEqual(emr.error_of(e)[:2], (400, "ThrottlingException"))
                break
        else:
            self.fail("50 calls in a row at burst 2, 2/s, and none throttled")
        # ...and with its default retries it backs off and gets through.
        retrying = srv.client(PROD)
        retries = 0
        for _ in range(6):
            out = retrying.describe_cluster(**describe)
            self.assertEqual(out["Cluster"]["Id"], PROD_CLUSTER)
            retries += out["ResponseMetadata"]["RetryAttempts"]
        self.assertGreater(retries, 0, "6 calls at once, and none was throttled then retried")
        # Throttling is not for ever: once throttled, the key gets through
        # again as the bucket refills (a refused call takes no token, so
        # polling does not delay it).
        self.assert_error(drain(), 400, "ThrottlingException")
        deadline = time.monotonic() + 30
        while True:
            r = emr.signed_call(srv, PROD, "DescribeCluster", describe)
            if r.status == 200 or time.monotonic() >= deadline:
                break
            self.assert_error(r, 400, "ThrottlingException")
            time.sleep(0.05)
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()

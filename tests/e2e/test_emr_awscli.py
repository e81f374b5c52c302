"""The real `aws` CLI (Debian's awscli) drives Kiln through the EMR Step API
endpoint of `kiln serve` (issue 5): `aws emr add-steps` with
command-runner.jar and `kiln ingest --definition`, `list-steps`,
`describe-step`, `cancel-steps`, `wait step-complete`, with nothing but
--endpoint-url and an environment's access key pair changed.

The CLI's step-complete waiter polls every 30 s (its model's delay, not
configurable from the command line). One test starts it right after
add-steps: depending on how fast the CLI starts, its first DescribeStep sees
the step still running (and the wait lasts ~30 s more) or already
COMPLETED. The other tests wait with the native API first.
"""

import os
import unittest

import emr_helpers as emr
import kiln_server as ks
import kiln_test as kt

PROD = emr.PRODUCTION_KEY
STAGING = emr.STAGING_KEY
PROD_CLUSTER = emr.cluster_id("production")

# Low zooms keep a step to a second or two; SLOW_ZOOM makes one that runs
# long enough to be seen RUNNING and cancelled (as in test_serve_steps).
MAX_ZOOM = 10
SLOW_ZOOM = 17

# The awscli's exit codes: 254 a service error, 255 a waiter that failed.
RC_SERVICE_ERROR = 254
RC_WAITER_FAILED = 255


def step_arg(name, definition_path, action_on_failure="CONTINUE"):
    """One --steps shorthand item running `kiln ingest` via command-runner.jar."""
    return ("Type=CUSTOM_JAR,Name=%s,ActionOnFailure=%s,Jar=command-runner.jar,"
            "Args=[kiln,ingest,--definition,%s]" % (name, action_on_failure, definition_path))


def stop_process(proc):
    """Kills a client process the test started, if still running, and reaps it."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


class AwsCliTest(unittest.TestCase):
    def start_server(self, **kw):
        srv = emr.EmrServer(self, **kw)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def add_steps(self, srv, *steps, key=PROD, cluster=PROD_CLUSTER):
        _, out, _ = emr.aws(srv, key, "emr", "add-steps", "--cluster-id", cluster,
                            "--steps", *steps)
        ids = out["StepIds"]
        for i in ids:
            self.assertRegex(i, emr.STEP_ID_PATTERN)
        return ids

    def describe(self, srv, step_id, key=PROD, cluster=PROD_CLUSTER):
        _, out, _ = emr.aws(srv, key, "emr", "describe-step", "--cluster-id", cluster,
                            "--step-id", step_id)
        return out["Step"]

    def list_steps(self, srv, *args, key=PROD, cluster=PROD_CLUSTER):
        _, out, _ = emr.aws(srv, key, "emr", "list-steps", "--cluster-id", cluster, *args)
        return out["Steps"]

    def test_each_environment_is_its_own_cluster(self):
        srv = self.start_server()
        _, out, _ = emr.aws(srv, PROD, "emr", "list-clusters")
        clusters = out["Clusters"]
        self.assertEqual([c["Id"] for c in clusters], [PROD_CLUSTER], out)
        self.assertRegex(PROD_CLUSTER, emr.CLUSTER_ID_PATTERN)
        self.assertEqual(clusters[0]["Name"], "kiln-production")
        self.assertEqual(clusters[0]["Status"]["State"], "WAITING", "no step yet")

        _, out, _ = emr.aws(srv, STAGING, "emr", "list-clusters", "--active")
        self.assertEqual([c["Id"] for c in out["Clusters"]], [emr.cluster_id("staging")], out)
        self.assertNotEqual(emr.cluster_id("staging"), PROD_CLUSTER)

        _, out, _ = emr.aws(srv, PROD, "emr", "describe-cluster", "--cluster-id", PROD_CLUSTER)
        cluster = out["Cluster"]
        self.assertEqual(cluster["Id"], PROD_CLUSTER)
        self.assertEqual(cluster["ReleaseLabel"], "emr-6.15.0")
        self.assertTrue(cluster["TerminationProtected"], "the shared cluster cannot be ended")

        # The id is stable: the restarted server gives the same one.
        srv.stop()
        srv.start()
        _, out, _ = emr.aws(srv, PROD, "emr", "list-clusters")
        self.assertEqual([c["Id"] for c in out["Clusters"]], [PROD_CLUSTER])

    def test_add_steps_wait_step_complete_and_tiles_equal_kiln_ingest(self):
        srv = self.start_server()
        definition = ks.l7_definition("l7", max_zoom=MAX_ZOOM)
        path = emr.write_definition(srv, "l7", definition)
        [step_id] = self.add_steps(srv, step_arg("l7 via awscli", path))

        # The waiter runs while we look at the step (see the module comment).
        waiter = emr.aws_popen(srv, PROD, "emr", "wait", "step-complete",
                               "--cluster-id", PROD_CLUSTER, "--step-id", step_id)
        self.addCleanup(stop_process, waiter)

        listed = self.list_steps(srv)
        self.assertEqual([s["Id"] for s in listed], [step_id])
        self.assertEqual(listed[0]["Name"], "l7 via awscli")
        step = self.describe(srv, step_id)
        self.assertEqual(step["Id"], step_id)
        self.assertEqual(step["Name"], "l7 via awscli")
        self.assertEqual(step["ActionOnFailure"], "CONTINUE")
        self.assertEqual(step["Config"]["Jar"], "command-runner.jar")
        self.assertEqual(step["Config"]["Args"], ["kiln", "ingest", "--definition", path])
        self.assertIn(step["Status"]["State"], ("PENDING", "RUNNING", "COMPLETED"), step)
        self.assertIn("CreationDateTime", step["Status"]["Timeline"])

        # Meanwhile the same definition through the stand-alone `kiln ingest`.
        reference = ks.reference_ingest(definition, srv.tmp)

        out, err = waiter.communicate(timeout=150)
        emr.finish_aws(waiter, out, err, ["emr", "wait", "step-complete"], 0, srv)
        step = self.describe(srv, step_id)
        self.assertEqual(step["Status"]["State"], "COMPLETED", step)
        self.assertNotIn("FailureDetails", step["Status"])
        timeline = step["Status"]["Timeline"]
        self.assertLessEqual(timeline["CreationDateTime"], timeline["StartDateTime"])
        self.assertLessEqual(timeline["StartDateTime"], timeline["EndDateTime"])
        # The step is over when the CLI says so: the layer is published.
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])
        served = emr.tile_digests_of_layer(srv.catalog, "production", "l7")
        self.assertTrue(served, "no tiles published")
        self.assertIn("%d" % MAX_ZOOM, {p.split(os.sep)[0] for p in served})
        self.assertEqual(served, ks.tile_digests(reference),
                         "tiles differ from `kiln ingest` of the same definition")

        # The cluster is back to WAITING once its steps are done.
        _, out, _ = emr.aws(srv, PROD, "emr", "describe-cluster", "--cluster-id", PROD_CLUSTER)
        self.assertEqual(out["Cluster"]["Status"]["State"], "WAITING")

    def test_list_steps_newest_first_with_filters(self):
        srv = self.start_server()
        paths = [emr.write_definition(srv, "l%d" % i, ks.l7_definition("l%d" % i, max_zoom=8))
                 for i in range(3)]
        ids = self.add_steps(srv, *[step_arg("step-%d" % i, p) for i, p in enumerate(paths)])
        self.assertEqual(len(set(ids)), 3)
        for i in ids:
            srv.wait_step(i)

        listed = self.list_steps(srv)
        self.assertEqual([s["Id"] for s in listed], ids[::-1], "newest first")
        self.assertEqual([s["Name"] for s in listed], ["step-2", "step-1", "step-0"])
        self.assertEqual({s["Status"]["State"] for s in listed}, {"COMPLETED"})

        self.assertEqual([s["Id"] for s in self.list_steps(srv, "--step-ids", ids[1])],
                         [ids[1]])
        self.assertEqual([s["Id"] for s in self.list_steps(srv, "--step-states", "COMPLETED")],
                         ids[::-1])
        self.assertEqual(self.list_steps(srv, "--step-states", "FAILED", "CANCELLED"), [])
        # Another environment's keys see none of them.
        self.assertEqual(self.list_steps(srv, key=STAGING, cluster=emr.cluster_id("staging")),
                         [])

    def test_cancel_steps_pending_and_running(self):
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        slow = emr.write_definition(srv, "slow", ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        queued = emr.write_definition(srv, "queued", ks.l7_definition("queued", max_zoom=8))
        running_id, pending_id = self.add_steps(srv, step_arg("slow", slow),
                                                step_arg("queued", queued))
        srv.wait_running(running_id)
        self.assertEqual(self.describe(srv, pending_id)["Status"]["State"], "PENDING",
                         "concurrency 1: the second step waits")

        _, out, _ = emr.aws(srv, PROD, "emr", "cancel-steps", "--cluster-id", PROD_CLUSTER,
                            "--step-ids", pending_id)
        self.assertEqual(out["CancelStepsInfoList"],
                         [{"StepId": pending_id, "Status": "SUBMITTED"}])
        pending = self.describe(srv, pending_id)
        self.assertEqual(pending["Status"]["State"], "CANCELLED", "a PENDING step ends at once")
        self.assertNotIn("StartDateTime", pending["Status"]["Timeline"])

        _, out, _ = emr.aws(srv, PROD, "emr", "cancel-steps", "--cluster-id", PROD_CLUSTER,
                            "--step-ids", running_id,
                            "--step-cancellation-option", "SEND_INTERRUPT")
        self.assertEqual(out["CancelStepsInfoList"],
                         [{"StepId": running_id, "Status": "SUBMITTED"}])
        self.assertIn(self.describe(srv, running_id)["Status"]["State"],
                      ("CANCEL_PENDING", "CANCELLED"))
        srv.wait_step(running_id, timeout=60)
        self.assertEqual(self.describe(srv, running_id)["Status"]["State"], "CANCELLED")
        log, _ = srv.logs(running_id)
        self.assertIn("cancel requested (TERM)", log, "SEND_INTERRUPT is SIGTERM")

        # The waiter reports a cancelled step as a failure, not a success.
        rc, _, err = emr.aws(srv, PROD, "emr", "wait", "step-complete", "--cluster-id",
                             PROD_CLUSTER, "--step-id", running_id, expect_rc=None)
        self.assertEqual(rc, RC_WAITER_FAILED, err)
        self.assertIn("CANCELLED", err)

        # Cancelling a step that has ended changes nothing and says why.
        _, out, _ = emr.aws(srv, PROD, "emr", "cancel-steps", "--cluster-id", PROD_CLUSTER,
                            "--step-ids", pending_id)
        [info] = out["CancelStepsInfoList"]
        self.assertEqual((info["StepId"], info["Status"]), (pending_id, "FAILED"), info)
        self.assertIn("CANCELLED", info.get("Reason", ""))

        listed = self.list_steps(srv, "--step-states", "CANCELLED")
        self.assertEqual([s["Id"] for s in listed], [pending_id, running_id])
        emr.assert_step_published_nothing(self, srv.catalog, "production", "slow", running_id)
        emr.assert_step_published_nothing(self, srv.catalog, "production", "queued", pending_id)

    def test_wait_step_complete_fails_on_a_failed_step(self):
        srv = self.start_server(scheduler={"max_attempts": 1})
        bad_src = kt.truncated_geotiff(kt.l7_path(), os.path.join(srv.tmp, "cut-scene.tif"),
                                       keep=0.4)
        path = emr.write_definition(srv, "broken",
                                    ks.l7_definition("broken", max_zoom=MAX_ZOOM, uri=bad_src))
        [step_id] = self.add_steps(srv, step_arg("broken", path))
        srv.wait_step(step_id)

        rc, _, err = emr.aws(srv, PROD, "emr", "wait", "step-complete", "--cluster-id",
                             PROD_CLUSTER, "--step-id", step_id, expect_rc=None)
        self.assertEqual(rc, RC_WAITER_FAILED, err)
        self.assertIn("FAILED", err)
        status = self.describe(srv, step_id)["Status"]
        self.assertEqual(status["State"], "FAILED")
        self.assertIn("cut-scene.tif", status["FailureDetails"]["Message"])
        emr.assert_step_published_nothing(self, srv.catalog, "production", "broken", step_id)

    def test_refused_step_is_a_service_error_and_adds_nothing(self):
        srv = self.start_server()
        path = emr.write_definition(srv, "l7", ks.l7_definition("l7", max_zoom=MAX_ZOOM))
        rc, _, err = emr.aws(
            srv, PROD, "emr", "add-steps", "--cluster-id", PROD_CLUSTER, "--steps",
            "Type=CUSTOM_JAR,Name=app,Jar=s3://my-bucket/app.jar,Args=[--input,%s]" % path,
            expect_rc=None)
        self.assertEqual(rc, RC_SERVICE_ERROR, err)
        self.assertIn("ValidationException", err)
        self.assertIn("command-runner.jar", err, "the message says what is accepted")
        # An unknown cluster id, as on EMR.
        rc, _, err = emr.aws(srv, PROD, "emr", "describe-step", "--cluster-id",
                             "j-0000000000000", "--step-id", "s-0000000000000", expect_rc=None)
        self.assertEqual(rc, RC_SERVICE_ERROR, err)
        self.assertIn("InvalidRequestException", err)
        self.assertEqual(self.list_steps(srv), [])
        self.assertEqual(srv.step_ids(), [])


if __name__ == "__main__":
    unittest.main()

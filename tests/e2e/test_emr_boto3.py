"""boto3 drives Kiln through the EMR Step API endpoint of `kiln serve`
(issue 5) as the platforms Kiln replaces EMR for do: add_job_flow_steps,
the step_complete waiter, the list_steps paginator, describe_step,
cancel_steps; Airflow's EmrAddStepsOperator + EmrStepSensor logic reaching
the right verdict; and Raster Foundry's exact spark-submit step running a
Raster Foundry-format ingest definition.
"""

import datetime
import os
import time
import unittest

import botocore.exceptions

import emr_helpers as emr
import kiln_server as ks
import kiln_test as kt

PROD = emr.PRODUCTION_KEY
PROD_CLUSTER = emr.cluster_id("production")

MAX_ZOOM = 10
TINY_ZOOM = 6    # a handful of tiles
SLOW_ZOOM = 17   # thousands of tiles: seen RUNNING, cancelled

# The step_complete waiter polls every 30 s by default; a user in a hurry
# (and this test) passes a shorter delay.
FAST_WAIT = {"Delay": 1, "MaxAttempts": 300}


class Boto3Test(unittest.TestCase):
    def start_server(self, **kw):
        srv = emr.EmrServer(self, **kw)
        self.addCleanup(srv.close)
        srv.start()
        return srv

    def test_add_steps_waiter_and_describe(self):
        srv = self.start_server()
        client = srv.client(PROD)
        definition = ks.l7_definition("l7", max_zoom=MAX_ZOOM)
        path = emr.write_definition(srv, "l7", definition)
        before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)

        response = client.add_job_flow_steps(JobFlowId=PROD_CLUSTER,
                                             Steps=[emr.kiln_ingest_step("l7", path)])
        self.assertEqual(response["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertTrue(response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid"))
        [step_id] = response["StepIds"]
        self.assertRegex(step_id, emr.STEP_ID_PATTERN)

        client.get_waiter("step_complete").wait(ClusterId=PROD_CLUSTER, StepId=step_id,
                                                WaiterConfig=FAST_WAIT)
        step = client.describe_step(ClusterId=PROD_CLUSTER, StepId=step_id)["Step"]
        self.assertEqual(step["Id"], step_id)
        self.assertEqual(step["Name"], "l7")
        self.assertEqual(step["ActionOnFailure"], "CONTINUE")
        self.assertEqual(step["Config"]["Jar"], "command-runner.jar")
        self.assertEqual(step["Config"]["Args"], ["kiln", "ingest", "--definition", path])
        self.assertEqual(step["Config"]["Properties"], {})
        status = step["Status"]
        self.assertEqual(status["State"], "COMPLETED", status)
        self.assertNotIn("FailureDetails", status)
        timeline = status["Timeline"]  # epoch seconds on the wire, datetimes here
        after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
        self.assertTrue(before <= timeline["CreationDateTime"] <= timeline["StartDateTime"]
                        <= timeline["EndDateTime"] <= after, timeline)

        self.assertEqual(ks.layer_versions(srv.catalog, "production", "l7"), ["v000001"])
        self.assertEqual(emr.tile_digests_of_layer(srv.catalog, "production", "l7"),
                         ks.tile_digests(ks.reference_ingest(definition, srv.tmp)),
                         "tiles differ from `kiln ingest` of the same definition")
        # The native API sees the same step, with the committed version.
        native = srv.describe(step_id)
        self.assertEqual((native["state"], native["layer"], native["version"]),
                         ("COMPLETED", "l7", 1))

    def test_list_steps_paginator_pages_at_50(self):
        srv = self.start_server(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 1}])
        # One call plans 55 definitions, each in its own planner process (four
        # at once): seconds here, but under make tsan each planner is a TSan
        # binary and the call can outlast botocore's 60 s read timeout, after
        # which botocore would send it again.
        client = srv.client(PROD, read_timeout=600)
        slow = emr.write_definition(srv, "slow", ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        tiny = emr.write_definition(srv, "tiny", ks.l7_definition("tiny", max_zoom=TINY_ZOOM))
        # The first step holds the one RUNNING place, so the other 54 stay
        # PENDING until all are cancelled: 55 steps without running 55 ingests.
        steps = [emr.kiln_ingest_step("step-00", slow)]
        steps += [emr.kiln_ingest_step("step-%02d" % i, tiny) for i in range(1, 55)]
        ids = client.add_job_flow_steps(JobFlowId=PROD_CLUSTER, Steps=steps)["StepIds"]
        self.assertEqual(len(ids), 55)
        self.assertEqual(len(set(ids)), 55)
        infos = client.cancel_steps(ClusterId=PROD_CLUSTER, StepIds=ids,
                                    StepCancellationOption="TERMINATE_PROCESS")
        self.assertEqual([(i["StepId"], i["Status"]) for i in infos["CancelStepsInfoList"]],
                         [(i, "SUBMITTED") for i in ids])
        srv.wait_step(ids[0], timeout=60)

        pages = list(client.get_paginator("list_steps").paginate(ClusterId=PROD_CLUSTER))
        self.assertEqual([len(p["Steps"]) for p in pages], [50, 5])
        self.assertTrue(pages[0].get("Marker"), "the first page hands out a Marker")
        self.assertNotIn("Marker", pages[1], "the last page has none")
        listed = [s["Id"] for p in pages for s in p["Steps"]]
        self.assertEqual(listed, ids[::-1], "every step once, newest first")
        self.assertEqual({s["Status"]["State"] for p in pages for s in p["Steps"]},
                         {"CANCELLED"})

        # The paginator's build_full_result and a state filter agree.
        full = client.get_paginator("list_steps").paginate(
            ClusterId=PROD_CLUSTER, StepStates=["CANCELLED"]).build_full_result()
        self.assertEqual([s["Id"] for s in full["Steps"]], ids[::-1])
        none = client.get_paginator("list_steps").paginate(
            ClusterId=PROD_CLUSTER, StepStates=["COMPLETED", "RUNNING"]).build_full_result()
        self.assertEqual(none["Steps"], [])
        # A Marker from the first page, given by hand, continues after it.
        second = client.list_steps(ClusterId=PROD_CLUSTER, Marker=pages[0]["Marker"])
        self.assertEqual([s["Id"] for s in second["Steps"]], ids[4::-1])

    def test_cancel_steps_send_interrupt_and_terminate_process(self):
        srv = self.start_server()
        client = srv.client(PROD)
        waiter = client.get_waiter("step_complete")
        for option, signal_name in (("SEND_INTERRUPT", "TERM"), ("TERMINATE_PROCESS", "KILL")):
            with self.subTest(option=option):
                layer = "slow-" + signal_name.lower()
                path = emr.write_definition(srv, layer,
                                            ks.l7_definition(layer, max_zoom=SLOW_ZOOM))
                [step_id] = client.add_job_flow_steps(
                    JobFlowId=PROD_CLUSTER, Steps=[emr.kiln_ingest_step(layer, path)])["StepIds"]
                srv.wait_running(step_id, tiles_done=20)
                self.assertEqual(client.describe_step(ClusterId=PROD_CLUSTER, StepId=step_id)
                                 ["Step"]["Status"]["State"], "RUNNING")

                infos = client.cancel_steps(ClusterId=PROD_CLUSTER, StepIds=[step_id],
                                            StepCancellationOption=option)
                self.assertEqual(infos["CancelStepsInfoList"],
                                 [{"StepId": step_id, "Status": "SUBMITTED"}])
                # The step_complete waiter ends on CANCELLED as a failure.
                with self.assertRaises(botocore.exceptions.WaiterError) as caught:
                    waiter.wait(ClusterId=PROD_CLUSTER, StepId=step_id, WaiterConfig=FAST_WAIT)
                self.assertIn("CANCELLED", str(caught.exception))
                status = client.describe_step(ClusterId=PROD_CLUSTER,
                                              StepId=step_id)["Step"]["Status"]
                self.assertEqual(status["State"], "CANCELLED", status)
                self.assertIn("EndDateTime", status["Timeline"])
                log, _ = srv.logs(step_id)
                self.assertIn("cancel requested (%s)" % signal_name, log)
                emr.assert_step_published_nothing(self, srv.catalog, "production", layer, step_id)
                # The task processes are gone.
                deadline = time.time() + 15
                while srv.task_pids() and time.time() < deadline:
                    time.sleep(0.1)
                self.assertEqual(srv.task_pids(), [], "task processes left after CANCELLED")

    def test_airflow_operator_and_sensor_verdicts(self):
        srv = self.start_server(scheduler={"max_attempts": 1})
        client = srv.client(PROD)
        good = emr.write_definition(srv, "good", ks.l7_definition("good", max_zoom=MAX_ZOOM))
        bad_src = kt.truncated_geotiff(kt.l7_path(), os.path.join(srv.tmp, "truncated-scene.tif"),
                                       keep=0.4)
        bad = emr.write_definition(srv, "bad", ks.l7_definition("bad", max_zoom=MAX_ZOOM,
                                                                uri=bad_src))

        # The DAG names the cluster; the operator resolves it with ListClusters.
        verdict, [good_id] = emr.airflow_verdict(
            client, [emr.kiln_ingest_step("good", good)], job_flow_name="kiln-production")
        self.assertEqual(verdict, "success")
        self.assertEqual(ks.layer_versions(srv.catalog, "production", "good"), ["v000001"])

        verdict, [bad_id] = emr.airflow_verdict(
            client, [emr.kiln_ingest_step("bad", bad)], job_flow_id=PROD_CLUSTER)
        self.assertTrue(verdict.startswith("failed: EMR job failed for reason "), verdict)
        self.assertIn("truncated-scene.tif", verdict, "the failure names the corrupt file")
        details = client.describe_step(ClusterId=PROD_CLUSTER,
                                       StepId=bad_id)["Step"]["Status"]["FailureDetails"]
        self.assertEqual(details["Reason"], "SOURCE_ERROR", details)
        self.assertIn("truncated-scene.tif", details["Message"])
        self.assertIn("and log file %s" % details["LogFile"], verdict)
        # LogFile is the step's log on the server, readable where it says.
        with open(details["LogFile"], encoding="utf-8", errors="replace") as f:
            self.assertIn("truncated-scene.tif", f.read())
        emr.assert_step_published_nothing(self, srv.catalog, "production", "bad", bad_id)

        # A step cancelled under the sensor fails the task too.
        slow = emr.write_definition(srv, "slow", ks.l7_definition("slow", max_zoom=SLOW_ZOOM))
        job_flow_id, [slow_id] = emr.emr_add_steps_operator(
            client, [emr.kiln_ingest_step("slow", slow)], job_flow_id=PROD_CLUSTER)
        client.cancel_steps(ClusterId=job_flow_id, StepIds=[slow_id])
        with self.assertRaises(emr.AirflowException) as caught:
            emr.emr_step_sensor(client, job_flow_id, slow_id)
        self.assertTrue(str(caught.exception).startswith("EMR job failed"), caught.exception)

    def test_raster_foundry_submission(self):
        srv = self.start_server()
        client = srv.client(PROD)
        ingest_id = "3f2b9a1e-5c7d-4e8f-9a0b-1c2d3e4f5a6b"
        layer_id = "7c1e4d2a-8b3f-4a6e-9d5c-2f1a0b9e8d7c"
        scene_id = "0a5b8c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
        # output.uri names Raster Foundry's own catalog; the server writes
        # to the environment's catalog whatever it says.
        rf_def = emr.raster_foundry_definition(ingest_id, layer_id, kt.l7_path(),
                                               "file:///var/rf/catalog")
        path = emr.write_definition(srv, "rf-ingest", rf_def)
        args = emr.raster_foundry_args(scene_id, "file://" + path)
        response = client.add_job_flow_steps(JobFlowId=PROD_CLUSTER, Steps=[{
            "Name": "Ingest %s" % scene_id, "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": emr.RF_SCRIPT_RUNNER, "Args": args}}])
        [step_id] = response["StepIds"]
        client.get_waiter("step_complete").wait(ClusterId=PROD_CLUSTER, StepId=step_id,
                                                WaiterConfig=FAST_WAIT)
        step = client.describe_step(ClusterId=PROD_CLUSTER, StepId=step_id)["Step"]
        self.assertEqual(step["Status"]["State"], "COMPLETED", step)
        self.assertEqual(step["Config"]["Jar"], emr.RF_SCRIPT_RUNNER)
        self.assertEqual(step["Config"]["Args"], args, "the step echoes what was sent")
        self.assertEqual(step["Name"], "Ingest %s" % scene_id)

        # The layer (named by Raster Foundry's layer id) is in the catalog.
        self.assertEqual(ks.layer_versions(srv.catalog, "production", layer_id), ["v000001"])
        self.assertFalse(os.path.exists("/var/rf/catalog"), "output.uri was not obeyed")
        served = emr.tile_digests_of_layer(srv.catalog, "production", layer_id)
        self.assertTrue(served)
        self.assertTrue(all(p.endswith(".tif") for p in served), "RF layers are tif tiles")

        # Same tiles as `kiln ingest --definition` of the same RF document.
        ref_catalog = os.path.join(srv.tmp, "rf-reference")
        ref_path = emr.write_definition(srv, "rf-reference", emr.raster_foundry_definition(
            ingest_id, layer_id, kt.l7_path(), "file://" + ref_catalog))
        kt.run_kiln(["ingest", "--definition", ref_path, "--progress", "none"],
                    expect_rc=kt.EXIT_OK)
        self.assertEqual(served, emr.tile_digests_of_layer(ref_catalog, "default", layer_id))


if __name__ == "__main__":
    unittest.main()

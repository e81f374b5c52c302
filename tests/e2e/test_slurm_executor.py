"""The Slurm executor end to end (issue 7, docs/slurm.md), on a real Slurm
cluster this test starts and stops itself (scripts/slurm-cluster.sh: munge,
slurmctld, three slurmd, partitions staging and production, CLOUD nodes).

Each test runs its own `kiln serve` with `[executor] kind = "slurm"`; steps
run as Slurm job arrays whose elements are `kiln slurm-task` processes on
the three nodes. Tiles are compared byte for byte with the local executor's
for the same definition.
"""

import os
import re
import time
import unittest

import emr_helpers as emr
import kiln_server as ks
import kiln_test as kt
import slurm_cluster

CLUSTER = None

# Layer definitions: the Landsat scene at zoom 16 (9 partitions, a few
# seconds on this machine) and at 17 (longer: time to break things while it
# runs).
def definition(layer, max_zoom=16):
    return ks.l7_definition(layer, max_zoom=max_zoom)


def setUpModule():
    global CLUSTER
    slurm_cluster.require_slurm()
    CLUSTER = slurm_cluster.SlurmCluster()
    CLUSTER.start()


def tearDownModule():
    if CLUSTER is not None:
        CLUSTER.stop()


def slurm_server(testcase, emr_endpoint=False, **kw):
    extra = '[slurm]\nconf = "%s"\npoll_ms = 300\nresubmit_after_seconds = 2\n' % CLUSTER.conf
    cls = emr.EmrServer if emr_endpoint else ks.KilnServer
    executor = {"kind": "slurm", "workers": 1, "slots_per_worker": 2}
    return cls(testcase, executor=executor, extra_toml=extra, **kw)


def nodes_in_log(text):
    """Nodes the step's array elements ran on, from the dispatcher's lines."""
    return set(re.findall(r"slurm: job \d+(?:_\d+)? RUNNING on (\S+)", text))


def full_log(srv, step_id, token=ks.PRODUCTION_TOKEN):
    text, _ = srv.logs(step_id, token=token)
    return text


def live_jobs_of(step_id):
    """Slurm jobs of this step that are not finished, per squeue."""
    out = CLUSTER.run("squeue", "--noheader", "--array", "--format=%i|%j|%T")
    return [l for l in out.splitlines() if ("kiln-" + step_id) in l]


class SlurmExecutorTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # The reference: the same definitions on the local executor.
        cls.reference = {}
        with ks.KilnServer() as srv:
            for z in (16, 17):
                layer = "ref%d" % z
                step = srv.submit(definition(layer, z))
                step = srv.wait_step(step["id"], timeout=600)
                assert step["state"] == "COMPLETED", step
                cls.reference[z] = emr.tile_digests_of_layer(srv.catalog, "production", layer)
        assert len(cls.reference[16]) > 400, len(cls.reference[16])

    def assert_same_tiles(self, srv, env, layer, z):
        got = emr.tile_digests_of_layer(srv.catalog, env, layer)
        self.assertEqual(len(got), len(self.reference[z]))
        self.assertEqual(got, self.reference[z], "tiles differ from the local executor's")

    def wait_partition_running(self, srv, step_id, token=ks.PRODUCTION_TOKEN, timeout=120):
        """Waits until an array element runs and has written tiles."""
        return srv.wait_until(
            step_id, lambda s: s["state"] == "RUNNING" and s["progress"]["tiles_done"] > 0,
            timeout=timeout, token=token, what="tiles written")

    # --- the same ingest through both APIs -------------------------------------------

    def test_native_and_emr_steps_run_across_the_nodes_with_identical_tiles(self):
        with slurm_server(self, emr_endpoint=True) as srv:
            native = srv.submit(definition("native"))
            client = srv.client(emr.PRODUCTION_KEY)
            path = emr.write_definition(srv, "viaemr", definition("viaemr"))
            [emr_id] = client.add_job_flow_steps(
                JobFlowId=emr.cluster_id("production"),
                Steps=[emr.kiln_ingest_step("via emr", path)])["StepIds"]
            native = srv.wait_step(native["id"], timeout=300)
            via_emr = srv.wait_step(emr_id, timeout=300)
            self.assertEqual(native["state"], "COMPLETED", full_log(srv, native["id"]))
            self.assertEqual(via_emr["state"], "COMPLETED", full_log(srv, emr_id))
            described = client.describe_step(ClusterId=emr.cluster_id("production"),
                                             StepId=emr_id)["Step"]
            self.assertEqual(described["Status"]["State"], "COMPLETED")

            self.assert_same_tiles(srv, "production", "native", 16)
            self.assert_same_tiles(srv, "production", "viaemr", 16)
            nodes = nodes_in_log(full_log(srv, native["id"])) | nodes_in_log(
                full_log(srv, emr_id))
            self.assertEqual(nodes, {"node1", "node2", "node3"})
            # One array and one commit job per step, nothing submitted twice.
            for sid in (native["id"], emr_id):
                log = full_log(srv, sid)
                self.assertEqual(log.count("slurm: submitted array job"), 1, log)
                self.assertEqual(log.count("slurm: submitted commit job"), 1, log)
                self.assertRegex(log, r"submitted commit job \d+ to partition production, afterok:\d+")

    # --- failures --------------------------------------------------------------------

    def test_a_node_that_dies_mid_array_loses_no_step(self):
        with slurm_server(self) as srv:
            step = srv.submit(definition("nodefail", 17))
            victim = None
            deadline = time.time() + 120
            while victim is None and time.time() < deadline:
                for line in CLUSTER.run("squeue", "--noheader", "--array",
                                        "--format=%j|%T|%N").splitlines():
                    name, state, node = line.split("|")
                    if name == "kiln-" + step["id"] and state == "RUNNING" and node:
                        victim = node
                        break
                time.sleep(0.2)
            self.assertIsNotNone(victim, "no array element started")
            self.wait_partition_running(srv, step["id"])
            CLUSTER.kill_node(victim)
            try:
                step = srv.wait_step(step["id"], timeout=400)
            finally:
                CLUSTER.start_node(victim)
                CLUSTER.wait_node_state(victim, ("idle", "mixed", "allocated"), timeout=90)
            log = full_log(srv, step["id"])
            self.assertEqual(step["state"], "COMPLETED", log)
            self.assertRegex(log, r"attempt 2 leased", "no task ran again after the node died")
            self.assert_same_tiles(srv, "production", "nodefail", 17)

    def test_production_preempts_staging_and_both_complete(self):
        with slurm_server(self) as srv:
            staging = srv.submit(definition("pre", 17), token=ks.STAGING_TOKEN)
            self.wait_partition_running(srv, staging["id"], token=ks.STAGING_TOKEN)
            prod = srv.submit(definition("pre", 16))
            prod = srv.wait_step(prod["id"], timeout=300)
            staging = srv.wait_step(staging["id"], timeout=400, token=ks.STAGING_TOKEN)
            slog = full_log(srv, staging["id"], token=ks.STAGING_TOKEN)
            self.assertEqual(prod["state"], "COMPLETED", full_log(srv, prod["id"]))
            self.assertEqual(staging["state"], "COMPLETED", slog)
            # Slurm requeued staging elements for production's; each re-ran
            # as a new attempt of its task, not a failure.
            self.assertRegex(slog, r"slurm: job \d+_\d+ (PREEMPTED|REQUEUED|PENDING \(BeginTime\))"
                             r"|attempt 2 leased", slog)
            self.assertNotIn("failed:", slog)
            self.assert_same_tiles(srv, "production", "pre", 16)
            self.assert_same_tiles(srv, "staging", "pre", 17)

    # --- cancel and restart ----------------------------------------------------------

    def test_cancel_ends_the_slurm_jobs(self):
        with slurm_server(self) as srv:
            step = srv.submit(definition("cancelled", 17))
            self.wait_partition_running(srv, step["id"])
            self.assertTrue(live_jobs_of(step["id"]))
            srv.cancel(step["id"])
            step = srv.wait_step(step["id"], timeout=120)
            self.assertEqual(step["state"], "CANCELLED", full_log(srv, step["id"]))
            deadline = time.time() + 30
            while live_jobs_of(step["id"]) and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(live_jobs_of(step["id"]), [], "Slurm jobs outlived the cancel")
            # The dispatcher cancels the jobs: while the step is CANCEL_PENDING,
            # or once it is CANCELLED if the workers' own cancel was faster.
            self.assertRegex(full_log(srv, step["id"]),
                             r"slurm: (scancel \(TERM\) of job\(s\)|step ended; scancel of job)")
            kt.assert_nothing_published(self, srv.catalog, "production", "cancelled")

    def test_a_restarted_server_reattaches_without_resubmitting(self):
        with slurm_server(self) as srv:
            step = srv.submit(definition("restart", 17))
            srv.wait_until(step["id"], lambda s: s["progress"]["tasks_done"] >= 2, timeout=180,
                           what="two partitions done")
            srv.kill9()
            time.sleep(2)
            srv.start()
            step = srv.wait_step(step["id"], timeout=300)
            log = full_log(srv, step["id"])
            self.assertEqual(step["state"], "COMPLETED", log)
            self.assertEqual(log.count("slurm: submitted array job"), 1, log)
            self.assertNotIn("submitted again", log)
            self.assertNotIn("attempt 2 leased", log)
            self.assert_same_tiles(srv, "production", "restart", 17)


if __name__ == "__main__":
    unittest.main()

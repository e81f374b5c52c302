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

# Layer definitions: the Landsat scene to zoom 16, 9 partitions. FAST
# writes PNG (about half a second a partition here); SLOW writes lossless
# WebP (several seconds a partition: time to break things while a task
# runs).
FAST, SLOW = "png", "webp-lossless"


def definition(layer, kind=FAST):
    d = ks.l7_definition(layer, max_zoom=16)
    if kind == SLOW:
        d["output"]["encoding"] = {"format": "webp", "webp_lossless": True}
    return d


def setUpModule():
    global CLUSTER
    slurm_cluster.require_slurm()
    # Slurm's own power saving never suspends a CLOUD node here: Kiln's
    # autoscaler decides when they go (test_a_burst_powers_up_a_cloud_node).
    CLUSTER = slurm_cluster.SlurmCluster(extra_env={"KILN_SLURM_SUSPEND_TIME": "3600"})
    CLUSTER.start()
    # The local executor's tiles, first: a second KilnServer closed while a
    # test's server runs would take that one for an orphan of its own.
    for kind in (FAST, SLOW):
        reference_digests(kind)


def tearDownModule():
    if CLUSTER is not None:
        CLUSTER.stop()


def slurm_server(testcase, emr_endpoint=False, extra_toml="", **kw):
    extra = '[slurm]\nconf = "%s"\npoll_ms = 300\nresubmit_after_seconds = 2\n' % CLUSTER.conf
    extra += extra_toml
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


def wait_for_element(step_id, state, timeout):
    """(job id like "12_3", node) of the first element of the step's array
    squeue shows in `state`; None after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in CLUSTER.run("squeue", "--noheader", "--array",
                                "--format=%j|%T|%i|%N").splitlines():
            name, st, jid, node = line.split("|")
            if name == "kiln-" + step_id and st == state and "_" in jid:
                return jid, node
        time.sleep(0.1)
    return None


_REFERENCE = {}


def reference_digests(kind):
    """{tile: sha256} of the same definition ingested by the local executor."""
    if kind not in _REFERENCE:
        with ks.KilnServer() as srv:
            layer = "ref"
            step = srv.wait_step(srv.submit(definition(layer, kind))["id"], timeout=600)
            assert step["state"] == "COMPLETED", step
            _REFERENCE[kind] = emr.tile_digests_of_layer(srv.catalog, "production", layer)
            assert len(_REFERENCE[kind]) > 400, len(_REFERENCE[kind])
    return _REFERENCE[kind]


def assert_same_tiles(testcase, srv, env, layer, kind):
    got = emr.tile_digests_of_layer(srv.catalog, env, layer)
    want = reference_digests(kind)
    testcase.assertEqual(len(got), len(want))
    testcase.assertEqual(got, want, "tiles differ from the local executor's")


class SlurmExecutorTest(unittest.TestCase):

    def assert_same_tiles(self, srv, env, layer, kind):
        assert_same_tiles(self, srv, env, layer, kind)

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

            self.assert_same_tiles(srv, "production", "native", FAST)
            self.assert_same_tiles(srv, "production", "viaemr", FAST)
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
            step = srv.submit(definition("nodefail", SLOW))
            self.wait_partition_running(srv, step["id"])
            # Crash a node while one of the step's elements runs on it.
            running = wait_for_element(step["id"], "RUNNING", timeout=120)
            self.assertIsNotNone(running, "no array element ran")
            victim = running[1]
            CLUSTER.kill_node(victim)
            try:
                step = srv.wait_step(step["id"], timeout=400)
            finally:
                CLUSTER.start_node(victim)
                CLUSTER.wait_node_state(victim, ("idle", "mixed", "allocated"), timeout=90)
            log = full_log(srv, step["id"])
            self.assertEqual(step["state"], "COMPLETED", log)
            self.assertRegex(log, r"attempt 2 leased", "no task ran again after the node died")
            self.assert_same_tiles(srv, "production", "nodefail", SLOW)

    def test_production_preempts_staging_and_both_complete(self):
        with slurm_server(self) as srv:
            staging = srv.submit(definition("pre", SLOW), token=ks.STAGING_TOKEN)
            self.wait_partition_running(srv, staging["id"], token=ks.STAGING_TOKEN)
            prod = srv.submit(definition("pre", FAST))
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
            self.assert_same_tiles(srv, "production", "pre", FAST)
            self.assert_same_tiles(srv, "staging", "pre", SLOW)

    def test_an_element_cancelled_behind_kilns_back_is_submitted_again(self):
        with slurm_server(self) as srv:
            step = srv.submit(definition("resubmit", SLOW))
            # 9 partitions, 6 CPUs: the last elements wait. An operator
            # cancels one of them.
            waiting = wait_for_element(step["id"], "PENDING", timeout=60)
            self.assertIsNotNone(waiting, "no element waited")
            victim = waiting[0]
            CLUSTER.run("scancel", victim)
            step = srv.wait_step(step["id"], timeout=300)
            log = full_log(srv, step["id"])
            self.assertEqual(step["state"], "COMPLETED", log)
            index = victim.split("_")[1]
            self.assertRegex(log, r"slurm: partition\(s\) [0-9,-]*\b%s\b[0-9,-]* had no live "
                                  r"Slurm job left; submitted again" % index)
            self.assert_same_tiles(srv, "production", "resubmit", SLOW)

    # --- cancel and restart ----------------------------------------------------------

    def test_cancel_ends_the_slurm_jobs(self):
        # SEND_INTERRUPT (TERM: Slurm's SIGTERM, SIGKILL after KillWait) and
        # TERMINATE_PROCESS (KILL at once), on two steps running together.
        # Heartbeats every 2 s: the dispatcher (every 0.3 s) sees the step
        # CANCEL_PENDING before the workers' own cancel ends it.
        with slurm_server(self, scheduler={"heartbeat_seconds": 2}) as srv:
            steps = {sig: srv.submit(definition("cancelled-" + sig.lower(), SLOW))
                     for sig in ("TERM", "KILL")}
            for step in steps.values():
                self.wait_partition_running(srv, step["id"])
                self.assertTrue(live_jobs_of(step["id"]))
            for sig, step in steps.items():
                srv.cancel(step["id"], signal_name=sig)
            for sig, step in steps.items():
                step = srv.wait_step(step["id"], timeout=120)
                log = full_log(srv, step["id"])
                self.assertEqual(step["state"], "CANCELLED", log)
                deadline = time.time() + 30
                while live_jobs_of(step["id"]) and time.time() < deadline:
                    time.sleep(0.2)
                self.assertEqual(live_jobs_of(step["id"]), [], "Slurm jobs outlived the cancel")
                self.assertRegex(log, r"slurm: scancel \(%s\) of job\(s\) \d+" % sig)
                kt.assert_nothing_published(self, srv.catalog, "production",
                                            "cancelled-" + sig.lower())

    def test_a_restarted_server_reattaches_without_resubmitting(self):
        with slurm_server(self) as srv:
            step = srv.submit(definition("restart", SLOW))
            mid = srv.wait_until(step["id"], lambda s: s["progress"]["tasks_done"] >= 2,
                                 timeout=180, what="two partitions done")
            self.assertLess(mid["progress"]["tasks_done"], mid["progress"]["tasks_total"])
            self.assertTrue(live_jobs_of(step["id"]), "nothing left running to re-attach to")
            # The elements write to the step's log file themselves. Restart
            # only once one of them has found the server gone, so the restart
            # is an outage they ride out, not one none of them noticed.
            log_file = os.path.join(srv.state_dir, "logs", step["id"] + ".log")
            before_kill = os.path.getsize(log_file)
            srv.kill9()

            def outage_noticed():
                with open(log_file, encoding="utf-8", errors="replace") as f:
                    f.seek(before_kill)
                    # An element still running notices the outage (a stopping
                    # one's "leave" warning says nothing of the others, and
                    # it will never answer again).
                    return re.search(r"WARN +(?!leave:)\w+: cannot reach the server at ", f.read())

            deadline = time.monotonic() + 60
            while not outage_noticed() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertTrue(outage_noticed(), "no element noticed the server was gone")
            srv.start()
            step = srv.wait_step(step["id"], timeout=300)
            # The element whose completion ends the step writes "answers
            # again" only once that call has returned, and Slurm copies its
            # output to the log after that: the line may trail the state.
            deadline = time.monotonic() + 30
            log = full_log(srv, step["id"])
            while "answers again" not in log and time.monotonic() < deadline:
                time.sleep(0.2)
                log = full_log(srv, step["id"])
            self.assertRegex(srv.log_tail(100000), r"re-attaching: \d+ task\(s\) leased")
            self.assertIn("answers again", log, "no element reported back after the restart")
            self.assertEqual(step["state"], "COMPLETED", log)
            self.assertEqual(log.count("slurm: submitted array job"), 1, log)
            self.assertNotIn("submitted again", log)
            self.assertNotIn("attempt 2 leased", log)
            self.assert_same_tiles(srv, "production", "restart", SLOW)


# The core group is the three static nodes; a spot group of the two CLOUD
# nodes, which target tracking powers up when tasks wait and down after the
# idle timeout. Jobs may run in the environment's partition or in `cloud`.
CLOUD_TOML = """
partitions = { production = "production,cloud", staging = "staging,cloud" }

[[group]]
name = "core"
core = true
min_nodes = 3
max_nodes = 3
slots_per_node = 2
nodes = ["node1", "node2", "node3"]
price_per_hour = 0.40

[[group]]
name = "cloud"
market = "spot"
min_nodes = 0
max_nodes = 2
slots_per_node = 2
nodes = ["cloud1", "cloud2"]
price_per_hour = 0.12

[autoscaling]
period_seconds = 2
drain_timeout_seconds = 10

[[autoscaling.target]]
group = "cloud"
free_slot_pct = 0
scale_out_cooldown_seconds = 0
scale_in_cooldown_seconds = 2
idle_timeout_seconds = 6
"""


class SlurmCloudNodesTest(unittest.TestCase):

    def cloud_states(self):
        return {n: CLUSTER.node_state(n) for n in ("cloud1", "cloud2")}

    def test_a_burst_powers_up_a_cloud_node_and_idle_powers_it_down(self):
        with slurm_server(self, extra_toml=CLOUD_TOML) as srv:
            # Off and drained: Slurm does not wake them for pending jobs.
            ks_wait = time.time() + 20
            while time.time() < ks_wait and not all(
                    s.startswith("drained") for s in self.cloud_states().values()):
                time.sleep(0.2)
            self.assertTrue(all("~" in s and s.startswith("drained")
                                for s in self.cloud_states().values()), self.cloud_states())
            # Two big steps at once: 72 partition tasks for 6 static slots.
            steps = [srv.submit(definition("burst%d" % i, SLOW)) for i in range(2)]
            log = ""
            for step in steps:
                step = srv.wait_step(step["id"], timeout=400)
                log += full_log(srv, step["id"])
                self.assertEqual(step["state"], "COMPLETED", log)
            decisions = [d for d in _read_jsonl(os.path.join(srv.state_dir,
                                                             "autoscaler-decisions.jsonl"))
                         if d["group"] == "cloud"]
            self.assertTrue(any(d["to"] > d["from"] for d in decisions), decisions)
            ran_on = nodes_in_log(log)
            if not ran_on & {"cloud1", "cloud2"}:
                power_log = os.path.join(os.path.dirname(CLUSTER.conf), "log", "power.log")
                with open(power_log, encoding="utf-8", errors="replace") as f:
                    power = f.read()[-2000:]
                slurm_lines = [l for l in srv.log_tail(100000).splitlines() if "slurm" in l]
                self.fail("no task ran on a CLOUD node: %s\ndecisions: %s\npower.log: %s\n"
                          "server: %s" % (sorted(ran_on), decisions, power,
                                          "\n".join(slurm_lines[-30:])))
            self.assertTrue(ran_on & {"node1", "node2", "node3"}, sorted(ran_on))
            # Idle: scaled in, powered down (the suspend script stopped its
            # slurmd) and drained again.
            deadline = time.time() + 90
            while time.time() < deadline and not all(
                    "~" in s and s.startswith("drained") for s in self.cloud_states().values()):
                time.sleep(0.5)
            self.assertTrue(all("~" in s and s.startswith("drained")
                                for s in self.cloud_states().values()), self.cloud_states())
            self.assertTrue(any(d["to"] < d["from"] for d in _read_jsonl(
                os.path.join(srv.state_dir, "autoscaler-decisions.jsonl"))
                if d["group"] == "cloud"))
            for i in range(2):
                assert_same_tiles(self, srv, "production", "burst%d" % i, SLOW)


def _read_jsonl(path):
    import json
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


if __name__ == "__main__":
    unittest.main()

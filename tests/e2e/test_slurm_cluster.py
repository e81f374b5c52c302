"""The Slurm test cluster itself (scripts/slurm-cluster.sh, slurm_cluster.py),
on the real daemons: job arrays across the static nodes, partition
preemption, a node crash with requeue, a CLOUD node powering up and down.

One cluster serves the whole class (started in setUpClass); each test leaves
no job behind. Timings are printed to stderr and summed up at the end.
Run by hand from tests/e2e, as root:

    /usr/bin/python3 -m unittest -v test_slurm_cluster
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

from slurm_cluster import STATIC_NODES, SlurmCluster, SlurmCommandError

# Pinned so the scheduling assertions below hold whatever the caller's
# environment says: two CPUs per node, default power-down delay.
CPUS = 2
SUSPEND_TIME = 20

ARRAY_TASK_SECONDS = 4

ARRAY_SCRIPT = f"""#!/bin/sh
# $1: directory for one record per array task
printf '%s %s %s\\n' "$SLURMD_NODENAME" "$SLURM_ARRAY_TASK_ID" "$(date +%s.%N)" \\
  > "$1/task-$SLURM_ARRAY_TASK_ID.txt"
sleep {ARRAY_TASK_SECONDS}
"""

# Appends "<node> <restart count>" to $1 at every (re)start, then sleeps.
LONG_SCRIPT = """#!/bin/sh
echo "$SLURMD_NODENAME ${SLURM_RESTART_COUNT:-0}" >> "$1"
exec sleep 300
"""

SHORT_SCRIPT = """#!/bin/sh
echo "$SLURMD_NODENAME" > "$1"
"""

TERMINAL = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY"}


def note(msg):
    print(f"  [slurm] {msg}", file=sys.stderr, flush=True)


class SlurmClusterTest(unittest.TestCase):
    timings = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-slurm-test-")
        cls.cluster = SlurmCluster(extra_env={
            "KILN_SLURM_CPUS": str(CPUS),
            "KILN_SLURM_SUSPEND_TIME": str(SUSPEND_TIME),
        })
        try:
            cls.cluster.start()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.timings["start (script, until node1..3 idle)"] = cls.cluster.start_seconds
        note(f"cluster up in {cls.cluster.start_seconds:.2f} s, state "
             f"{cls.cluster.state_dir}, ports {cls.cluster.port_base}..")
        cls.scripts = {}
        for name, text in (("array", ARRAY_SCRIPT), ("long", LONG_SCRIPT),
                           ("short", SHORT_SCRIPT)):
            path = os.path.join(cls.tmp, f"{name}.sh")
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
            cls.scripts[name] = path

    @classmethod
    def tearDownClass(cls):
        t0 = time.monotonic()
        try:
            cls.cluster.stop()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        cls.timings["stop"] = time.monotonic() - t0
        note("timings:")
        for what, secs in cls.timings.items():
            note(f"  {what:<55} {secs:6.2f} s")

    def setUp(self):
        self.submitted = []
        # Runs after the test's other cleanups (restarting a crashed node).
        self.addCleanup(lambda: self.cancel_and_settle(*self.submitted))

    # ------------------------------------------------------------ helpers
    def workdir(self):
        d = tempfile.mkdtemp(dir=self.tmp, prefix=self._testMethodName + "-")
        return d

    def submit(self, args, script, *script_args, out_dir=None):
        """sbatch with the job's own output in the test's temp dir; the job
        is cancelled when the test ends."""
        out = os.path.join(out_dir or self.tmp, "slurm-%j.out")
        job = self.cluster.sbatch(["-o", out, *args], self.scripts[script], *script_args)
        self.submitted.append(job)
        return job

    def cancel_and_settle(self, *jobs):
        """Cancel jobs, wait until they ended and node1..3 are idle again."""
        if not jobs:
            return
        self.cluster.scancel(*jobs)
        for job in jobs:
            self.cluster.wait(
                lambda: all(r.get("JobState") in TERMINAL for r in self.cluster.jobs(job)),
                30, f"job {job} to end")
        for node in STATIC_NODES:
            if f"slurmd-{node}" in self.cluster.recorded_pids():
                self.cluster.wait_node_state(node, "idle", timeout=30)

    def restarts(self, job):
        return int(self.cluster.job(job).get("Restarts", "0"))

    def time_it(self, what, t0):
        secs = time.monotonic() - t0
        self.timings[what] = secs
        note(f"{what}: {secs:.2f} s")
        return secs

    # ------------------------------------------------------------ tests
    def test_0_script_contract(self):
        c = self.cluster
        with open(c.conf) as f:
            conf = f.read()
        for line in ("ClusterName=kilntest", "JobRequeue=1", "MinJobAge=600",
                     "PreemptType=preempt/partition_prio", "ReturnToService=2"):
            self.assertIn(line + "\n", conf)
        sched = next(l for l in conf.splitlines() if l.startswith("SchedulerParameters="))
        self.assertIn("kill_invalid_depend", sched)
        self.assertNotIn("defer_batch", sched)
        # A second start on a live state dir is refused.
        with self.assertRaises(SlurmCommandError) as cm:
            c.script("start")
        self.assertIn("already runs a cluster", cm.exception.stderr)
        status = c.script("status")
        self.assertIn("node[1-3]", status)
        self.assertIn("cloud[1-2]", status)
        self.assertEqual(c.node_state("cloud1"), "idle~")
        pids = c.recorded_pids()
        self.assertEqual(sorted(pids), ["munged", "slurmctld"] +
                         [f"slurmd-{n}" for n in STATIC_NODES])

    def test_1_array_spreads_over_static_nodes(self):
        out = self.workdir()
        t0 = time.monotonic()
        job = self.submit(["--array=0-5", "-p", "staging", "-c", "1", "-J", "kiln-array"],
                          "array", out, out_dir=out)
        self.cluster.wait(lambda: self._array_done(job, 6), 60,
                          f"array {job}: 6 tasks COMPLETED")
        self.time_it("array: 6 tasks submitted -> all COMPLETED", t0)
        records = {}
        for name in sorted(os.listdir(out)):
            if name.startswith("task-"):
                with open(os.path.join(out, name)) as f:
                    node, task, started = f.read().split()
                records[int(task)] = (node, float(started))
        self.assertEqual(sorted(records), list(range(6)))
        nodes = sorted(n for n, _ in records.values())
        self.assertTrue(set(nodes) <= set(STATIC_NODES), nodes)
        starts = [s for _, s in records.values()]
        spread = max(starts) - min(starts)
        note(f"array tasks per node: {nodes}; starts within {spread:.2f} s")
        self.assertGreaterEqual(len(set(nodes)), 2, nodes)
        if spread < ARRAY_TASK_SECONDS:
            # All six overlapped, and a node holds only CPUS one-CPU tasks.
            self.assertEqual(set(nodes), set(STATIC_NODES), nodes)

    def _array_done(self, job, tasks):
        records = self.cluster.jobs(job)
        bad = [r for r in records if r.get("JobState") in TERMINAL - {"COMPLETED"}]
        if bad:
            self.fail(f"array task {bad[0].get('JobId')} ended {bad[0].get('JobState')}")
        return len(records) == tasks and all(r["JobState"] == "COMPLETED" for r in records)

    def test_2_production_preempts_staging(self):
        out = self.workdir()
        log = os.path.join(out, "starts.txt")
        staging = [self.submit(["-p", "staging", "--exclusive", "-J", f"staging{i}"],
                               "long", log, out_dir=out) for i in range(3)]
        for job in staging:
            self.cluster.wait_job_state(job, "RUNNING", timeout=30)
        used = sorted(self.cluster.job(j)["NodeList"] for j in staging)
        self.assertEqual(used, list(STATIC_NODES))

        t0 = time.monotonic()
        prod = self.submit(["-p", "production", "--exclusive", "-J", "production"],
                           "long", log, out_dir=out)
        # Every node is held by a staging job that sleeps 300 s: production
        # runs before they end only by preempting one (the 30 s deadline only
        # stops a hung test; how long it took is noted, not asserted).
        rec = self.cluster.wait_job_state(prod, "RUNNING", timeout=30)
        self.time_it("preemption: production sbatch -> RUNNING", t0)

        preempted = self.cluster.wait(
            lambda: [j for j in staging if self.restarts(j) >= 1], 10,
            "a staging job with Restarts>=1")
        self.assertEqual(len(preempted), 1, preempted)
        victim = self.cluster.job(preempted[0])
        note(f"production on {rec['NodeList']}; staging {preempted[0]} requeued: "
             f"JobState={victim['JobState']} Restarts={victim['Restarts']} "
             f"Reason={victim.get('Reason')}")
        self.assertIn(victim["JobState"], {"PENDING", "REQUEUED"})
        still = [j for j in staging if j not in preempted]
        for job in still:
            self.assertEqual(self.cluster.job_state(job), "RUNNING")

    def test_3_node_crash_requeues_job(self):
        out = self.workdir()
        log = os.path.join(out, "starts.txt")
        job = self.submit(["-p", "staging", "--requeue", "-J", "survivor"], "long", log,
                          out_dir=out)
        rec = self.cluster.wait_job_state(job, "RUNNING", timeout=30)
        node = rec["NodeList"]
        self.assertIn(node, STATIC_NODES)

        t0 = time.monotonic()
        self.cluster.kill_node(node)
        self.addCleanup(self._restart_if_dead, node)
        self.cluster.wait(lambda: self.restarts(job) >= 1, 60, f"job {job} requeued")
        self.time_it(f"node crash: kill {node} -> job requeued", t0)
        self.assertIn(self.cluster.node_state(node), {"down*", "down"})
        rec = self.cluster.wait_job_state(job, "RUNNING", timeout=90)
        self.time_it(f"node crash: kill {node} -> job RUNNING elsewhere", t0)
        self.assertNotEqual(rec["NodeList"], node)
        self.assertIn(rec["NodeList"], STATIC_NODES)
        def read_starts():
            with open(log) as f:
                return [line.split() for line in f]
        self.cluster.wait(lambda: len(read_starts()) >= 2, 10,
                          "second start recorded by the job")
        starts = read_starts()
        self.assertEqual(starts, [[node, "0"], [rec["NodeList"], "1"]])

        t1 = time.monotonic()
        self.cluster.start_node(node)
        self.cluster.wait_node_state(node, "idle", timeout=30)
        self.time_it(f"node crash: start-node {node} -> idle", t1)

    def _restart_if_dead(self, node):
        if f"slurmd-{node}" not in self.cluster.recorded_pids():
            self.cluster.start_node(node)

    def test_4_cloud_node_powers_up_and_down(self):
        c = self.cluster
        self.assertEqual(c.node_state("cloud1"), "idle~")
        t0 = time.monotonic()
        c.run("scontrol", "update", "NodeName=cloud1", "State=POWER_UP")
        c.wait_node_state("cloud1", "idle", timeout=60)
        self.time_it("cloud: POWER_UP -> cloud1 idle", t0)
        pid = c.recorded_pids().get("slurmd-cloud1")
        self.assertIsNotNone(pid, "resume-node.sh recorded no slurmd for cloud1")
        self.assertTrue(os.path.exists(f"/proc/{pid}"))

        out = self.workdir()
        where = os.path.join(out, "node.txt")
        t1 = time.monotonic()
        job = self.submit(["-p", "cloud", "-w", "cloud1", "-J", "cloudy"], "short", where,
                          out_dir=out)
        c.wait_job_state(job, "COMPLETED", timeout=60)
        self.time_it("cloud: sbatch -> COMPLETED on cloud1", t1)
        with open(where) as f:
            self.assertEqual(f.read().strip(), "cloud1")

        t2 = time.monotonic()
        c.wait(lambda: not os.path.exists(f"/proc/{pid}")
               and "slurmd-cloud1" not in c.recorded_pids(),
               SUSPEND_TIME + 30, "cloud1's slurmd to be stopped")
        self.time_it(f"cloud: job done -> slurmd gone (SuspendTime={SUSPEND_TIME})", t2)
        state = c.wait_node_state("cloud1", {"idle%", "idle~"}, timeout=15)
        note(f"cloud1 after suspend: {state}")
        self.assertNotIn("cloud2", "".join(c.recorded_pids()))


if __name__ == "__main__":
    unittest.main()

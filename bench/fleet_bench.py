#!/usr/bin/python3
"""The front door and a large local fleet (issue 14, "the same door limits
the fleet"): can `kiln serve` take the registrations and heartbeats of
hundreds of its own workers?

    /usr/bin/python3 bench/fleet_bench.py [--nodes 500] [--seconds 20] [--out [FILE]]

Starts one `kiln serve` (tests/e2e/kiln_server.py: temp dir, stopped by PID)
whose core group has --nodes local nodes of one slot each
(min_nodes = max_nodes), then measures:

- registration: seconds from starting the server until /v1/cluster lists
  --nodes live workers (target: 500 within 30 s), and whether they stay
  (the count again after the measurements);
- idle server CPU: the `kiln serve` process's user+system time over
  --seconds with the fleet idle, as a share of one core (target < 25 %);
- /healthz latency on one keep-alive connection for --seconds: p50, p99,
  max (target p99 <= 50 ms);
- then one step over the fleet: data/L7_ETMs.tif (bands 3,2,1) at
  --step-zoom (default 18), whose partitions the planner cuts for the
  fleet's slots (plan threads = total slots, at most 256, and at least
  2 x threads regions where the scene has them): its partition count, its
  wall time (submit to COMPLETED) and how many distinct workers ran its
  tasks, from the step's log ("... leased by w-...") (target: every node).
  --step-zoom 0 skips it.

Prints a markdown table; --out also writes bench/results/fleet.md (or FILE).
"""

import argparse
import datetime
import http.client
import os
import platform
import re
import resource
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import kiln_server as ks  # noqa: E402


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def live_workers(srv):
    return len(srv.cluster()["workers"])


def run_step(srv, args):
    """Submits the L7 scene at --step-zoom and waits for its end; what it
    ran on comes from the step's log."""
    definition = ks.l7_definition("fleet-%d" % args.step_zoom, max_zoom=args.step_zoom)
    t = time.time()
    step = srv.submit(definition, name="fleet step")
    done = srv.wait_step(step["id"], timeout=args.step_timeout)
    wall = time.time() - t
    with open(os.path.join(srv.state_dir, "logs", step["id"] + ".log"), encoding="utf-8",
              errors="replace") as f:
        text = f.read()
    leased = re.findall(r"(partition task \d+|commit task) attempt \d+ leased by (w-[0-9A-Z]+)",
                        text)
    # Which node each worker stood for, from the workers' own logs (a node
    # whose worker restarted has two worker ids).
    node_of = {}
    logs = os.path.join(srv.state_dir, "logs")
    for name in os.listdir(logs):
        if name.startswith("worker-") and name.endswith(".log"):
            with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as f:
                for w in re.findall(r"registered with \S+ as (w-[0-9A-Z]+)", f.read()):
                    node_of[w] = name[len("worker-"):-len(".log")]
    return {"state": done["state"], "wall_s": wall,
            "nodes": len({node_of.get(w, w) for _, w in leased}),
            "partitions": done["progress"]["tasks_total"] - 1,
            "tiles": done["progress"]["tiles_done"],
            "workers": len({w for _, w in leased}),
            "attempts": len(leased),
            "partition_attempts": sum(1 for k, _ in leased if k.startswith("partition"))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--register-timeout", type=float, default=120)
    ap.add_argument("--step-zoom", type=int, default=18,
                    help="max zoom of the step over the fleet (0: no step)")
    ap.add_argument("--step-timeout", type=float, default=1200)
    ap.add_argument("--logs", help="copy the server's state_dir/logs (server, workers, steps) "
                    "to this directory before the server stops, for diagnosis")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "fleet.md"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    group = ("[[group]]\nname = \"core\"\ncore = true\nmarket = \"on_demand\"\n"
             "min_nodes = %d\nmax_nodes = %d\nslots_per_node = 1\nprice_per_hour = 0.1\n"
             % (args.nodes, args.nodes))
    # Leases and heartbeats as examples/kiln.toml has them (15 s, 2 s), not
    # the e2e tests' short ones (5 s, 1 s): the target is about the fleet a
    # real config runs.
    load_start = os.getloadavg()
    srv = ks.KilnServer(extra_toml=group,
                        scheduler={"lease_seconds": 15, "heartbeat_seconds": 2})
    try:
        t0 = time.time()
        srv.start(wait_ready=False)
        srv.wait_ready(timeout=args.register_timeout)
        ready_s = time.time() - t0
        registered_s = None
        seen = 0
        while time.time() - t0 < args.register_timeout:
            seen = live_workers(srv)
            if seen >= args.nodes:
                registered_s = time.time() - t0
                break
            time.sleep(0.2)
        # Let the registration burst settle before measuring idle cost.
        time.sleep(5)
        c0, w0 = cpu_seconds(srv.proc.pid), time.time()
        time.sleep(args.seconds)
        cpu = (cpu_seconds(srv.proc.pid) - c0) / (time.time() - w0)

        lat = []
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        end = time.time() + args.seconds
        while time.time() < end:
            t = time.perf_counter()
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - t)
        conn.close()
        still = live_workers(srv)
        workers_before = {w["id"] for w in srv.cluster()["workers"]}
        load_before = os.getloadavg()
        step = None
        if args.step_zoom > 0:
            step = run_step(srv, args)
        # Workers log their failed calls in their own logs.
        restarts = 0
        logs = os.path.join(srv.state_dir, "logs")
        for name in os.listdir(logs):
            if name.startswith("worker-"):
                with open(os.path.join(logs, name), "rb") as f:
                    restarts += f.read().count(b"cannot reach the server")
        workers_after = {w["id"] for w in srv.cluster()["workers"]}
        if args.logs:
            shutil.copytree(logs, args.logs, dirs_exist_ok=True)
            if os.path.exists(srv.log_path):
                shutil.copy(srv.log_path, os.path.join(args.logs, "kiln-serve.log"))
    finally:
        srv.close()

    lines = [
        "# Fleet: %d local nodes of one slot (bench/fleet_bench.py)" % args.nodes,
        "",
        "%s, %s, %d cores; %s UTC" % (platform.node(), platform.platform(), os.cpu_count(),
                                       datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")),
        "",
        "| nodes | /readyz after s | all registered after s | live at the end | idle server CPU "
        "| /healthz p50 ms | p99 ms | max ms | requests |",
        "|---|---|---|---|---|---|---|---|---|",
        "| %d | %.1f | %s | %d | %.0f%% of a core | %.2f | %.2f | %.2f | %d |" % (
            args.nodes, ready_s, "%.1f" % registered_s if registered_s else
            "not within %ds (%d)" % (args.register_timeout, seen), still, cpu * 100,
            percentile(lat, 50) * 1000, percentile(lat, 99) * 1000, max(lat) * 1000, len(lat)),
        "",
        "'cannot reach the server' lines in the workers' logs: %d (a worker retrying its "
        "registration logs one; the retry is the same registration). 'Live at the end' counts "
        "the workers /v1/cluster lists; the same %s after the step. Load average (1, 5, 15 min) "
        "when the bench started: %.2f %.2f %.2f; before the step: %.2f %.2f %.2f." % (restarts,
                                   "set of workers" if workers_after == workers_before
                                   else "workers but %d new, %d gone" % (
                                       len(workers_after - workers_before),
                                       len(workers_before - workers_after)),
                                   *(load_start + load_before)),
    ]
    if step:
        lines += [
            "",
            "| step | max zoom | plan threads | partitions | tiles | state | wall s "
            "| distinct workers running its tasks | distinct nodes | nodes |",
            "|---|---|---|---|---|---|---|---|---|---|",
            "| L7_ETMs.tif 3,2,1 | %d | %d | %d | %d | %s | %.1f | %d | %d | %d |" % (
                args.step_zoom, min(args.nodes, 256), step["partitions"], step["tiles"],
                step["state"], step["wall_s"], step["workers"], step["nodes"], args.nodes),
            "",
            "Plan threads are the fleet's slots capped at 256 (config::kMaxPlanThreads); the "
            "planner cuts regions of one zoom and makes at least 2 x threads of them only where "
            "the scene's tiles allow, so the partition count is a quadtree level's region count, "
            "not the slot count. %d task attempts leased, %d of them partitions." % (
                step["attempts"], step["partition_attempts"]),
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

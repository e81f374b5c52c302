#!/usr/bin/python3
"""How fast `kiln simulate run` is at the issue's scale: 30 days, up to
1,000 nodes and 100,000 steps (target: under 10 s on this 2-core machine).

    /usr/bin/python3 bench/simulate_bench.py [--kiln PATH] [--steps 100000] [--out [FILE]]

It writes a month with the shipped trace's shape (scripts/make-traces.py
--scale, every rate multiplied until there are about --steps arrivals), a
scenario that is examples/traces/month.toml with the spot group allowed
999 nodes beside the 1-node core, runs `kiln simulate run --json --profile`
once and reports the wall and CPU time of the whole run (all four
strategies), where each strategy's time went (job-store calls, fleet) and
the most nodes the autoscaled cluster had up.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS_AT_SCALE_1 = 16803  # examples/traces/month-workload.csv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=str(REPO / "build" / "src" / "cli" / "kiln"))
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800, help="give up after this many seconds")
    ap.add_argument("--keep", action="store_true", help="keep the generated trace and scenario")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "simulate.md"),
                    help="also write the results as Markdown (default bench/results/simulate.md)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kiln-simbench-")
    try:
        run(args, tmp)
    finally:
        if args.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    scale = args.steps / STEPS_AT_SCALE_1
    subprocess.run([sys.executable, str(REPO / "scripts" / "make-traces.py"), "--out", tmp,
                    "--scale", "%.4f" % scale, "--name", "workload.csv"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(tmp, "workload.csv"), encoding="utf-8") as f:
        steps = sum(1 for _ in f) - 1
    scenario = (REPO / "examples" / "traces" / "month.toml").read_text(encoding="utf-8")
    scenario = scenario.replace('workload = "month-workload.csv"', 'workload = "workload.csv"')
    # The spot group may grow to 999 nodes: 1,000 with the core.
    marker = 'name = "spot"'
    head, tail = scenario.split(marker, 1)
    scenario = head + marker + tail.replace("max_nodes = 100", "max_nodes = 999", 1)
    path = os.path.join(tmp, "scenario.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(scenario)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    try:
        proc = subprocess.run([args.kiln, "simulate", "run", path, "--json", "--profile",
                               "--threads", str(args.threads)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        sys.exit("kiln simulate did not finish within %d s" % args.timeout)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit("kiln simulate failed:\n" + proc.stderr)
    report = json.loads(proc.stdout)
    load = os.getloadavg()

    lines = [
        "# kiln simulate at scale", "",
        "Run: `/usr/bin/python3 bench/simulate_bench.py --steps %d --threads %d` on %s UTC "
        "(%s, %d CPUs, load average %.1f before the run finished)." % (
            args.steps, args.threads, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
            platform.machine(), os.cpu_count(), load[0]),
        "",
        "| measurement | result |", "| --- | --- |",
        "| trace | %d steps, %d tasks, %.0f slot-hours of work over %.1f days |" % (
            steps, report["tasks"], report["work_slot_hours"], report["trace_days"]),
        "| `kiln simulate run`, four strategies, %d threads | **%.1f s wall** (target 10 s), "
        "%.1f s CPU |" % (args.threads, wall, cpu),
    ]
    for s in report["strategies"]:
        lines.append("| %s | cost %.0f, wait p95 %.0f s, %d nodes at most, %d/%d completed |" % (
            s["name"], s["cost"], s["wait_seconds"]["p95"], s["peak_nodes"], s["completed"],
            s["steps"]))
    lines += ["", "Where the time went (CPU time of each call, from `--profile`):", "", "```",
              proc.stderr.rstrip(), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

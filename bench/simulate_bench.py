#!/usr/bin/python3
"""How fast `kiln simulate run` is at the issue's scale: 30 days, up to
1,000 nodes and 100,000 steps (target: under 10 s on this 2-core machine).

    /usr/bin/python3 bench/simulate_bench.py [--steps 100000] [--out [FILE]]

Writes a 30-day workload of --steps arrivals with the shape of the shipped
month trace (scripts/make-traces.py: weekday peaks, a nightly batch, quiet
weekends; its arrivals repeated with jitter until there are enough), and a
scenario whose spot group may grow to 999 nodes beside the core; runs
`kiln simulate run --json` once and reports the wall time (all four
strategies) and the largest number of nodes the autoscaled run had up.
"""

import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=str(REPO / "build" / "src" / "cli" / "kiln"))
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--timeout", type=int, default=1800, help="give up after this many seconds")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "simulate.md"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kiln-simbench-")
    base = REPO / "examples" / "traces"
    rows = []
    with open(base / "month-workload.csv", encoding="utf-8") as f:
        next(f)
        for line in f:
            t, env, tiles = line.strip().split(",")
            rows.append((float(t), env, int(tiles)))
    rng = random.Random(7)
    out_rows = []
    while len(out_rows) < args.steps:
        for t, env, tiles in rows:
            out_rows.append((min(30 * 86400 - 1, max(0, t + rng.uniform(-300, 300))), env, tiles))
            if len(out_rows) >= args.steps:
                break
    out_rows.sort()
    workload = os.path.join(tmp, "workload.csv")
    with open(workload, "w", encoding="utf-8") as f:
        f.write("arrival_s,environment,tiles\n")
        for t, env, tiles in out_rows:
            f.write("%.1f,%s,%d\n" % (t, env, tiles))
    scenario = (base / "month.toml").read_text(encoding="utf-8")
    scenario = scenario.replace('workload = "month-workload.csv"', 'workload = "%s"' % workload)
    scenario = scenario.replace('spot_trace = "spot-month.csv"',
                                'spot_trace = "%s"' % (base / "spot-month.csv"))
    scenario = scenario.replace("max_nodes = 100", "max_nodes = 999")
    path = os.path.join(tmp, "scenario.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(scenario)
    t0 = time.time()
    try:
        proc = subprocess.run([args.kiln, "simulate", "run", path, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        wall = time.time() - t0
        result = "did not finish within %d s" % args.timeout
        report = None
    else:
        wall = time.time() - t0
        if proc.returncode != 0:
            sys.exit("kiln simulate failed:\n" + proc.stderr)
        report = json.loads(proc.stdout)
        result = "%.1f s wall (target 10 s)" % wall
    lines = ["# kiln simulate at scale", "",
             "Run: `/usr/bin/python3 bench/simulate_bench.py --steps %d` on %s UTC, kiln %s" % (
                 args.steps, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), args.kiln),
             "", "| measurement | result |", "| --- | --- |",
             "| %d steps over 30 days, spot group up to 999 nodes, four strategies | %s |" % (
                 args.steps, result)]
    if report:
        for s in report["strategies"]:
            lines.append("| %s | cost %.0f, wait p95 %.0f s, completed %d/%d, %.0f node-h |" % (
                s["name"], s["cost"], s["wait_seconds"]["p95"], s["completed"], s["steps"],
                s["node_hours"]["on_demand"] + s["node_hours"]["spot"]))
        lines.append("| peak demand (nodes of 4 slots) | %d |" % report["peak_nodes"])
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""What the sandbox costs (docs/security.md), side by side in one run.

1. Per-task start overhead: the exact argv a worker builds for a task
   (`kiln task sandbox-argv`: bwrap -> [setpriv] -> kiln, with the task's
   rlimits set between fork and exec and its seccomp program on a
   descriptor, as kiln's launcher starts it) against
   the same kiln command started directly, the same way and with the same
   rlimits; both run `kiln --version`, so the difference is the chain's own
   start and tear-down. Target: <= 20 ms.
2. Ingest throughput: one real `kiln serve` with [sandbox] mode = "bwrap"
   and one with mode = "none", alternating, each ingesting the benchmark
   scene (data/L7_ETMs.tif, bands 3,2,1) as one step; submit -> COMPLETED
   wall time. Target: sandboxed within 5% of unsandboxed.

Run with /usr/bin/python3 after building kiln:

    /usr/bin/python3 bench/sandbox_bench.py [--starts N] [--runs N] [--max-zoom Z]
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import kiln_test as kt  # noqa: E402
from kiln_server import KilnServer, PRODUCTION_TOKEN, l7_definition  # noqa: E402


def time_starts(argv, env, n, limits, seccomp=None):
    """Wall seconds of each of n runs of argv (stdout/stderr discarded),
    each started with `limits` ({"RLIMIT_AS": n, ...}) set in the child and,
    with `seccomp` ((fd, bytes)), the program readable on that fd, as kiln's
    launcher starts a sandbox."""
    def set_limits():
        for name, value in limits.items():
            resource.setrlimit(getattr(resource, name), (value, value))
    out = []
    for _ in range(n):
        fds = ()
        if seccomp:
            fd = os.memfd_create("seccomp", 0)
            os.write(fd, seccomp[1])
            os.lseek(fd, 0, os.SEEK_SET)
            if fd != seccomp[0]:
                os.dup2(fd, seccomp[0], inheritable=True)
                os.close(fd)
            fds = (seccomp[0],)
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           preexec_fn=set_limits, pass_fds=fds)
        if seccomp:
            os.close(seccomp[0])
        out.append(time.perf_counter() - t0)
        if r.returncode != 0:
            sys.exit("error: %s exited %d: %s" % (argv[:3], r.returncode, r.stderr[-500:]))
    return out


def start_overhead(kiln, n):
    cmd = [kiln, "--version"]
    r = subprocess.run([kiln, "task", "sandbox-argv"] + cmd, check=True,
                       stdout=subprocess.PIPE, text=True)
    wrapped = json.loads(r.stdout)
    env = dict(e.split("=", 1) for e in wrapped["env"])
    # Interleave in blocks so drift on a shared machine hits both alike.
    plain, boxed = [], []
    for _ in range(5):
        plain += time_starts(cmd, env, n // 5, wrapped["rlimits"])
        boxed += time_starts(wrapped["argv"], env, n // 5, wrapped["rlimits"],
                             (wrapped["seccomp_fd"], bytes(wrapped["seccomp_program"])))
    return statistics.median(plain), statistics.median(boxed)


def ingest_seconds(mode, max_zoom):
    extra = '[sandbox]\nmode = "%s"\n' % mode
    roots = [d + "/" for d in kt.data_dirs()]
    envs = [{"name": "production", "token": PRODUCTION_TOKEN, "concurrency": 1,
             "source_roots": roots}]
    with KilnServer(environments=envs, extra_toml=extra,
                    executor={"kind": "local", "workers": 1, "slots_per_worker": 2}) as srv:
        t0 = time.perf_counter()
        step = srv.submit(l7_definition("bench", max_zoom=max_zoom))
        done = srv.wait_step(step["id"], timeout=1800)
        dt = time.perf_counter() - t0
        if done["state"] != "COMPLETED":
            sys.exit("error: %s step ended %s: %s" % (mode, done["state"], done.get("failure")))
        return dt, done.get("progress", {}).get("tiles_done") or done.get("tiles_total")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=100, help="task starts per side")
    ap.add_argument("--runs", type=int, default=3, help="ingests per side")
    ap.add_argument("--max-zoom", type=int, default=13,
                    help="deeper than the scene's own zoom makes a longer step")
    args = ap.parse_args()
    kiln = kt.kiln_bin()

    print("# sandbox_bench on %s, %d CPUs, %s, uid %d" % (platform.node(), os.cpu_count(),
                                                          platform.platform(), os.geteuid()))
    plain, boxed = start_overhead(kiln, args.starts)
    print("\n## Task start (`kiln --version`, median of %d)\n" % args.starts)
    print("| | ms |\n|---|---:|")
    print("| plain | %.1f |" % (plain * 1e3))
    print("| sandboxed | %.1f |" % (boxed * 1e3))
    print("| overhead | %.1f (target <= 20) |" % ((boxed - plain) * 1e3))

    times = {"bwrap": [], "none": []}
    for i in range(args.runs):
        for mode in (("none", "bwrap") if i % 2 == 0 else ("bwrap", "none")):
            dt, tiles = ingest_seconds(mode, args.max_zoom)
            times[mode].append(dt)
            print("run %d %-5s %.2f s (%s tiles)" % (i, mode, dt, tiles), flush=True)
    a, b = statistics.median(times["none"]), statistics.median(times["bwrap"])
    print("\n## Ingest of data/L7_ETMs.tif through kiln serve (median of %d)\n" % args.runs)
    print("| | s | ratio |\n|---|---:|---:|")
    print("| unsandboxed | %.2f | 1.00 |" % a)
    print("| sandboxed | %.2f | %.3f (target <= 1.05) |" % (b, b / a))


if __name__ == "__main__":
    main()

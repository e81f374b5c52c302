#!/usr/bin/python3
"""The warm cluster under load: how fast a step starts, how many API reads a
loopback `kiln serve` answers, and whether a burst of submissions loses or
duplicates anything.

    /usr/bin/python3 bench/serve_bench.py [--steps 1000] [--out [FILE]]

Three measurements, each on a fresh `kiln serve` (started and stopped by the
script, config and catalog in a temp dir; tests/e2e/kiln_server.py):

(a) Start latency on a warm, idle cluster. One step at a time, each a tiny
    real ingest (data/L7_ETMs.tif up to zoom 6: one partition, 7 tiles), the
    next submitted only after the previous one ended, so every step finds
    the workers idle and nothing ahead of it in the queue. Reported from the
    server's own clock (created_at -> started_at, millisecond timestamps):
    submit -> RUNNING (the scheduler's wake-up path) and submit -> first task
    leased (the step log's "leased" line: when a worker actually picks the
    work up, which also pays the workers' lease polling). Plus the client's
    view: POST sent -> first GET that no longer says PENDING (polled every
    2 ms, so up to 2 ms pessimistic).
(b) describe and list throughput with wrk (Debian package wrk): 2 threads,
    16 connections, 10 s each, on the server of (a) with its steps in the
    history, once idle and once while a real ingest runs on the same 2
    cores (the situation a busy cluster is in). Skipped with a note when
    wrk is missing.
(c) A burst: --steps steps submitted at once by 50 client threads. All must
    be accepted (201), all must reach a terminal state, the list must hold
    each exactly once and the layer versions must be 1..N without gaps or
    repeats.

Prints a markdown table; --out also writes bench/results/serve.md (or FILE).
"""

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

TINY_ZOOM = 6    # L7 to zoom 6: one partition, a handful of tiles
BUSY_ZOOM = 18   # L7 to zoom 18: an ingest that keeps both cores busy for well over a wrk run


def parse_time(text):
    """Seconds since the epoch of an RFC 3339 UTC timestamp (ms precision)."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def ms(v):
    return "%.1f ms" % (v * 1000)


def first_lease_time(srv, step_id):
    """When the step log says a worker leased its first task (epoch s)."""
    text, _ = srv.logs(step_id)
    for line in text.splitlines():
        if "leased" in line:
            return parse_time(line.split()[0])
    return None


def bench_start_latency(srv, ks, n):
    """(a): submit -> RUNNING and submit -> first lease, one step at a time."""
    rows = []
    definition = ks.l7_definition("tiny", max_zoom=TINY_ZOOM)
    # Warm-up: the first step pays GDAL's and the page cache's first use.
    srv.wait_step(srv.submit(definition)["id"])
    server_run, server_lease, client_run = [], [], []
    for i in range(n):
        t0 = time.time()
        step = srv.submit(definition, name="latency-%d" % i)
        seen = step
        while seen["state"] == "PENDING":
            time.sleep(0.002)
            seen = srv.describe(step["id"])
        client_run.append(time.time() - t0)
        done = srv.wait_step(step["id"])
        if done["state"] != "COMPLETED":
            sys.exit("error: step %s ended %s: %s" % (done["id"], done["state"],
                                                      done.get("failure")))
        created = parse_time(done["created_at"])
        server_run.append(parse_time(done["started_at"]) - created)
        leased = first_lease_time(srv, done["id"])
        if leased is not None:
            server_lease.append(leased - created)
    for name, values in (("submit -> RUNNING (server clock)", server_run),
                         ("submit -> first task leased (server clock)", server_lease),
                         ("POST sent -> seen not PENDING (client, 2 ms polls)", client_run)):
        if values:
            rows.append(("(a) " + name, "p50 %s, p99 %s, max %s (%d steps)"
                         % (ms(percentile(values, 50)), ms(percentile(values, 99)),
                            ms(max(values)), len(values))))
        else:
            rows.append(("(a) " + name, "no data (the step log has no 'leased' lines)"))
    return rows


WRK_LUA = """wrk.headers["Authorization"] = "Bearer %s"
"""


def run_wrk(wrk, url, script, seconds, connections=16):
    """(requests/s, p99 latency text, non-2xx count) of one wrk run."""
    out = subprocess.run([wrk, "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency",
                          "-s", script, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if not rps or not p99:
        sys.exit("error: cannot read wrk's output:\n" + out)
    return float(rps.group(1)), p99.group(1), int(non2xx.group(1)) if non2xx else 0


def bench_read_throughput(srv, ks, seconds):
    """(b): wrk on describe and list, idle and while an ingest runs."""
    wrk = shutil.which("wrk")
    if not wrk:
        return [("(b) describe / list throughput", "skipped: wrk not installed (Debian package wrk)")]
    rows = []
    page = srv.list_steps(limit=1)
    if not page["steps"]:
        srv.wait_step(srv.submit(ks.l7_definition("history", max_zoom=TINY_ZOOM))["id"])
        page = srv.list_steps(limit=1)
    history = len(srv.list_steps(limit=1000)["steps"])
    script = os.path.join(srv.tmp, "auth.lua")
    with open(script, "w", encoding="utf-8") as f:
        f.write(WRK_LUA % ks.PRODUCTION_TOKEN)
    busy_def = ks.l7_definition("busy", max_zoom=BUSY_ZOOM)
    for label, path in (("describe GET /v1/steps/{id}", "/v1/steps/" + page["steps"][0]["id"]),
                        ("list GET /v1/steps?limit=50", "/v1/steps?limit=50")):
        rps, p99, bad = run_wrk(wrk, srv.url + path, script, seconds)
        rows.append(("(b) %s, idle (%d steps in history)" % (label, history),
                     "%.0f req/s, p99 %s, %d non-2xx" % (rps, p99, bad)))
        busy = srv.submit(busy_def)
        srv.wait_running(busy["id"], tiles_done=1)
        rps, p99, bad = run_wrk(wrk, srv.url + path, script, seconds)
        still = srv.describe(busy["id"])["state"]
        srv.cancel(busy["id"], signal_name="KILL")
        srv.wait_step(busy["id"])
        note = "" if still == "RUNNING" else " (the ingest ended during the run)"
        rows.append(("(b) %s, ingest running" % label,
                     "%.0f req/s, p99 %s, %d non-2xx%s" % (rps, p99, bad, note)))
    return rows


def bench_burst(ks, n, threads):
    """(c): n steps submitted by `threads` client threads at once."""
    with ks.KilnServer(environments=[
            {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 4}]) as srv:
        definition = ks.l7_definition("burst", max_zoom=TINY_ZOOM)
        statuses, ids, lock = [], [], threading.Lock()

        def submit(i):
            r = srv.request("POST", "/v1/steps",
                            body={"name": "burst-%d" % i, "action": {"ingest": definition}})
            with lock:
                statuses.append(r.status)
                if r.status == 201:
                    ids.append(r.json()["id"])

        t0 = time.time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(submit, range(n)))
        submit_s = time.time() - t0
        accepted = statuses.count(201)
        final = {}
        for sid in ids:
            final[sid] = srv.wait_step(sid, timeout=3600)
        drain_s = time.time() - t0
        listed, marker = [], None
        while True:
            page = srv.list_steps(limit=1000, marker=marker)
            listed += [s["id"] for s in page["steps"]]
            marker = page.get("next_marker")
            if not marker:
                break
        states = {}
        for s in final.values():
            states[s["state"]] = states.get(s["state"], 0) + 1
        versions = sorted(s["version"] for s in final.values() if s["state"] == "COMPLETED")
        on_disk = ks.layer_versions(srv.catalog, "production", "burst")
    problems = []
    if accepted != n:
        problems.append("%d of %d accepted" % (accepted, n))
    if len(set(ids)) != len(ids):
        problems.append("duplicate ids")
    if sorted(listed) != sorted(ids):
        problems.append("list holds %d steps, %d submitted" % (len(listed), len(ids)))
    if any(s not in ks.TERMINAL for s in states):
        problems.append("not terminal: %s" % states)
    if versions != list(range(1, len(versions) + 1)):
        problems.append("versions are not 1..%d" % len(versions))
    if len(on_disk) != len(versions):
        problems.append("%d versions on disk, %d completed" % (len(on_disk), len(versions)))
    verdict = "OK" if not problems else "FAILED: " + "; ".join(problems)
    return [("(c) %d steps from %d threads: accepted" % (n, threads),
             "%d/%d in %.1f s (%.0f submits/s)" % (accepted, n, submit_s, n / submit_s)),
            ("(c) terminal states", ", ".join("%s %d" % kv for kv in sorted(states.items()))
             + "; all ended after %.0f s" % drain_s),
            ("(c) lost / duplicated", verdict)], not problems


def source_note(kiln):
    """Which kiln was measured: its path and build time, the checkout's
    commit and whether the tree had uncommitted changes. Taken at the start,
    so a commit landing during a long run is not credited with it."""
    def git(*a):
        return subprocess.run(["git", "-C", str(REPO)] + list(a), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(kiln), datetime.timezone.utc)
    dirty = " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return "%s built %s UTC; checkout at %s%s" % (kiln, built.strftime("%Y-%m-%d %H:%M"),
                                                  git("rev-parse", "--short", "HEAD"), dirty)


def machine_note():
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s" % (cpu or platform.machine(), os.cpu_count(), platform.platform())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=str(REPO / "build" / "src" / "cli" / "kiln"),
                    help="kiln binary (default build/src/cli/kiln)")
    ap.add_argument("--steps", type=int, default=1000, help="steps for (a) and (c)")
    ap.add_argument("--threads", type=int, default=50, help="client threads for (c)")
    ap.add_argument("--wrk-seconds", type=int, default=10, help="duration of each wrk run")
    ap.add_argument("--only", default="a,b,c", help="which parts to run, e.g. a,c")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "serve.md"),
                    help="also write the report (default bench/results/serve.md)")
    args = ap.parse_args()
    if not os.path.isfile(args.kiln):
        sys.exit("error: no kiln binary at %s (make build, or --kiln PATH)" % args.kiln)
    os.environ["KILN_BIN"] = os.path.abspath(args.kiln)
    os.environ.setdefault("KILN_SOURCE_DIR", str(REPO))
    import kiln_server as ks  # after KILN_BIN is set

    kiln_note = source_note(args.kiln)
    parts = set(args.only.split(","))
    rows, ok = [], True
    if parts & {"a", "b"}:
        # (b) reads from the history (a) leaves: one server for both.
        with ks.KilnServer() as srv:
            if "a" in parts:
                r = bench_start_latency(srv, ks, args.steps)
                rows += r
                print("\n".join("| %s | %s |" % row for row in r), flush=True)
            if "b" in parts:
                r = bench_read_throughput(srv, ks, args.wrk_seconds)
                rows += r
                print("\n".join("| %s | %s |" % row for row in r), flush=True)
    if "c" in parts:
        r, ok = bench_burst(ks, args.steps, args.threads)
        rows += r
        print("\n".join("| %s | %s |" % row for row in r), flush=True)

    report = ["# kiln serve benchmark", "",
              "Machine: " + machine_note(), "",
              "Kiln: " + kiln_note, "",
              "Run: `/usr/bin/python3 bench/serve_bench.py --steps %d --threads %d` on %s UTC."
              % (args.steps, args.threads,
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
              "Every server: 1 local worker with 2 slots, default scheduler settings but "
              "lease 5 s / heartbeat 1 s; steps are real ingests of data/L7_ETMs.tif "
              "(zoom 0-%d: one partition task and the commit task). wrk: 2 threads, 16 "
              "connections, %d s per run; the running ingest is L7 to zoom %d."
              % (TINY_ZOOM, args.wrk_seconds, BUSY_ZOOM), "",
              "| measurement | result |", "| --- | --- |"]
    report += ["| %s | %s |" % row for row in rows]
    text = "\n".join(report) + "\n"
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print("wrote", args.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""EMR endpoint under sensor load: dozens of Airflow-style EmrStepSensors
polling DescribeStep, the call EMR throttles at a few per second.

    /usr/bin/python3 bench/emr_bench.py [--sensors 48] [--seconds 10] [--out [FILE]]

One `kiln serve` (started and stopped by the script; tests/e2e/emr_helpers.py)
with the EMR endpoint at its default settings, in particular the default
per-key rate limit: every sensor signs with the same access key, as one
Airflow deployment's connection does. --sensors steps are added with
AddJobFlowSteps (boto3, command-runner.jar `kiln ingest`, tiny real ingests
of data/L7_ETMs.tif) and run to COMPLETED first.

(a) boto3 sensors: --sensors threads, each with its own boto3 client (retries
    off, so a ThrottlingException shows instead of being retried), call
    describe_step on its step back to back for --seconds, i.e. far more
    often than any EmrStepSensor's poke_interval. Counts calls, throttles
    and other errors. Python's GIL bounds the call rate here; (b) measures
    what the server can take.
(b) wrk (Debian package wrk): --sensors connections replay DescribeStep
    requests signed by botocore (one per step; SigV4 allows a signed request
    to be sent again within its 15-minute window, and the server verifies
    every one in full), --seconds each. Paced to offer --rate calls/s in all
    (wrk's delay() between a connection's calls), once idle and once while a
    real ingest runs on the same 2 cores: every call must succeed. Then flat
    out while the ingest runs, which shows the per-key limit at work above
    its rate. Reports requests/s, p99 latency and non-2xx answers (a
    throttled call is a 400).

Prints a markdown table; --out also writes bench/results/emr.md (or FILE).
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import botocore.exceptions  # noqa: E402
import emr_helpers  # noqa: E402
import kiln_server as ks  # noqa: E402
import serve_bench as sb  # noqa: E402  (percentile, run_wrk, notes)

TINY_ZOOM = 4
BUSY_ZOOM = 18


def lua_string(s):
    """`s` as a double-quoted Lua string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def replay_script(path, requests, delay_ms=0):
    """A wrk script that cycles through `requests` [(headers, body)]; with
    delay_ms, each connection waits that long between its requests (wrk's
    delay() hook), which paces the offered load."""
    lines = ["local reqs = {}", "init = function(args)"]
    for headers, body in requests:
        h = ", ".join("[%s] = %s" % (lua_string(k), lua_string(v)) for k, v in headers.items())
        lines.append('  reqs[#reqs + 1] = wrk.format("POST", "/", {%s}, %s)' % (h, lua_string(body)))
    lines += ["end", "local i = 0",
              "request = function()", "  i = i % #reqs + 1", "  return reqs[i]", "end"]
    if delay_ms > 0:
        lines += ["delay = function()", "  return %d" % delay_ms, "end"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def add_steps(emr, srv, n):
    """n tiny ingests through AddJobFlowSteps; waits until all COMPLETED."""
    cluster = emr.list_clusters()["Clusters"][0]["Id"]
    ids = []
    for i in range(n):
        path = emr_helpers.write_definition(
            srv, "sensor-%d" % i, ks.l7_definition("sensor-%d" % i, max_zoom=TINY_ZOOM))
        ids += emr.add_job_flow_steps(
            JobFlowId=cluster,
            Steps=[emr_helpers.kiln_ingest_step("sensor-%d" % i, path)])["StepIds"]
    waiter = emr.get_waiter("step_complete")
    for sid in ids:
        waiter.wait(ClusterId=cluster, StepId=sid, WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    return cluster, ids


def bench_boto3_sensors(srv, cluster, ids, seconds):
    """(a): one boto3 client per sensor, describe_step back to back."""
    counts = {"ok": 0, "throttled": 0, "other": 0}
    latencies = []
    lock = threading.Lock()
    deadline = time.time() + seconds
    errors = []

    def sensor(step_id):
        client = emr_helpers.emr_client(srv, emr_helpers.PRODUCTION_KEY, max_attempts=1)
        mine = {"ok": 0, "throttled": 0, "other": 0}
        lat = []
        try:
            while time.time() < deadline:
                t0 = time.perf_counter()
                try:
                    state = client.describe_step(ClusterId=cluster, StepId=step_id)[
                        "Step"]["Status"]["State"]
                    mine["ok" if state == "COMPLETED" else "other"] += 1
                except botocore.exceptions.ClientError as e:
                    code = emr_helpers.error_of(e)[1]
                    mine["throttled" if code == "ThrottlingException" else "other"] += 1
                    if code != "ThrottlingException" and len(errors) < 3:
                        errors.append(str(e))
                lat.append(time.perf_counter() - t0)
        finally:
            client.close()
        with lock:
            for k, v in mine.items():
                counts[k] += v
            latencies.extend(lat)

    threads = [threading.Thread(target=sensor, args=(sid,)) for sid in ids]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    total = sum(counts.values())
    result = ("%d calls in %.1f s (%.0f/s), %d throttled, %d other errors; "
              "latency p50 %s, p99 %s" % (
                  total, elapsed, total / elapsed, counts["throttled"], counts["other"],
                  sb.ms(sb.percentile(latencies, 50)), sb.ms(sb.percentile(latencies, 99))))
    if errors:
        result += "; first error: " + errors[0]
    return [("(a) %d boto3 sensors polling describe_step, one access key" % len(ids), result)], \
        counts["throttled"] == 0 and counts["other"] == 0


def bench_replay(srv, cluster, ids, seconds, wrk, rate):
    """(b): wrk replaying botocore-signed DescribeStep calls."""
    requests = []
    for sid in ids:
        body = json.dumps({"ClusterId": cluster, "StepId": sid}).encode()
        headers = emr_helpers.signed_headers(srv, emr_helpers.PRODUCTION_KEY, "DescribeStep", body)
        # A replayed request must be what the sensor would see: check one.
        r = emr_helpers.raw_post(srv, headers, body)
        if r.status != 200 or r.json()["Step"]["Id"] != sid:
            sys.exit("error: signed DescribeStep of %s answered %d: %s" % (sid, r.status, r.text))
        requests.append((headers, body.decode()))
    # Paced: each connection waits so that together they offer about
    # `rate` calls/s, the warm-cluster issue's 5,000 plus a margin.
    paced = os.path.join(srv.tmp, "describe-paced.lua")
    delay_ms = max(1, int(round(1000.0 * len(ids) / rate)))
    replay_script(paced, requests, delay_ms=delay_ms)
    flood = os.path.join(srv.tmp, "describe-flood.lua")
    replay_script(flood, requests)
    rows, ok = [], True
    label = "(b) DescribeStep, %d connections replaying signed calls" % len(ids)
    offered = "offered ~%d/s (%d ms between a connection's calls)" % (
        1000 * len(ids) // delay_ms, delay_ms)
    busy = None
    for phase in ("idle", "ingest running"):
        if phase == "ingest running":
            busy = srv.submit(ks.l7_definition("busy", max_zoom=BUSY_ZOOM))
            srv.wait_running(busy["id"], tiles_done=1)
        rps, p99, bad = sb.run_wrk(wrk, srv.url + "/", paced, seconds, connections=len(ids))
        rows.append(("%s, paced, %s" % (label, phase),
                     "%s: %.0f req/s, p99 %s, %d non-2xx" % (offered, rps, p99, bad)))
        ok = ok and bad == 0
    rps, p99, bad = sb.run_wrk(wrk, srv.url + "/", flood, seconds, connections=len(ids))
    still = srv.describe(busy["id"])["state"]
    srv.cancel(busy["id"], signal_name="KILL")
    srv.wait_step(busy["id"])
    note = "" if still == "RUNNING" else " (the ingest ended during the runs)"
    rows.append(("%s, flat out, ingest running" % label,
                 "%.0f req/s answered, p99 %s, %d non-2xx: the per-key limit (default "
                 "10,000/s) throttling what goes over it%s" % (rps, p99, bad, note)))
    return rows, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", default=str(REPO / "build" / "src" / "cli" / "kiln"),
                    help="the kiln binary to measure")
    ap.add_argument("--sensors", type=int, default=48, help="sensors (steps polled at once)")
    ap.add_argument("--seconds", type=int, default=10, help="duration of each measurement")
    ap.add_argument("--rate", type=int, default=7000,
                    help="calls/s the paced wrk runs offer in all (default 7000)")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "emr.md"),
                    help="also write the table to this file")
    args = ap.parse_args()
    os.environ["KILN_BIN"] = os.path.abspath(args.kiln)
    if not os.path.isfile(args.kiln):
        sys.exit("error: no kiln binary at %s (build first, or pass --kiln)" % args.kiln)
    source = sb.source_note(args.kiln)
    started = datetime.datetime.now(datetime.timezone.utc)

    rows, ok = [], True
    with emr_helpers.EmrServer() as srv:
        emr = srv.client(emr_helpers.PRODUCTION_KEY)
        t0 = time.time()
        cluster, ids = add_steps(emr, srv, args.sensors)
        print("%d steps added and completed in %.1f s" % (len(ids), time.time() - t0),
              file=sys.stderr)
        r, good = bench_boto3_sensors(srv, cluster, ids, args.seconds)
        rows += r
        ok = ok and good
        wrk = shutil.which("wrk")
        if wrk:
            r, good = bench_replay(srv, cluster, ids, args.seconds, wrk, args.rate)
            rows += r
            ok = ok and good
        else:
            rows.append(("(b) wrk replay", "skipped: wrk not installed (Debian package wrk)"))

    text = "\n".join([
        "# EMR endpoint: sensors polling DescribeStep",
        "",
        "Machine: " + sb.machine_note(),
        "",
        "Kiln: " + source,
        "",
        "Run: `/usr/bin/python3 bench/emr_bench.py --sensors %d --seconds %d` on %s UTC. "
        "One kiln serve, EMR endpoint at its default settings (per-key limit included), "
        "1 local worker with 2 slots; every call signed with the same access key. wrk: 2 threads."
        % (args.sensors, args.seconds, started.strftime("%Y-%m-%d %H:%M")),
        "",
        "| measurement | result |",
        "| --- | --- |",
    ] + ["| %s | %s |" % r for r in rows]) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

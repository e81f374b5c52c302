#!/usr/bin/python3
"""Stored tiles over HTTP (issue 15, "Speed"): `kiln serve`'s tile door
against nginx serving the same tile files, side by side in one run.

    /usr/bin/python3 bench/tiles_bench.py [--kiln build/src/cli/kiln] [--seconds 15]
                                          [--rounds 2] [--max-zoom Z] [--out [FILE]]
                                          [--compare-kiln OTHER_KILN]

1. One fresh `kiln serve` (tests/e2e/kiln_server.py: config, state and
   catalog in a temp dir; started and stopped by PID) ingests the demo layer
   (data/L7_ETMs.tif bands 3,2,1, PNG, zooms 0 to --max-zoom, default 15:
   161 tiles) into production's catalog. Production's request quota is
   raised to 10,000,000/s (the default, 10,000/s, would answer 429 above
   it). With --compare-kiln, a second server runs that binary (an earlier
   build, say) with the same layer and is measured in every round too.
2. nginx (Debian package nginx; `apt-get install nginx`) is started by the
   script with a config of its own: 127.0.0.1 on a free port, 2 worker
   processes, the layer's published version directory as its root,
   keep-alive, sendfile, access_log off, no open_file_cache (Debian's
   default config has none either); in the foreground, stopped by PID.
3. wrk (Debian package wrk), 2 threads, 64 keep-alive connections,
   --seconds per run, with a Lua script that cycles every thread over all
   the layer's stored tiles (each thread from another offset):
   kiln: GET /v1/layers/<layer>/tiles/{z}/{x}/{y}.png with
   `Authorization: Bearer <token>`; nginx: GET /{z}/{x}/{y}.png of the same
   files, with the same header (ignored) so both read requests of the same
   size. Both servers keep connections open for the whole run (nginx's
   keepalive_requests is raised to 1,000,000; kiln has no such limit).
   Before timing, a sample of tiles is fetched from both and compared with
   the stored bytes.

Each of --rounds rounds runs kiln then nginx, reversed every other round,
so a change in the machine's load hits both. Reported per run: requests/s,
p50, p99 (wrk --latency), non-2xx answers, and the CPU the server used
(user + system of its processes, in cores); per round the ratio kiln /
nginx of requests/s. The load average is recorded before and after.

Targets (issue 15): kiln >= 0.7x nginx's requests/s, kiln p99 <= 10 ms.
wrk shares the 2 cores with the server under test, as a real loopback
client would; neither server is pinned. Prints a markdown report; --out
also writes bench/results/tiles.md (or FILE).
"""

import argparse
import contextlib
import datetime
import http.client
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

LAYER = "tiles-bench"
CONNECTIONS = 64
WRK_THREADS = 2
SAMPLE_CHECKS = 50
QUOTA = 10_000_000  # production's requests_per_second and request_burst
DEFAULT_MAX_ZOOM = 15

NGINX_CONF = """worker_processes 2;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
{user}
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {{ image/png png; image/webp webp; image/tiff tif; }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""

# Every wrk thread has its own Lua state: setup() hands each an offset, so
# the two threads walk the tile list from different places.
WRK_LUA = """local threads = 0
function setup(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end
local paths = {}
local i = 0
function init(args)
  for line in io.lines("%(list)s") do paths[#paths + 1] = line end
  i = offset %% #paths
end
local headers = { ["Authorization"] = "Bearer %(token)s" }
function request()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], headers)
end
"""


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tree_pids(root):
    """root and every process below it (by /proc/*/stat's parent pids)."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent[int(d)] = int(fields[1])
        except OSError:
            continue
    out, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        for child, pp in parent.items():
            if pp == p and child not in out:
                out.add(child)
                frontier.append(child)
    return out


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        sys.exit("error: cannot read wrk's latency %r" % text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def run_wrk(wrk, url, script, seconds, pids):
    """One wrk run: requests/s, p50 and p99 (ms), non-2xx, server CPU (cores)."""
    cpu0, t0 = cpu_seconds(pids), time.time()
    out = subprocess.run([wrk, "-t%d" % WRK_THREADS, "-c%d" % CONNECTIONS, "-d%ds" % seconds,
                          "--latency", "-s", script, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False).stdout
    cores = (cpu_seconds(pids) - cpu0) / (time.time() - t0)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if not rps or not p50 or not p99:
        sys.exit("error: cannot read wrk's output:\n" + out)
    return {"rps": float(rps.group(1)), "p50": to_ms(p50.group(1)), "p99": to_ms(p99.group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(0) if errors else "", "cores": cores}


def fetch(port, path, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def wait_port(port, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit("error: %s exited with %d before listening" % (what, proc.returncode))
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("error: %s did not listen on 127.0.0.1:%d within %d s" % (what, port, timeout))


class Nginx:
    """nginx in the foreground with the config above, stopped by PID."""

    def __init__(self, binary, tmp, root, port):
        self.tmp = os.path.join(tmp, "nginx")
        os.makedirs(self.tmp, exist_ok=True)
        self.port = port
        self.conf = os.path.join(self.tmp, "nginx.conf")
        # As root nginx's workers would run as nobody; they must read the
        # catalog, which kiln serve keeps private to its own user.
        user = "user root;" if os.geteuid() == 0 else ""
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, port=port, root=root, user=user))
        self.binary = binary
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.tmp, "stderr.log"), "wb")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf, "-p", self.tmp],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "nginx")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()


def describe_binary(path):
    st = os.stat(path)
    return "built %s UTC" % datetime.datetime.utcfromtimestamp(st.st_mtime).strftime(
        "%Y-%m-%d %H:%M")


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", default=str(REPO / "build" / "src" / "cli" / "kiln"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--seconds", type=int, default=15, help="per wrk run (default 15)")
    ap.add_argument("--rounds", type=int, default=2, help="kiln + nginx runs (default 2)")
    ap.add_argument("--max-zoom", type=int, default=DEFAULT_MAX_ZOOM,
                    help="ingest to this zoom (default %d)" % DEFAULT_MAX_ZOOM)
    ap.add_argument("--http-threads", type=int, default=None,
                    help="[server] http_threads of the kiln servers (default: kiln's own)")
    ap.add_argument("--compare-kiln", metavar="PATH",
                    help="also run this other kiln binary (e.g. a build of an earlier commit) "
                         "in every round, on a server of its own with the same layer")
    ap.add_argument("--out", nargs="?", const=str(REPO / "bench" / "results" / "tiles.md"))
    args = ap.parse_args()

    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("error: wrk not found: apt-get install wrk (scripts/install-deps.sh)")
    if not os.path.isfile(args.nginx) or not os.access(args.nginx, os.X_OK):
        sys.exit("error: nginx not found at %s: apt-get install nginx (scripts/install-deps.sh)"
                 % args.nginx)
    if not os.path.isfile(args.kiln):
        sys.exit("error: kiln binary not found at %s (build it, or pass --kiln)" % args.kiln)

    work = tempfile.mkdtemp(prefix="kiln-tiles-bench-")
    os.chmod(work, 0o755)
    # The binary is copied first, so a rebuild during the run cannot swap it.
    kiln = os.path.join(work, "kiln")
    shutil.copy2(args.kiln, kiln)
    other = None
    if args.compare_kiln:
        if not os.path.isfile(args.compare_kiln):
            sys.exit("error: --compare-kiln: no file %s" % args.compare_kiln)
        other = os.path.join(work, "kiln-compared")
        shutil.copy2(args.compare_kiln, other)
    os.environ["KILN_BIN"] = kiln
    import kiln_server as ks  # noqa: E402  (reads KILN_BIN when it starts a server)
    import kiln_test as kt  # noqa: E402

    load_before = load_average()
    started = datetime.datetime.utcnow()
    runs = []  # (round, server, result)
    nginx = None
    try:
        serve_tmp = os.path.join(work, "serve")
        os.makedirs(serve_tmp, mode=0o755)
        # Production's request quota (default 10,000/s, both doors together)
        # would answer 429 past that rate: raised here, as an operator
        # serving maps would, so the run measures the tile door.
        envs = [{"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 2,
                 "settings": {"requests_per_second": QUOTA, "request_burst": QUOTA}}]
        with contextlib.ExitStack() as stack:
            server = {"http_threads": args.http_threads} if args.http_threads else None
            srv = stack.enter_context(ks.KilnServer(tmp=serve_tmp, environments=envs,
                                                    server=server))
            srv2 = None
            if other:
                other_tmp = os.path.join(work, "serve-compared")
                os.makedirs(other_tmp, mode=0o755)
                os.environ["KILN_BIN"] = other
                srv2 = stack.enter_context(ks.KilnServer(tmp=other_tmp, environments=envs,
                                                         server=server))
                os.environ["KILN_BIN"] = kiln
            for s_ in [srv] + ([srv2] if srv2 else []):
                step = s_.wait_step(s_.submit(ks.l7_definition(LAYER,
                                                               max_zoom=args.max_zoom))["id"])
                if step["state"] != "COMPLETED":
                    sys.exit("error: the ingest did not complete: %r" % step)
            vdir = os.path.realpath(kt.current_dir(srv.catalog, "production", LAYER))
            tiles = kt.list_tiles(vdir)
            paths = sorted((z, x, y) for z, t in tiles.items() for (x, y) in t)
            if not paths:
                sys.exit("error: the layer has no tiles")
            tile_bytes = sum(os.path.getsize(tiles[z][(x, y)]) for z, x, y in paths)

            nginx = Nginx(args.nginx, work, vdir, ks.free_port())
            nginx.start()

            targets = {
                "kiln": (srv.port, "/v1/layers/%s/tiles/%%d/%%d/%%d.png" % LAYER,
                         tree_pids(srv.proc.pid)),
                "nginx": (nginx.port, "/%d/%d/%d.png", tree_pids(nginx.proc.pid)),
            }
            # The kiln serve tree holds its workers too: count only the
            # server process itself (the workers idle, heartbeating).
            targets["kiln"] = (targets["kiln"][0], targets["kiln"][1], {srv.proc.pid})
            if srv2:
                targets["compared"] = (srv2.port, targets["kiln"][1], {srv2.proc.pid})

            # Both answer every sampled tile with the stored bytes.
            rng = random.Random(15)
            for z, x, y in rng.sample(paths, min(SAMPLE_CHECKS, len(paths))):
                with open(tiles[z][(x, y)], "rb") as f:
                    stored = f.read()
                for name, (port, pattern, _) in targets.items():
                    status, body = fetch(port, pattern % (z, x, y), ks.PRODUCTION_TOKEN)
                    if status != 200 or body != stored:
                        sys.exit("error: %s answered %d/%d/%d with %d, %d bytes (stored: %d)"
                                 % (name, z, x, y, status, len(body), len(stored)))

            scripts = {}
            for name, (port, pattern, _) in targets.items():
                listing = os.path.join(work, name + "-paths.txt")
                order = list(paths)
                random.Random(1).shuffle(order)  # neighbours of a walk are not neighbours on disk
                with open(listing, "w", encoding="utf-8") as f:
                    for z, x, y in order:
                        f.write(pattern % (z, x, y) + "\n")
                scripts[name] = os.path.join(work, name + ".lua")
                with open(scripts[name], "w", encoding="utf-8") as f:
                    f.write(WRK_LUA % {"list": listing, "token": ks.PRODUCTION_TOKEN})

            for r in range(args.rounds):
                order = ["kiln", "nginx"] + (["compared"] if srv2 else [])
                if r % 2:
                    order.reverse()
                for name in order:
                    port, _, pids = targets[name]
                    res = run_wrk(wrk, "http://127.0.0.1:%d" % port, scripts[name],
                                  args.seconds, pids)
                    print("round %d %-8s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d  "
                          "server %.2f cores (%.0f us/request), load %s %s"
                          % (r + 1, name, res["rps"], res["p50"], res["p99"], res["non2xx"],
                             res["cores"], res["cores"] / res["rps"] * 1e6, load_average(),
                             res["errors"]), flush=True)
                    runs.append((r + 1, name, res))
            nginx.stop()
            nginx = None
    finally:
        if nginx:
            nginx.stop()
    load_after = load_average()
    shutil.rmtree(work, ignore_errors=True)

    lines = ["# Stored tiles over HTTP: kiln serve against nginx (bench/tiles_bench.py)", ""]
    lines.append("%s, %s, %d cores; %s UTC; load average (1/5/15 min) before %s, after %s"
                 % (platform.node(), platform.platform(), os.cpu_count(),
                    started.strftime("%Y-%m-%d %H:%M"), load_before, load_after))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, text=True, check=False).stdout.strip()
    nginx_version = subprocess.run([args.nginx, "-v"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   check=False).stdout.strip()
    lines.append("")
    if args.http_threads:
        lines.append("kiln servers with http_threads = %d." % args.http_threads)
        lines.append("")
    lines.append("kiln %s%s; %s; wrk %d threads, %d keep-alive connections, %d s a run; "
                 "layer: L7_ETMs.tif bands 3,2,1, PNG, %d stored tiles (zooms %d-%d, %.1f KiB "
                 "mean), walked in a shuffled order."
                 % (commit, " (uncommitted changes)" if dirty else "", nginx_version,
                    WRK_THREADS, CONNECTIONS, args.seconds, len(paths), paths[0][0],
                    max(p[0] for p in paths), tile_bytes / len(paths) / 1024))
    busiest = max(float(load_before.split()[0]), float(load_after.split()[0]))
    if busiest > os.cpu_count():
        lines.append("")
        lines.append("The machine was busy with other work (1-minute load average up to %.1f on %d "
                     "cores): both servers' requests/s move with it from run to run, more than "
                     "anything measured here; server CPU per request is the steadier figure."
                     % (busiest, os.cpu_count()))
    if other:
        lines.append("")
        lines.append("\"compared\" is %s (%s), on a server of its own with the same layer."
                     % (args.compare_kiln, describe_binary(args.compare_kiln)))
    lines.append("")
    lines.append("| round | server | requests/s | p50 ms | p99 ms | non-2xx | server CPU (cores) "
                 "| server CPU µs per request |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for rnd, name, res in runs:
        lines.append("| %d | %s | %.0f | %.2f | %.2f | %d | %.2f | %.0f |"
                     % (rnd, name, res["rps"], res["p50"], res["p99"], res["non2xx"],
                        res["cores"], res["cores"] / res["rps"] * 1e6))
    lines.append("")
    ratios = []
    for rnd in range(1, args.rounds + 1):
        by = {name: res for r, name, res in runs if r == rnd}
        ratios.append(by["kiln"]["rps"] / by["nginx"]["rps"])
    kiln_p99 = max(res["p99"] for _, name, res in runs if name == "kiln")
    ratio = median(ratios)
    lines.append("kiln / nginx requests/s per round: %s; median %.2f (target >= 0.7: %s). "
                 "kiln p99, worst run: %.2f ms (target <= 10: %s)."
                 % (", ".join("%.2f" % q for q in ratios), ratio,
                    "met" if ratio >= 0.7 else "MISSED", kiln_p99,
                    "met" if kiln_p99 <= 10 else "MISSED"))
    if other:
        cratios = []
        for rnd in range(1, args.rounds + 1):
            by = {name: res for r, name, res in runs if r == rnd}
            cratios.append(by["compared"]["rps"] / by["nginx"]["rps"])
        cpu = {name: median([res["cores"] / res["rps"] * 1e6 for _, n, res in runs if n == name])
               for name in ("kiln", "compared")}
        lines.append("")
        lines.append("compared / nginx requests/s per round: %s. Server CPU per request, median: "
                     "kiln %.0f µs, compared %.0f µs."
                     % (", ".join("%.2f" % q for q in cratios), cpu["kiln"], cpu["compared"]))
    bad = sum(res["non2xx"] for _, _, res in runs)
    if bad:
        lines.append("")
        lines.append("WARNING: %d non-2xx answers: the requests/s above count them." % bad)
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

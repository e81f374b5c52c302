#!/usr/bin/python3
"""Rendered tiles over HTTP (issue 15): uint16 -> rescale -> PNG, 256 px,
from `kiln serve`'s tile endpoint, with the renderers in their sandbox.

    /usr/bin/python3 bench/render_serve_bench.py [--seconds 15] [--connections 8]
                                                 [--processes 2] [--out [FILE]]

One fresh `kiln serve` (started and stopped by PID by tests/e2e/kiln_server.py)
ingests tests/data/rt_mosaic_cog1.crop.tif (real Landsat uint16) twice as tif
layers to zoom 11 (two past the scene's own): band 1 alone (the target's
case, the same work as kiln_render_bench's tile) and all three bands. For
each, `wrk` (keep-alive, 2 threads, --connections) asks for every stored
tile of the deepest zoom as .png?bidx=1&rescale=7000,12000, cycling, for
--seconds. Side by side in the same run: build/bench/kiln_render_bench (the
same work in one process, no HTTP, no sandbox, no pipe) on 2 threads, whose
phases give the codec's share. Reports tiles/s, p50/p99 and the ratio HTTP
/ in-process. Target: >= 1,000 tiles/s on 2 cores,
p99 <= 50 ms. --out writes bench/results/render_serve.md (or FILE).
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import kiln_server as ks  # noqa: E402
import kiln_test as kt  # noqa: E402

LAYER = "bench-u16"
QUERY = "bidx=1&rescale=7000,12000"


def wrk_latency(text, label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    if not m:
        return None
    v = float(m.group(1))
    return v / 1000.0 if m.group(2) == "us" else (v if m.group(2) == "ms" else v * 1000.0)


def run_wrk(port, paths, token, seconds, connections):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % token)
        f.write("local paths = {%s}\n" % ",".join('"%s"' % p for p in paths))
        f.write("local i = 0\n"
                "request = function()\n"
                "  i = i % #paths + 1\n"
                "  return wrk.format(\"GET\", paths[i])\n"
                "end\n")
        script = f.name
    try:
        out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds,
                              "--latency", "-s", script, "http://127.0.0.1:%d" % port],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(m.group(1)) if m else 0
    return {"rps": rps, "p50": wrk_latency(out, "50%"), "p99": wrk_latency(out, "99%"),
            "errors": errors, "raw": out}


def in_process(seconds):
    exe = REPO / "build" / "bench" / "kiln_render_bench"
    if not exe.exists():
        sys.exit("%s is missing: cmake --build build --target kiln_render_bench" % exe)
    out = subprocess.run([str(exe), "--threads", "2", "--seconds", str(seconds)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--processes", type=int, default=2, help="renderers per environment")
    ap.add_argument("--out", nargs="?",
                    const=str(REPO / "bench" / "results" / "render_serve.md"))
    args = ap.parse_args()

    # The bench measures rendering, not production's request quota.
    unlimited = {"requests_per_second": 1e6, "request_burst": 1e6}
    environments = [
        {"name": "production", "token": ks.PRODUCTION_TOKEN, "concurrency": 2, "priority": 10,
         "settings": unlimited},
        {"name": "staging", "token": ks.STAGING_TOKEN, "concurrency": 1, "priority": 0},
    ]
    with ks.KilnServer(server={"render_processes": args.processes},
                       environments=environments) as srv:
        runs = []
        # One band (the target's case, as kiln_render_bench's tile) and the
        # scene's three bands with bidx=1 (three bands to inflate).
        for layer, bands in ((LAYER + "-1band", [1]), (LAYER + "-3band", None)):
            source = {"uri": kt.data_path("rt_mosaic_cog1.crop.tif")}
            if bands:
                source["bands"] = bands
            d = {"layer": layer, "sources": [source],
                 # Two zooms past the scene's own (300 m): full 256 px tiles
                 # of real uint16 data, many distinct ones.
                 "output": {"encoding": {"format": "tif"}, "zoom": {"max": 11}}}
            step = srv.wait_step(srv.submit(d)["id"])
            if step["state"] != "COMPLETED":
                sys.exit("the ingest failed: %r" % step)
            vdir = os.path.realpath(kt.current_dir(srv.catalog, "production", layer))
            tiles = kt.list_tiles(vdir)
            zooms = sorted(tiles)[-1:]
            paths = ["/v1/layers/%s/tiles/%d/%d/%d.png?%s" % (layer, z, x, y, QUERY)
                     for z in zooms for (x, y) in sorted(tiles[z])]
            # One pass first: the renderers' start is not the steady state.
            for p in paths:
                r = srv.request("GET", p)
                if r.status != 200:
                    sys.exit("GET %s: %d %s" % (p, r.status, r.body[:300]))
            load0 = os.getloadavg()[0]
            http = run_wrk(srv.port, paths, ks.PRODUCTION_TOKEN, args.seconds, args.connections)
            runs.append((layer, len(bands) if bands else 3, len(paths), zooms, http))
    local = in_process(min(args.seconds, 10))
    load1 = os.getloadavg()[0]

    codec = local["codec_share"]
    one_band = runs[0][4]
    lines = [
        "# Rendered tiles over HTTP (bench/render_serve_bench.py)",
        "",
        "%s, %s, %d cores; %s UTC; load average %.1f before the last run, %.1f after"
        % (platform.node(), platform.platform(), os.cpu_count(),
           datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), load0, load1),
        "",
        "`%s`, PNG; wrk -t2 -c%d for %d s over the deepest zoom's distinct tiles; %d renderer "
        "processes." % (QUERY, args.connections, args.seconds, args.processes),
        "",
        "| | tiles/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|",
    ]
    for layer, nbands, ntiles, zooms, h in runs:
        lines.append("| kiln serve over HTTP, %s (%d-band uint16, %d tiles, zoom %s) | %.0f | %.1f "
                     "| %.1f | %d |" % (layer, nbands, ntiles, zooms[0], h["rps"], h["p50"],
                                        h["p99"], h["errors"]))
    lines += [
        "| kiln_render_bench, 1-band uint16, 2 threads in one process | %.0f | %.1f | %.1f | |"
        % (local["tiles_per_s"], local["p50_ms"], local["p99_ms"]),
        "",
        "HTTP / in-process (1 band): %.2f. Codec share in-process (decode + encode): %.0f%%. "
        "Target (1-band uint16 -> rescale -> PNG): >= 1,000 tiles/s (%s), p99 <= 50 ms (%s)."
        % (one_band["rps"] / local["tiles_per_s"], codec * 100,
           "met" if one_band["rps"] >= 1000 else "MISSED",
           "met" if one_band["p99"] <= 50 else "MISSED"),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

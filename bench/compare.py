#!/usr/bin/python3
"""Kiln against the tools users would otherwise run, side by side on one machine.

Builds the benchmark inputs, runs `kiln ingest` and its anchor (gdal2tiles.py
or gdalwarp -of COG) in alternating order for --runs rounds, plus the floor
probe (decode the source once + encode the same tiles once, one thread), and
prints the medians as a markdown table with the ratios the speed issue asks
for. See bench/README.md for what each number means.

Run with /usr/bin/python3 (it has python3-gdal and numpy):

    /usr/bin/python3 bench/compare.py [--quick] [--runs N] [--scaling] [--out [FILE]]
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

gdal.UseExceptions()

REPO = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024.0 * 1024.0
TILE_EXTS = ("png", "webp", "tif")


# ---------------------------------------------------------------------------
# Inputs


def run_checked(cmd, log=None):
    """Runs a set-up command; exits with its output when it fails."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit(f"error: {shlex.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}")
    if log:
        log.append(shlex.join(cmd))
    return r.stdout


def build_once(path, make):
    """Calls make(tmp) to build `path` unless it exists; the rename makes an
    interrupted build leave no half-written input for the next run to reuse."""
    if path.exists():
        return path
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    tmp.unlink(missing_ok=True)
    print(f"building {path} ...", file=sys.stderr, flush=True)
    make(tmp)
    aux = tmp.with_name(tmp.name + ".aux.xml")  # GDAL's side-car (e.g. band 4's colour)
    if aux.exists():
        os.replace(aux, path.with_name(path.name + ".aux.xml"))
    os.replace(tmp, path)
    return path


def input_a(work, data_dir, size, log):
    """Input (a): RGB.byte.tif (791x718 at 300 m, UTM 18N, nodata 0) cropped
    square and resampled to size x size, tiled and DEFLATE-compressed, exactly
    as issue 3 makes it (size 8000)."""
    src = data_dir / "RGB.byte.tif"
    if not src.exists():
        sys.exit(f"error: {src} is missing: pass --data-dir DIR holding RGB.byte.tif, or --scene")

    def make(tmp):
        run_checked(["gdal_translate", "-q", "-srcwin", "36", "0", "718", "718", "-outsize",
                     str(size), str(size), "-r", "cubic", "-co", "TILED=YES", "-co",
                     "COMPRESS=DEFLATE", "-co", "BIGTIFF=IF_SAFER", str(src), str(tmp)])

    log.append(f"gdal_translate -srcwin 36 0 718 718 -outsize {size} {size} -r cubic "
               f"-co TILED=YES -co COMPRESS=DEFLATE -co BIGTIFF=IF_SAFER RGB.byte.tif "
               f"a_rgb_u8_{size}.tif")
    return build_once(work / f"a_rgb_u8_{size}.tif", make)


def input_b(work, data_dir, log):
    """Input (b): 6000x6000 4-band uint16. No real 4-band uint16 scene is in
    the sample set, so band 4 repeats band 1 of the rt_mosaic_cog1/2 mosaic
    (3-band uint16 Landsat-derived, nodata 0)."""
    cogs = [data_dir / "rt_mosaic_cog1.tif", data_dir / "rt_mosaic_cog2.tif"]
    for c in cogs:
        if not c.exists():
            sys.exit(f"error: {c} is missing: pass --data-dir DIR holding rt_mosaic_cog1/2.tif")
    vrt = work / "b_mosaic.vrt"

    def make(tmp):
        run_checked(["gdalbuildvrt", "-q", str(vrt)] + [str(c) for c in cogs])
        run_checked(["gdal_translate", "-q", "-b", "1", "-b", "2", "-b", "3", "-b", "1",
                     "-outsize", "6000", "6000", "-r", "cubic", "-co", "TILED=YES", "-co",
                     "COMPRESS=DEFLATE", str(vrt), str(tmp)])

    log.append("gdalbuildvrt b_mosaic.vrt rt_mosaic_cog1.tif rt_mosaic_cog2.tif")
    log.append("gdal_translate -b 1 -b 2 -b 3 -b 1 -outsize 6000 6000 -r cubic -co TILED=YES "
               "-co COMPRESS=DEFLATE b_mosaic.vrt b_u16x4_6000.tif   (band 4 repeats band 1)")
    path = build_once(work / "b_u16x4_6000.tif", make)
    ds = gdal.Open(str(path))
    interp = [ds.GetRasterBand(i + 1).GetColorInterpretation() for i in range(ds.RasterCount)]
    if gdal.GCI_AlphaBand in interp:
        sys.exit(f"error: {path}: a band is tagged alpha; delete it and report this")
    return path


def warm(path):
    """Reads a file once so every tool starts from the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def source_info(path):
    ds = gdal.Open(str(path))
    b = ds.GetRasterBand(1)
    return {"width": ds.RasterXSize, "height": ds.RasterYSize, "bands": ds.RasterCount,
            "type": gdal.GetDataTypeName(b.DataType), "nodata": b.GetNoDataValue()}


def gdal2tiles_zooms(path):
    """The zoom range gdal2tiles picks by default for `path` (its own code:
    GDAL2Tiles.open_input, mercator profile)."""
    from osgeo_utils import gdal2tiles as g2t
    with tempfile.TemporaryDirectory() as tmp:
        src = str(path)
        if gdal.Open(src).GetRasterBand(1).DataType != gdal.GDT_Byte:
            # gdal2tiles refuses anything but 8 bits; the zooms depend only on
            # the georeferencing, which a Byte VRT of the file keeps.
            src = os.path.join(tmp, "byte.vrt")
            gdal.Translate(src, str(path), format="VRT", outputType=gdal.GDT_Byte)
        inp, out, opts = g2t.process_args(["--xyz", "-q", src, os.path.join(tmp, "tiles")])
        g = g2t.GDAL2Tiles(inp, out, opts)
        g.open_input()
        return g.tminz, g.tmaxz


# ---------------------------------------------------------------------------
# Measuring a process tree


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants every
    `interval` s (and their summed PSS every `pss_every` samples: reading
    smaps_rollup costs milliseconds on a big process)."""

    def __init__(self, root, interval=0.02, pss_every=10):
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.pss_every = pss_every
        self.peak_rss = 0
        self.peak_pss = 0
        self.stop_event = threading.Event()
        self._ppid = {}

    def _tree(self):
        live = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        live_set = set(live)
        for pid in list(self._ppid):
            if pid not in live_set:
                del self._ppid[pid]
        for pid in live:
            if pid not in self._ppid:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        stat = f.read()
                    self._ppid[pid] = int(stat[stat.rindex(")") + 2:].split()[1])
                except (OSError, ValueError):
                    pass
        children = {}
        for pid, ppid in self._ppid.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def _sample(self, with_pss):
        rss = pss = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/statm") as f:
                    rss += int(f.read().split()[1]) * PAGE
                if with_pss:
                    with open(f"/proc/{pid}/smaps_rollup") as f:
                        for line in f:
                            if line.startswith("Pss:"):
                                pss += int(line.split()[1]) * 1024
                                break
            except (OSError, ValueError, IndexError):
                pass  # the process ended between listing and reading
        self.peak_rss = max(self.peak_rss, rss)
        if with_pss:
            self.peak_pss = max(self.peak_pss, pss)

    def run(self):
        n = 0
        while not self.stop_event.is_set():
            self._sample(n % self.pss_every == 0)
            n += 1
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()


def measure(cmd, log_path):
    """Runs cmd to completion. Returns wall s (perf_counter), CPU s (user+sys
    of the process and its waited-for descendants, from wait4), peak RSS and
    PSS bytes of the tree, and the exit code. Output goes to log_path."""
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(p.pid)
        sampler.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        sampler.stop()
    p.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss (KiB) is the largest single process's peak: the tree's sum
    # can only be larger, and it catches a peak between two samples.
    rss = max(sampler.peak_rss, ru.ru_maxrss * 1024)
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss": rss,
            "pss": sampler.peak_pss, "rc": p.returncode}


def snapshot_binary(src, dst):
    """Copies an executable to dst; returns a description of the original:
    its path, build time and the start of its SHA-256."""
    src = Path(src).resolve()
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(src.stat().st_mtime, datetime.timezone.utc)
    return f"{src} (built {built.strftime('%Y-%m-%d %H:%M UTC')}, sha256 {digest})"


def log_tail(path, n=20):
    try:
        return "".join(Path(path).read_text(errors="replace").splitlines(True)[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# Outputs


def tile_index(root, ext):
    """{(z, x, y): bytes} of the XYZ tiles root/z/x/y.ext."""
    tiles = {}
    root = Path(root)
    if not root.is_dir():
        return tiles
    for zd in os.scandir(root):
        if not (zd.is_dir() and zd.name.isdigit()):
            continue
        for xd in os.scandir(zd.path):
            if not (xd.is_dir() and xd.name.isdigit()):
                continue
            for f in os.scandir(xd.path):
                stem, _, e = f.name.partition(".")
                if e == ext and stem.isdigit():
                    tiles[(int(zd.name), int(xd.name), int(stem))] = f.stat().st_size
    return tiles


def tile_has_alpha(path, ext):
    """Whether a tile file carries transparency (read from its header)."""
    with open(path, "rb") as f:
        head = f.read(32)
    if ext == "png":
        return head[25] in (4, 6)  # IHDR colour type: grey+alpha, RGBA
    if ext == "webp":
        chunk = head[12:16]
        if chunk == b"VP8X":
            return bool(head[20] & 0x10)
        if chunk == b"VP8L":
            bits = int.from_bytes(head[21:25], "little")
            return bool((bits >> 28) & 1)
        return False
    ds = gdal.Open(str(path))
    return ds.RasterCount > 0 and bool(ds.GetRasterBand(1).GetMaskFlags() & gdal.GMF_PER_DATASET)


def cog_blocks(path):
    """256x256 blocks in a COG, full resolution plus overviews."""
    ds = gdal.Open(str(path))
    b = ds.GetRasterBand(1)
    levels = [b] + [b.GetOverview(i) for i in range(b.GetOverviewCount())]
    return sum(-(-lv.XSize // 256) * -(-lv.YSize // 256) for lv in levels)


def kiln_layer_dir(catalog):
    return Path(catalog) / "default" / "bench" / "current"


# ---------------------------------------------------------------------------
# Cases


class Tool:
    """One command in a case: how to run it and what it wrote."""

    def __init__(self, name, role, command, out_path, ext):
        self.name = name
        self.role = role  # kiln | anchor | floor
        self.command = command
        self.out_path = Path(out_path) if out_path else None
        self.ext = ext
        self.runs = []
        self.unavailable = None  # reason, when the tool cannot run here

    def clean(self):
        if self.out_path is None:
            return
        if self.out_path.is_dir():
            shutil.rmtree(self.out_path)
        elif self.out_path.exists():
            self.out_path.unlink()


class Case:
    def __init__(self, key, name, source, bands, zooms, fmt):
        self.key = key  # for file names: a-png, b-tif, ...
        self.name = name
        self.source = source
        self.bands = bands
        self.zooms = zooms
        self.format = fmt
        self.tools = []
        self.floor = None


def kiln_tool(args, work, case, extra):
    catalog = work / "out" / case.key / "kiln-catalog"
    z0, z1 = case.zooms
    cmd = [str(args.kiln), "ingest", str(case.source), "--layer", "bench", "--catalog",
           str(catalog), "--bands", ",".join(map(str, case.bands)), "--min-zoom", str(z0),
           "--max-zoom", str(z1), "--resample", "bilinear", "--format", case.format,
           "--threads", str(args.threads), "--progress", "none", "--quiet"] + extra
    return Tool("kiln", "kiln", cmd, catalog, case.format)


def gdal2tiles_tool(args, work, case, extra):
    out = work / "out" / case.key / "gdal2tiles"
    cmd = ["gdal2tiles.py", "--xyz", "-r", "bilinear", f"--processes={args.threads}"] + extra + [
        str(case.source), str(out)]
    return Tool("gdal2tiles", "anchor", cmd, out, case.format)


def gdalwarp_tool(args, work, case):
    out = work / "out" / case.key / "gdalwarp_cog.tif"
    t = str(args.threads)
    # Same work as Kiln's: bilinear warp at Kiln's max zoom, averaged
    # overviews. Left alone, gdalwarp warps with nearest, the COG driver may
    # pick a finer zoom and builds overviews with cubic.
    cmd = ["gdalwarp", "-q", "-t_srs", "EPSG:3857", "-r", "bilinear", "-of", "COG",
           "-co", "TILING_SCHEME=GoogleMapsCompatible", "-co", f"ZOOM_LEVEL={case.zooms[1]}",
           "-co", "WARP_RESAMPLING=BILINEAR", "-co", "OVERVIEW_RESAMPLING=AVERAGE",
           "-co", "COMPRESS=DEFLATE", "-multi", "-wo", f"NUM_THREADS={t}",
           "-co", f"NUM_THREADS={t}", str(case.source), str(out)]
    return Tool("gdalwarp COG", "anchor", cmd, out, "tif")


def floor_tool(args, case, kiln_meta, kiln_tiles, with_alpha):
    """The probe with Kiln's codec settings (read back from the layer's
    metadata.json) and tile count."""
    enc = kiln_meta.get("definition", {}).get("output", {}).get("encoding", {})
    needed = ("format", "png_level", "webp_quality", "tif_compression", "tif_level")
    missing = [k for k in needed if k not in enc]
    if missing:
        sys.exit(f"error: the layer's metadata.json lacks definition.output.encoding."
                 f"{', '.join(missing)}: the floor probe cannot match Kiln's codec settings "
                 f"(update floor_tool in bench/compare.py)")
    cmd = [str(args.probe), "--source", str(case.source), "--bands",
           ",".join(map(str, case.bands)), "--tiles", str(kiln_tiles), "--format", enc["format"]]
    if enc["format"] == "png":
        cmd += ["--png-level", str(enc["png_level"])]
    elif enc["format"] == "webp":
        cmd += (["--webp-lossless"] if enc.get("webp_lossless") else
                ["--webp-quality", str(enc["webp_quality"])])
    else:
        cmd += ["--tif-compression", enc["tif_compression"], "--tif-level", str(enc["tif_level"])]
    if kiln_meta.get("nodata") is not None:
        cmd += ["--nodata", str(kiln_meta["nodata"])]
    if with_alpha:
        cmd.append("--with-alpha")
    return Tool("floor probe", "floor", cmd, None, case.format)


def gdal2tiles_supports_webp():
    """None when gdal2tiles here can write WebP tiles, else the reason."""
    help_text = subprocess.run(["gdal2tiles.py", "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True).stdout
    if "--tiledriver" not in help_text or "--webp-quality" not in help_text:
        return f"not available in this GDAL ({gdal.__version__}): gdal2tiles has no --tiledriver"
    if gdal.GetDriverByName("WEBP") is None:
        return f"not available in this GDAL ({gdal.__version__}): no WEBP driver"
    return None


def collect(tool, work, run_index):
    """Runs a tool once and records its measurements and what it wrote."""
    tool.clean()
    log = work / "logs" / f"{tool.case_key}-{tool.name.replace(' ', '_')}-{run_index + 1}.log"
    m = measure(tool.command, log)
    if m["rc"] != 0:
        sys.exit(f"error: {tool.name} failed ({m['rc']}): {shlex.join(tool.command)}\n"
                 f"{log_tail(log)}")
    if tool.role == "floor":
        probe = json.loads(Path(log).read_text().strip().splitlines()[-1])
        m.update(probe)
        m["tiles"], m["bytes"] = probe["tiles"], probe["bytes"]
    elif tool.role == "kiln":
        tiles = tile_index(kiln_layer_dir(tool.out_path), tool.ext)
        m["tiles"], m["bytes"] = len(tiles), sum(tiles.values())
    elif tool.ext == "tif" and tool.out_path.suffix == ".tif":
        m["tiles"], m["bytes"] = cog_blocks(tool.out_path), tool.out_path.stat().st_size
    else:
        tiles = tile_index(tool.out_path, tool.ext)
        m["tiles"], m["bytes"] = len(tiles), sum(tiles.values())
    tool.runs.append(m)
    print(f"  {tool.case_name:8} {tool.name:13} run {run_index + 1}: "
          f"{m.get('floor_s', m['wall']):7.2f} s", file=sys.stderr, flush=True)
    return m


def median(tool, key):
    vals = [r[key] for r in tool.runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def spread(tool, key):
    vals = [r[key] for r in tool.runs]
    return (min(vals), max(vals)) if len(vals) > 1 else None


def run_case(args, work, case, anchor):
    """Runs kiln, the anchor and the floor probe for --runs rounds, the order
    reversed every other round so drift in the machine's load hits all."""
    kiln = case.tools[0]
    for t in case.tools:
        t.case_name, t.case_key = case.name, case.key
    # Kiln first, once, outside the rounds' timing order: the probe needs its
    # tile count and settings. This run counts as round 1's Kiln run.
    collect(kiln, work, 0)
    layer = kiln_layer_dir(kiln.out_path)
    meta = json.loads((layer / "metadata.json").read_text())
    tiles = tile_index(layer, case.format)
    with_alpha = any(tile_has_alpha(layer / str(z) / str(x) / f"{y}.{case.format}", case.format)
                     for (z, x, y) in tiles)
    case.floor = floor_tool(args, case, meta, len(tiles), with_alpha)
    case.floor.case_name, case.floor.case_key = case.name, case.key
    case.kiln_meta = meta
    others = [t for t in [anchor, case.floor] if t is not None and t.unavailable is None]
    for r in range(args.runs):
        order = others if r == 0 else [kiln] + others
        for t in (reversed(order) if r % 2 else order):
            collect(t, work, r)


# ---------------------------------------------------------------------------
# Pixel agreement (pair 1: kiln png vs gdal2tiles png)


def read_tile(path):
    """(bands x H x W uint8 data without alpha, boolean validity)."""
    a = gdal.Open(str(path)).ReadAsArray()
    if a.ndim == 2:
        a = a[None]
    if a.shape[0] in (2, 4):
        return a[:-1], a[-1] > 0
    return a, np.ones(a.shape[1:], bool)


def agreement(kiln_root, g2t_root, ext, sample=50):
    k = tile_index(kiln_root, ext)
    g = tile_index(g2t_root, ext)
    zoom_max = max(z for z, _, _ in k) if k else None
    common = sorted(t for t in k if t in g and t[0] == zoom_max)
    pick = common if len(common) <= sample else sorted(random.Random(0).sample(common, sample))
    n_both = n_mask_diff = n_px = n_values = 0
    sum_abs = 0.0
    max_abs = 0
    within1 = within4 = 0
    for (z, x, y) in pick:
        kd, kv = read_tile(Path(kiln_root) / str(z) / str(x) / f"{y}.{ext}")
        gd, gv = read_tile(Path(g2t_root) / str(z) / str(x) / f"{y}.{ext}")
        both = kv & gv
        n_px += both.size
        n_mask_diff += int((kv != gv).sum())
        if not both.any():
            continue
        d = np.abs(kd.astype(np.int32) - gd.astype(np.int32))[:, both]  # bands x pixels
        per_px = d.max(axis=0)
        n_both += per_px.size
        n_values += d.size
        sum_abs += float(d.sum())
        max_abs = max(max_abs, int(d.max()))
        within1 += int((per_px <= 1).sum())
        within4 += int((per_px <= 4).sum())
    res = {"zoom": zoom_max, "common_tiles": len(common), "sampled": len(pick),
           "valid_pixels": n_both,
           "mean_abs": sum_abs / n_values if n_values else None, "max_abs": max_abs,
           "within1_pct": 100.0 * within1 / n_both if n_both else None,
           "within4_pct": 100.0 * within4 / n_both if n_both else None,
           "mask_diff_pct": 100.0 * n_mask_diff / n_px if n_px else None}
    # Coverage per zoom: who wrote which tiles, and whether the extra ones
    # hold anything.
    zooms = sorted({t[0] for t in k} | {t[0] for t in g})
    cover = []
    for z in zooms:
        kz = {t for t in k if t[0] == z}
        gz = {t for t in g if t[0] == z}
        only_g = sorted(gz - kz)
        only_k = sorted(kz - gz)
        empty_g = sum(1 for (zz, x, y) in only_g
                      if not read_tile(Path(g2t_root) / str(zz) / str(x) / f"{y}.{ext}")[1].any())
        cover.append({"zoom": z, "kiln": len(kz), "gdal2tiles": len(gz), "only_kiln": len(only_k),
                      "only_gdal2tiles": len(only_g), "only_gdal2tiles_empty": empty_g})
    res["coverage"] = cover
    return res


# ---------------------------------------------------------------------------
# Report


def fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.{nd}f}"


def fmt_spread(tool, key, scale=1.0, nd=2):
    m = median(tool, key)
    if m is None:
        return "–"
    s = spread(tool, key)
    text = f"{m / scale:.{nd}f}"
    if s:
        text += f" ({s[0] / scale:.{nd}f}–{s[1] / scale:.{nd}f})"
    return text


def ratio(a, b):
    return a / b if a is not None and b else None


def machine_info(args, load_before, load_after):
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        stdout=subprocess.PIPE, text=True).stdout.strip()
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), "
        f"{os.sysconf('SC_PHYS_PAGES') * PAGE / MIB / 1024:.1f} GiB RAM",
        f"- load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after: {' '.join(f'{x:.2f}' for x in load_after)}",
        f"- GDAL {gdal.__version__}; kiln commit {commit}"
        f"{' + uncommitted changes' if dirty else ''}",
        f"- kiln binary: {args.kiln_origin}; probe: {args.probe_origin} "
        f"(copied to {args.kiln.parent}/ at the start and run from there)"
        + ("" if args.same_tree else
           "; **they come from different build trees: the floor is only right if both were "
           "built from the same sources**"),
        f"- runs per tool: {args.runs} (median shown, min–max in parentheses); "
        f"threads/processes: {args.threads}",
    ]


def report(args, cases, agree, scaling, inputs_log, load_before, load_after, work):
    out = ["# Kiln speed benchmark", ""]
    out += machine_info(args, load_before, load_after)
    out += ["", "## Results", "",
            "| case | tool | wall s | CPU s | peak RSS MiB | peak PSS MiB | tiles | output MiB |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in cases:
        for t in c.tools + [c.floor]:
            if t is None:
                continue
            if t.unavailable:
                out.append(f"| {c.name} | {t.name} | {t.unavailable} | | | | | |")
                continue
            if t.role == "floor":
                wall = f"{fmt_spread(t, 'floor_s')} (1 thread)"
                cpu = "–"
                rss = pss = "–"
            else:
                wall = fmt_spread(t, "wall")
                cpu = fmt_spread(t, "cpu")
                rss = fmt_spread(t, "rss", MIB, 0)
                pss = fmt_spread(t, "pss", MIB, 0)
            tiles = median(t, "tiles")
            out.append(f"| {c.name} | {t.name} | {wall} | {cpu} | {rss} | {pss} | "
                       f"{int(tiles) if tiles is not None else '–'} | "
                       f"{fmt(median(t, 'bytes') / MIB)} |")
    out += ["", "Ratios (medians; > 1 means Kiln is faster or smaller):", "",
            "| case | anchor wall / kiln wall | anchor RSS / kiln RSS | anchor PSS / kiln PSS "
            "| kiln wall / floor | kiln CPU / floor | kiln bytes / anchor bytes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in cases:
        kiln, anchor = c.tools[0], c.tools[1] if len(c.tools) > 1 else None
        has_anchor = anchor is not None and anchor.unavailable is None
        floor = median(c.floor, "floor_s") if c.floor else None
        aw = median(anchor, "wall") if has_anchor else None
        ar = median(anchor, "rss") if has_anchor else None
        ap = median(anchor, "pss") if has_anchor else None
        ab = median(anchor, "bytes") if has_anchor else None
        kw, kc = median(kiln, "wall"), median(kiln, "cpu")
        out.append(
            f"| {c.name} | {fmt(ratio(aw, kw))} | "
            f"{fmt(ratio(ar, median(kiln, 'rss')))} | {fmt(ratio(ap, median(kiln, 'pss')))} | "
            f"{fmt(ratio(kw, floor))} | {fmt(ratio(kc, floor))} | "
            f"{fmt(ratio(median(kiln, 'bytes'), ab))} |")
    out += ["", "Floor detail (medians): decode once + encode Kiln's tile count once, one thread.",
            "", "| case | decode s | decode MP/s | encode s | tiles/s | tiles with alpha |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for c in cases:
        f = c.floor
        if f is None or not f.runs:
            continue
        out.append(f"| {c.name} | {fmt(median(f, 'decode_s'))} | "
                   f"{fmt(median(f, 'decode_mpix_per_s'), 1)} | {fmt(median(f, 'encode_s'))} | "
                   f"{fmt(median(f, 'encode_tiles_per_s'), 1)} | "
                   f"{int(median(f, 'tiles_with_alpha'))} |")

    if agree:
        a = agree
        out += ["", "## Pixel agreement: kiln png vs gdal2tiles png", "",
                f"{a['sampled']} of {a['common_tiles']} common tiles at max zoom {a['zoom']} "
                f"(seeded sample), pixels valid in both ({a['valid_pixels']}):", "",
                f"- mean abs diff {fmt(a['mean_abs'], 3)}, max abs diff {a['max_abs']} "
                f"(per band value, 0-255)",
                f"- pixels within 1 in every band: {fmt(a['within1_pct'])} %; within 4: "
                f"{fmt(a['within4_pct'])} %",
                f"- pixels valid in one tool only: {fmt(a['mask_diff_pct'])} % of sampled pixels "
                f"(gdal2tiles alpha > 0 vs Kiln's mask)", "",
                "| zoom | kiln tiles | gdal2tiles tiles | only kiln | only gdal2tiles | "
                "of which fully transparent |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in a["coverage"]:
            out.append(f"| {r['zoom']} | {r['kiln']} | {r['gdal2tiles']} | {r['only_kiln']} | "
                       f"{r['only_gdal2tiles']} | {r['only_gdal2tiles_empty']} |")

    if scaling:
        out += ["", "## Scaling: kiln ingest of input (a) at 1x, 4x, 16x the pixels", "",
                "| input | megapixels | zooms | wall s | CPU s | peak RSS MiB | tiles | "
                "wall s per MP | CPU s per MP |",
                "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in scaling:
            t = s["tool"]
            mp = s["megapixels"]
            out.append(f"| {s['name']} | {mp:.0f} | {s['zooms'][0]}-{s['zooms'][1]} | "
                       f"{fmt_spread(t, 'wall')} | {fmt_spread(t, 'cpu')} | "
                       f"{fmt_spread(t, 'rss', MIB, 0)} | {int(median(t, 'tiles'))} | "
                       f"{median(t, 'wall') / mp:.4f} | {median(t, 'cpu') / mp:.4f} |")

    out += ["", "## Inputs and commands", "", f"Work directory: {work}", "", "```"]
    out += inputs_log
    for c in cases:
        for t in c.tools + [c.floor]:
            if t is not None and t.unavailable is None:
                out.append(shlex.join(str(x) for x in t.command))
    out += ["```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/kiln-bench"),
                    help="inputs and outputs (inputs are reused when present)")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data",
                    help="directory with RGB.byte.tif and rt_mosaic_cog1/2.tif")
    ap.add_argument("--scene", type=Path,
                    help="use this RGB scene as input (a) instead of building it")
    ap.add_argument("--kiln", type=Path, default=REPO / "build" / "src" / "cli" / "kiln",
                    help="kiln binary (default: build/src/cli/kiln, as `make build` makes it)")
    ap.add_argument("--probe", type=Path, default=REPO / "build" / "bench" / "kiln_floor_probe",
                    help="kiln_floor_probe binary (default: build/bench/kiln_floor_probe)")
    ap.add_argument("--runs", type=int, default=3, help="rounds per case (median reported)")
    ap.add_argument("--threads", type=int, default=2,
                    help="kiln --threads, gdal2tiles --processes, gdalwarp NUM_THREADS")
    ap.add_argument("--cases", default="a-png,a-webp,b-tif",
                    help="comma-separated subset of a-png, a-webp, b-tif")
    ap.add_argument("--quick", action="store_true", help="1 run, no webp, no scaling")
    ap.add_argument("--scaling", action="store_true",
                    help="also run kiln alone on input (a) at 2000^2, 4000^2 and 8000^2")
    ap.add_argument("--out", nargs="?", type=Path, const=REPO / "bench" / "results" / "latest.md",
                    help="also write the report here (default with no FILE: "
                         "bench/results/latest.md)")
    args = ap.parse_args()
    if args.quick:
        args.runs = 1
        args.scaling = False
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in wanted:
        if c not in ("a-png", "a-webp", "b-tif"):
            ap.error(f"--cases: unknown case '{c}'")
    if args.quick and "a-webp" in wanted:
        wanted.remove("a-webp")
    for name, path in (("--kiln", args.kiln), ("--probe", args.probe)):
        if not os.access(path, os.X_OK):
            sys.exit(f"error: {name} {path} is not an executable (build it first: `make build`, "
                     f"or pass {name} PATH)")
    work = args.work_dir.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    # Run copies taken now: a rebuild of the originals during the benchmark
    # (the engine is being optimised meanwhile) must not mix two binaries.
    args.kiln_origin = snapshot_binary(args.kiln, work / "bin" / "kiln")
    args.kiln = work / "bin" / "kiln"
    args.probe_origin = snapshot_binary(args.probe, work / "bin" / "kiln_floor_probe")
    args.probe = work / "bin" / "kiln_floor_probe"
    # The floor runs Kiln's encoders as compiled into the probe: from another
    # build tree they may be another version of them.
    kiln_tree = Path(args.kiln_origin.split(" ")[0]).parent.parent.parent
    probe_tree = Path(args.probe_origin.split(" ")[0]).parent.parent
    args.same_tree = kiln_tree == probe_tree
    (work / "out").mkdir(exist_ok=True)
    inputs_log = []
    if args.scene:
        a = args.scene.resolve()
        inputs_log.append(f"input (a): {a} (given with --scene)")
    else:
        a = input_a(work, args.data_dir, 8000, inputs_log)
    b = input_b(work, args.data_dir, inputs_log) if "b-tif" in wanted else None

    load_before = os.getloadavg()
    cases = []
    a_zooms = gdal2tiles_zooms(a)
    webp_missing = gdal2tiles_supports_webp()
    for name in wanted:
        if name == "a-png":
            c = Case("a-png", "a → png", a, [1, 2, 3], a_zooms, "png")
            c.tools = [kiln_tool(args, work, c, []), gdal2tiles_tool(args, work, c, [])]
        elif name == "a-webp":
            c = Case("a-webp", "a → webp", a, [1, 2, 3], a_zooms, "webp")
            anchor = gdal2tiles_tool(args, work, c, ["--tiledriver=WEBP", "--webp-quality=75"])
            anchor.unavailable = webp_missing
            c.tools = [kiln_tool(args, work, c, ["--webp-quality", "75"]), anchor]
        else:
            c = Case("b-tif", "b → tif", b, [1, 2, 3, 4], gdal2tiles_zooms(b), "tif")
            c.tools = [kiln_tool(args, work, c, ["--tif-compression", "deflate"]),
                       gdalwarp_tool(args, work, c)]
        cases.append(c)

    for c in cases:
        warm(c.source)
        print(f"{c.name}: zoom {c.zooms[0]}-{c.zooms[1]}, {args.runs} run(s)", file=sys.stderr)
        run_case(args, work, c, c.tools[1] if len(c.tools) > 1 else None)

    agree = None
    png = next((c for c in cases if c.format == "png"), None)
    if png and png.tools[1].unavailable is None:
        g2t_dir = png.tools[1].out_path
        got = sorted(int(d.name) for d in os.scandir(g2t_dir) if d.is_dir() and d.name.isdigit())
        if got and (got[0], got[-1]) != tuple(png.zooms):
            print(f"warning: gdal2tiles wrote zooms {got[0]}-{got[-1]}, Kiln was given "
                  f"{png.zooms[0]}-{png.zooms[1]}", file=sys.stderr)
        agree = agreement(kiln_layer_dir(png.tools[0].out_path), g2t_dir, "png")

    scaling = []
    if args.scaling:
        for size in (2000, 4000, 8000):
            src = a if (size == 8000 and not args.scene) else input_a(work, args.data_dir, size,
                                                                      inputs_log)
            c = Case(f"scaling-{size}", f"a{size}", src, [1, 2, 3], gdal2tiles_zooms(src), "png")
            t = kiln_tool(args, work, c, [])
            t.case_name, t.case_key = c.name, c.key
            warm(src)
            for r in range(args.runs):
                collect(t, work, r)
            info = source_info(src)
            scaling.append({"name": f"a_rgb_u8_{size}.tif", "tool": t, "zooms": c.zooms,
                            "megapixels": info["width"] * info["height"] / 1e6})
            inputs_log.append(shlex.join(str(x) for x in t.command))
    load_after = os.getloadavg()

    text = report(args, cases, agree, scaling, inputs_log, load_before, load_after, work)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

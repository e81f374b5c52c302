"""Shared harness for Kiln's end-to-end tests.

The tests start the real `kiln` binary the way a user would and read what it
wrote with GDAL's Python bindings (Debian's python3-gdal, so they run under
/usr/bin/python3). ctest sets KILN_BIN and KILN_SOURCE_DIR (tests/CMakeLists.txt);
run by hand from tests/e2e with:

    KILN_BIN=../../build/src/cli/kiln /usr/bin/python3 -m unittest -v test_pyramid

Imagery comes only from inside the repository: data/ holds what `make data`
(scripts/fetch-data.sh) unpacks from Debian's r-cran-stars package
(L7_ETMs.tif...), tests/data/ the small files committed with the tests (see
tests/data/PROVENANCE.md). A missing file fails the test; none skips.
"""

import glob
import json
import math
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
osr.UseExceptions()

# Half the side of the Web Mercator square in metres (EPSG:3857,
# GoogleMapsCompatible tile matrix set).
WEB_MERCATOR_HALF = 20037508.342789244

# Seconds one kiln command may take before the test fails; the largest input
# here ingests in a few seconds, so hitting this means kiln hangs.
DEFAULT_TIMEOUT = 600

# The scene scripts/fetch-data.sh provides: Landsat 7 ETM+, 349x352, 6 bands,
# SIRGAS 2000 / UTM 25S (Olinda, Brazil), 28.5 m pixels.
L7 = "L7_ETMs.tif"

# Exit codes of the kiln CLI (README.md "Exit codes").
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_EMPTY = 4
EXIT_OUTPUT = 5
EXIT_NOT_FOUND = 6
EXIT_CONFLICT = 7


def source_dir():
    """The repository root: $KILN_SOURCE_DIR, else two levels above this file."""
    env = os.environ.get("KILN_SOURCE_DIR")
    if env:
        return os.path.abspath(env)
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def kiln_bin():
    """Path of the kiln executable: $KILN_BIN, else build/src/cli/kiln."""
    env = os.environ.get("KILN_BIN")
    if env:
        return os.path.abspath(env)
    return os.path.join(source_dir(), "build", "src", "cli", "kiln")


def data_dirs():
    """The repository's imagery directories, in search order: data/ (fetched
    by `make data`), tests/data/ (committed)."""
    src = source_dir()
    return [os.path.join(src, "data"), os.path.join(src, "tests", "data")]


def data_path(name):
    """Absolute path of the imagery file `name`. Raises AssertionError (a test
    failure, not a skip) when neither data directory has it."""
    for d in data_dirs():
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    raise AssertionError(
        "%s is in neither %s: run `make data` (scripts/fetch-data.sh) to fetch data/"
        % (name, " nor ".join(data_dirs()))
    )


def l7_path():
    """Path of data/L7_ETMs.tif (fails the test when missing: `make test`
    fetches it)."""
    return data_path(L7)


def truncated_geotiff(src, dst, keep=0.5, bands=None):
    """Writes a cloud-optimised GeoTIFF of `src` (of its `bands`, a list of
    1-based band numbers, when given; headers first, so GDAL still opens it)
    cut to `keep` of its bytes: reading pixels past the cut fails. Returns dst."""
    full = dst + ".full.tif"
    gdal.Translate(full, src, format="COG", bandList=bands,
                   creationOptions=["BLOCKSIZE=128", "COMPRESS=NONE"])
    with open(full, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    os.remove(full)
    return dst


def run_kiln(args, expect_rc=None, timeout=DEFAULT_TIMEOUT, cwd=None, env=None):
    """Runs kiln with `args` (a list of strings). Returns (rc, stdout, stderr).

    When expect_rc is given and differs, raises AssertionError showing the
    command and both streams, so a failing test says what kiln printed.
    """
    binary = kiln_bin()
    if not os.path.isfile(binary):
        raise AssertionError("kiln binary not found at %s (set KILN_BIN)" % binary)
    cmd = [binary] + [str(a) for a in args]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            cwd=cwd,
            env=full_env,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError("kiln timed out after %ss: %s" % (timeout, " ".join(cmd))) from e
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    if expect_rc is not None and proc.returncode != expect_rc:
        raise AssertionError(
            "%s\nexited %d, expected %d\n--- stdout ---\n%s\n--- stderr ---\n%s"
            % (" ".join(cmd), proc.returncode, expect_rc, out[-4000:], err[-4000:])
        )
    return proc.returncode, out, err


class TempCatalog:
    """A fresh temporary directory for a catalog (or anything else), removed
    on exit. `path` is the catalog root; `tmp` the directory that holds it,
    so a test can check nothing was written beside the catalog."""

    def __init__(self, prefix="kiln-e2e-"):
        self._prefix = prefix
        self.tmp = None
        self.path = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix=self._prefix)
        self.path = os.path.join(self.tmp, "catalog")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def __str__(self):
        return self.path


def layer_dir(catalog, env, layer):
    return os.path.join(str(catalog), env, layer)


def current_dir(catalog, env, layer):
    return os.path.join(layer_dir(catalog, env, layer), "current")


def tile_path(catalog, env, layer, z, x, y, ext):
    """current/<z>/<x>/<y>.<ext> of a layer."""
    return os.path.join(current_dir(catalog, env, layer), str(z), str(x), "%d.%s" % (y, ext))


def load_metadata(catalog, env, layer, version_dir=None):
    """Parsed current/metadata.json (or <version_dir>/metadata.json)."""
    d = version_dir or current_dir(catalog, env, layer)
    with open(os.path.join(d, "metadata.json"), encoding="utf-8") as f:
        return json.load(f)


def list_tiles(layer_version_dir, ext=None):
    """{z: {(x, y): path}} of the tiles under a version directory."""
    tiles = {}
    for zname in os.listdir(layer_version_dir):
        zdir = os.path.join(layer_version_dir, zname)
        if not (zname.isdigit() and os.path.isdir(zdir)):
            continue
        z = int(zname)
        for xname in os.listdir(zdir):
            xdir = os.path.join(zdir, xname)
            if not (xname.isdigit() and os.path.isdir(xdir)):
                continue
            for fname in os.listdir(xdir):
                stem, dot, e = fname.partition(".")
                if not stem.isdigit() or not dot:
                    continue
                if ext is not None and e != ext:
                    continue
                tiles.setdefault(z, {})[(int(xname), int(stem))] = os.path.join(xdir, fname)
    return tiles


def all_files(root):
    """Sorted relative paths of the regular files under root."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def read_tile(path):
    """Decodes a tile file. Returns (data, alpha): data is a numpy array
    [bands, h, w] of the non-alpha bands; alpha [h, w] is the alpha band, or
    else the per-dataset mask (a GeoTIFF internal mask), or None when the
    file carries neither (validity then comes from nodata)."""
    ds = gdal.Open(path)
    try:
        data_bands, alpha = [], None
        for i in range(1, ds.RasterCount + 1):
            b = ds.GetRasterBand(i)
            arr = b.ReadAsArray()
            if b.GetColorInterpretation() == gdal.GCI_AlphaBand:
                alpha = arr
            else:
                data_bands.append(arr)
        if alpha is None:
            b1 = ds.GetRasterBand(1)
            if b1.GetMaskFlags() == gdal.GMF_PER_DATASET:
                alpha = b1.GetMaskBand().ReadAsArray()
        return np.stack(data_bands), alpha
    finally:
        ds = None


def tile_info(path):
    """(driver short name, width, height, band count, GDAL data type name of
    band 1, color interpretations) of a tile file."""
    ds = gdal.Open(path)
    try:
        interps = [
            gdal.GetColorInterpretationName(ds.GetRasterBand(i).GetColorInterpretation())
            for i in range(1, ds.RasterCount + 1)
        ]
        return (
            ds.GetDriver().ShortName,
            ds.RasterXSize,
            ds.RasterYSize,
            ds.RasterCount,
            gdal.GetDataTypeName(ds.GetRasterBand(1).DataType),
            interps,
        )
    finally:
        ds = None


def valid_mask(data, alpha, nodata=None):
    """Pixels a tile marks valid: alpha > 0 when it has alpha, else pixels
    where some band differs from `nodata` (and is not NaN), else all."""
    if alpha is not None:
        return alpha > 0
    if isinstance(nodata, str):  # metadata may spell NaN as "nan"
        nodata = float(nodata)
    mask = np.ones(data.shape[1:], dtype=bool)
    if np.issubdtype(data.dtype, np.floating):
        mask &= ~np.all(np.isnan(data), axis=0)
    if nodata is not None and not math.isnan(nodata):
        mask &= ~np.all(data == nodata, axis=0)
    return mask


def tile_bounds_3857(z, x, y):
    """(min_x, min_y, max_x, max_y) of XYZ tile z/x/y in EPSG:3857 metres
    (origin at the top-left, y grows downward)."""
    span = 2 * WEB_MERCATOR_HALF / (1 << z)
    min_x = -WEB_MERCATOR_HALF + x * span
    max_y = WEB_MERCATOR_HALF - y * span
    return (min_x, max_y - span, min_x + span, max_y)


def band_vrt(src, bands, tmpdir, srs=None):
    """A VRT of `src` with only `bands` (1-based, in order; None: all), and
    the CRS overridden by `srs` when given. Returns its path."""
    fd, path = tempfile.mkstemp(suffix=".vrt", dir=tmpdir)
    os.close(fd)
    kwargs = {"format": "VRT"}
    if bands:
        kwargs["bandList"] = list(bands)
    if srs:
        kwargs["outputSRS"] = srs
    gdal.Translate(path, src, **kwargs)
    return path


def kernel_scale(src, z, x, y, tile_size=256, srs=None):
    """The filter stretch for tile z/x/y of `src` on each axis: the tile's size
    over the span of source pixels it covers (a 21x21 grid of its points
    transformed into the source), snapped to 1/N within 0.05, at most 1. This
    is how Kiln stretches its kernel; gdalwarp computes the same ratio from
    each chunk's source window but clips that window to the source, so for a
    tile the scene only partly covers it filters as if at scale 1."""
    ds = gdal.Open(src)
    opts = ["DST_SRS=EPSG:3857"] + (["SRC_SRS=" + srs] if srs else [])
    tr = gdal.Transformer(ds, None, opts)
    b = tile_bounds_3857(z, x, y)
    xs, ys = [], []
    for j in range(21):
        for i in range(21):
            gx = b[0] + (b[2] - b[0]) * i / 20
            gy = b[3] - (b[3] - b[1]) * j / 20
            ok, p = tr.TransformPoint(1, gx, gy, 0)
            if ok and math.isfinite(p[0]) and math.isfinite(p[1]):
                xs.append(p[0])
                ys.append(p[1])
    ds = None

    def snap(span):
        if not xs or span <= 0:
            return 1.0
        s = tile_size / span
        if s >= 1:
            return 1.0
        n = math.floor(1 / s + 0.5)
        return 1.0 / n if abs(1 / s - n) < 0.05 else s

    return snap(max(xs) - min(xs)) if xs else 1.0, snap(max(ys) - min(ys)) if ys else 1.0


def reference_warp(src, bands, z, x, y, tile_size=256, resample="bilinear", srs=None,
                   output_type=None, scale=None):
    """What gdalwarp makes of tile z/x/y: warps `src` (its `bands`, 1-based;
    None: all) into the tile's EPSG:3857 bounds at tile_size x tile_size with
    an alpha band, GDAL's default approximate transform (-et 0.125).
    `srs` assigns a CRS to a source that lacks one. `scale` (x, y) sets the
    warp kernel's filter stretch (see kernel_scale). Returns (data
    [bands,h,w], alpha [h,w])."""
    tmpdir = tempfile.mkdtemp(prefix="kiln-ref-")
    try:
        vrt = band_vrt(src, bands, tmpdir, srs)
        kwargs = dict(
            format="MEM",
            outputBounds=tile_bounds_3857(z, x, y),
            width=tile_size,
            height=tile_size,
            dstSRS="EPSG:3857",
            dstAlpha=True,
            resampleAlg=resample,
            multithread=False,
        )
        if output_type is not None:
            kwargs["outputType"] = output_type
        if scale is not None:
            # SOURCE_EXTRA: gdalwarp sizes its source window's margin by its
            # own scale; with a wider filter forced, taps past that margin
            # would be cut off at the window edge.
            kwargs["warpOptions"] = ["XSCALE=%.17g" % scale[0], "YSCALE=%.17g" % scale[1],
                                     "SOURCE_EXTRA=%d" % (math.ceil(3 / min(scale)) + 1),
                                     # Whole tile in one chunk, so each row is approximated
                                     # over the tile width (as Kiln does), even where the
                                     # tile covers a small corner of the source.
                                     "SRC_FILL_RATIO_HEURISTICS=NO"]
        ds = gdal.Warp("", vrt, **kwargs)
        n = ds.RasterCount
        data = np.stack([ds.GetRasterBand(i).ReadAsArray() for i in range(1, n)])
        alpha = ds.GetRasterBand(n).ReadAsArray()
        ds = None
        return data, alpha
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def gdal2tiles_max_zoom(src, tile_size=256, srs=None):
    """The max zoom gdal2tiles picks for `src`: the deepest zoom whose
    resolution is not finer than the source's pixel size once warped to
    EPSG:3857 by gdal.AutoCreateWarpedVRT (gdal2tiles' ZoomForPixelSize)."""
    ds = gdal.Open(src)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(3857)
    src_wkt = srs_wkt(srs) if srs else ds.GetProjection()
    vrt = gdal.AutoCreateWarpedVRT(ds, src_wkt, dst.ExportToWkt())
    pixel = vrt.GetGeoTransform()[1]
    res0 = 2 * WEB_MERCATOR_HALF / tile_size
    for i in range(32):
        if pixel > res0 / (1 << i):
            return max(0, i - 1)
    return 31


def srs_wkt(user_input):
    s = osr.SpatialReference()
    s.SetFromUserInput(user_input)
    return s.ExportToWkt()


def open_with_wgs84_transform(src, srs=None):
    """(dataset, transformation from its CRS, or `srs` when given, to WGS84
    lon/lat in traditional GIS order)."""
    ds = gdal.Open(src)
    s = osr.SpatialReference()
    if srs:
        s.SetFromUserInput(srs)
    else:
        s.ImportFromWkt(ds.GetProjection())
    s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    t = osr.SpatialReference()
    t.ImportFromEPSG(4326)
    t.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return ds, osr.CoordinateTransformation(s, t)


def footprint_wgs84(src, srs=None, densify=21):
    """(min_lon, min_lat, max_lon, max_lat) of the source's pixel footprint,
    its edges densified, transformed with osr (lon/lat order)."""
    ds, ct = open_with_wgs84_transform(src, srs)
    gt = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    pts = []
    for i in range(densify + 1):
        f = i / densify
        for px, py in ((f * w, 0), (f * w, h), (0, f * h), (w, f * h)):
            gx = gt[0] + px * gt[1] + py * gt[2]
            gy = gt[3] + px * gt[4] + py * gt[5]
            lon, lat, _ = ct.TransformPoint(gx, gy)
            pts.append((lon, lat))
    lons = [p[0] for p in pts]
    lats = [p[1] for p in pts]
    return (min(lons), min(lats), max(lons), max(lats))


def pixel_size_degrees(src, srs=None):
    """Approximate size of one source pixel in degrees of lon/lat near the
    source's centre (the larger of the two axes): the scale for comparing
    extents that may legitimately differ by a fraction of a pixel."""
    ds, ct = open_with_wgs84_transform(src, srs)
    gt = ds.GetGeoTransform()
    cx, cy = ds.RasterXSize / 2, ds.RasterYSize / 2
    pts = []
    for px, py in ((cx, cy), (cx + 1, cy + 1)):
        pts.append(ct.TransformPoint(gt[0] + px * gt[1] + py * gt[2],
                                     gt[3] + px * gt[4] + py * gt[5]))
    return max(abs(pts[1][0] - pts[0][0]), abs(pts[1][1] - pts[0][1]))


def bbox(value):
    """(min_x, min_y, max_x, max_y) from a metadata extent written either as
    [min_x, min_y, max_x, max_y] or as {"min_x": .., "min_y": .., ...}."""
    if isinstance(value, dict):
        return tuple(float(value[k]) for k in ("min_x", "min_y", "max_x", "max_y"))
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return tuple(float(v) for v in value)
    raise AssertionError("extent is neither [4 numbers] nor {min_x,...}: %r" % (value,))


def ingest_args(sources, catalog, layer, *extra):
    """Arguments of `kiln ingest SOURCE... --layer L --catalog C extra...`
    with progress output off (tests read stderr for errors only)."""
    if isinstance(sources, str):
        sources = [sources]
    return ["ingest"] + list(sources) + [
        "--layer", layer, "--catalog", str(catalog), "--progress", "none"] + list(extra)


def ingest_l7(catalog, layer="l7", *extra):
    """Ingests data/L7_ETMs.tif bands 3,2,1 as PNG into `catalog` (env
    default); raises AssertionError unless kiln exits 0 and publishes.
    Returns the layer's current directory."""
    run_kiln(ingest_args(l7_path(), catalog, layer, "--bands", "3,2,1", "--format", "png",
                         *extra), expect_rc=EXIT_OK)
    d = current_dir(catalog, "default", layer)
    if not os.path.isdir(d):
        raise AssertionError("%s missing after a successful ingest" % d)
    return d


def assert_nothing_published(testcase, catalog, env, layer):
    """No version became visible: <layer>/current is absent, no versions/ entry
    exists and <layer>/.staging is absent or empty."""
    ldir = layer_dir(catalog, env, layer)
    testcase.assertFalse(os.path.lexists(os.path.join(ldir, "current")),
                         "%s/current exists after a failed ingest" % ldir)
    versions = os.path.join(ldir, "versions")
    if os.path.isdir(versions):
        testcase.assertEqual(os.listdir(versions), [],
                             "versions published after a failed ingest")
    assert_staging_clean(testcase, ldir)


def assert_staging_clean(testcase, ldir):
    staging = os.path.join(ldir, ".staging")
    if os.path.isdir(staging):
        testcase.assertEqual(os.listdir(staging), [],
                             "%s not cleaned after a failed ingest" % staging)


def write_raster(path, array, geotransform=None, srs=None, nodata=None, driver="GTiff"):
    """Writes `array` ([bands,h,w] or [h,w]) as a raster file; returns path."""
    if array.ndim == 2:
        array = array[np.newaxis]
    bands, h, w = array.shape
    gdal_type = gdal.GetDataTypeByName(
        {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "float32": "Float32",
         "float64": "Float64"}[array.dtype.name])
    ds = gdal.GetDriverByName(driver).Create(path, w, h, bands, gdal_type)
    if geotransform is not None:
        ds.SetGeoTransform(geotransform)
    if srs is not None:
        ds.SetProjection(srs_wkt(srs))
    for i in range(bands):
        b = ds.GetRasterBand(i + 1)
        if nodata is not None:
            b.SetNoDataValue(nodata)
        b.WriteArray(array[i])
    ds.FlushCache()
    ds = None
    return path


def parents_of(tiles_at_child_zoom):
    """Set of parent (x, y) keys of a set of child (x, y) keys."""
    return {(x // 2, y // 2) for (x, y) in tiles_at_child_zoom}


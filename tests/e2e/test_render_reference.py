"""Rendering analytic tiles: `kiln render-tile` against numpy.

Real rasters from tests/data are ingested as tif (analytic) layers; one
stored tile of each is rendered by `kiln render-tile` (the renderer the tile
endpoint uses, src/render) and compared with the same computation written
here in numpy from docs/rendering.md: rescale and colour maps exactly,
hillshade within 1 DN, nodata transparent. The colour-map stops below are
typed from the published sources docs/rendering.md names, independently of
src/render/colormap.cc.
"""

import json
import math
import os
import unittest

import numpy as np
from osgeo import gdal

import kiln_test as kt

gdal.UseExceptions()

EARTH_RADIUS = 6378137.0

# (position, 0xRRGGBB) control points per map, from docs/rendering.md.
STOPS = {
    "viridis": [0x440154, 0x482576, 0x414487, 0x35608D, 0x2A788E, 0x21908C,
                0x22A884, 0x43BF71, 0x7AD151, 0xBBDF27, 0xFDE725],
    "magma": [0x000004, 0x140E36, 0x3B0F70, 0x641A80, 0x8C2981, 0xB73779,
              0xDE4968, 0xF7705C, 0xFE9F6D, 0xFECF92, 0xFCFDBF],
    "greys": [0xFFFFFF, 0xF0F0F0, 0xD9D9D9, 0xBDBDBD, 0x969696, 0x737373, 0x525252,
              0x252525, 0x000000],
    "RdYlGn": [0xA50026, 0xD73027, 0xF46D43, 0xFDAE61, 0xFEE08B, 0xFFFFBF,
               0xD9EF8B, 0xA6D96A, 0x66BD63, 0x1A9850, 0x006837],
}
TERRAIN = [(0.0, 0x333399), (0.15, 0x0099FF), (0.25, 0x00CC66), (0.5, 0xFFFF99),
           (0.75, 0x805C54), (1.0, 0xFFFFFF)]


def stops_of(name):
    if name == "terrain":
        return TERRAIN
    s = STOPS[name]
    return [(i / (len(s) - 1), c) for i, c in enumerate(s)]


def colour_table(name):
    """256x3 uint8: entry i at t = i/255, channels linear between stops,
    rounded half up."""
    stops = stops_of(name)
    table = np.zeros((256, 3), np.uint8)
    k = 0
    for i in range(256):
        t = i / 255.0
        while k + 2 < len(stops) and t > stops[k + 1][0]:
            k += 1
        (a_at, a), (b_at, b) = stops[k], stops[k + 1]
        f = min(max((t - a_at) / (b_at - a_at), 0.0), 1.0)
        for ch, shift in enumerate((16, 8, 0)):
            x, y = (a >> shift) & 255, (b >> shift) & 255
            table[i, ch] = int(math.floor(x + (y - x) * f + 0.5))
    return table


def rescale(values, lo, hi):
    out = np.floor((values.astype(np.float64) - lo) * 255.0 / (hi - lo) + 0.5)
    return np.clip(out, 0, 255).astype(np.uint8)


def percentile(hist, p):
    """The p-th percentile of a metadata.json histogram, linear inside the
    bucket it falls in (docs/rendering.md)."""
    buckets = hist["buckets"]
    total = float(sum(buckets))
    width = (hist["max"] - hist["min"]) / float(len(buckets))
    target = p / 100.0 * total
    below = 0.0
    for i, c in enumerate(buckets):
        c = float(c)
        if c > 0 and below + c >= target:
            return hist["min"] + (float(i) + (target - below) / c) * width
        below += c
    return hist["max"]


def read_stored(path):
    """(bands [b, h, w] float64, valid [h, w] bool, geotransform) of a tif tile."""
    ds = gdal.Open(path)
    arrays, valid = [], None
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        a = band.ReadAsArray().astype(np.float64)
        ok = ~np.isnan(a)
        nd = band.GetNoDataValue()
        if nd is not None:
            ok &= a != nd
        arrays.append(a)
        valid = ok if valid is None else valid & ok
    return np.stack(arrays), valid, ds.GetGeoTransform()


def read_image(path):
    """(rgb [h, w, c] uint8, alpha [h, w] uint8) of a rendered PNG/WebP.
    Transparency as GDAL reads it: an alpha band, or a PNG tRNS colour key
    (the bands' nodata); 255 everywhere when the file has neither."""
    ds = gdal.Open(path)
    bands = [ds.GetRasterBand(i) for i in range(1, ds.RasterCount + 1)]
    colour = [b for b in bands if b.GetColorInterpretation() != gdal.GCI_AlphaBand]
    alpha = colour[0].GetMaskBand().ReadAsArray()
    return np.dstack([b.ReadAsArray() for b in colour]), alpha


def fullest_tile(version_dir):
    """The max-zoom tif tile with the most valid pixels (not all valid when
    possible, so transparency is exercised too)."""
    tiles = kt.list_tiles(version_dir, "tif")
    z = max(tiles)
    best, best_count = None, -1
    for (_x, _y), path in sorted(tiles[z].items()):
        _bands, valid, _gt = read_stored(path)
        count = int(valid.sum()) - (10 if valid.all() else 0)
        if count > best_count:
            best, best_count = path, count
    return best


def hillshade(elev, valid, gt, azimuth, altitude, z_factor):
    """Horn's gradient with neighbours outside the tile or without data
    replaced by the centre value; ground pixel size = Mercator size x
    cos(latitude of the row's centre)."""
    h, w = elev.shape
    centre = elev
    padded = np.pad(elev, 1, mode="edge")
    pvalid = np.pad(valid, 1, mode="constant", constant_values=False)

    def nb(dy, dx):
        v = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        ok = pvalid[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        return np.where(ok, v, centre)

    a, b, c = nb(-1, -1), nb(-1, 0), nb(-1, 1)
    d, f = nb(0, -1), nb(0, 1)
    g, hh, i = nb(1, -1), nb(1, 0), nb(1, 1)
    rows = gt[3] - (np.arange(h) + 0.5) * (-gt[5])
    lat = 2.0 * np.arctan(np.exp(rows / EARTH_RADIUS)) - math.pi / 2
    scale = np.cos(lat)[:, None]
    gx = gt[1] * scale
    gy = -gt[5] * scale
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * gx)
    dzdy = ((g + 2 * hh + i) - (a + 2 * b + c)) / (8 * gy)
    az, alt = math.radians(azimuth), math.radians(altitude)
    lit = (math.sin(alt) - z_factor * dzdx * math.sin(az) * math.cos(alt)
           + z_factor * dzdy * math.cos(az) * math.cos(alt)) / np.sqrt(
               1 + z_factor * z_factor * (dzdx * dzdx + dzdy * dzdy))
    out = np.minimum(np.floor(255.0 * np.maximum(lit, 0.0) + 0.5), 255)
    return np.where(valid, out, 0).astype(np.uint8)


class RenderReferenceTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cat = kt.TempCatalog(prefix="kiln-render-")
        cls.cat.__enter__()
        for layer, name in (("rgb16", "rt_mosaic_cog1.crop.tif"),
                            ("band16", "rt_cog_nodata.crop.tif"),
                            ("dem", "dem-hills.crop.tif")):
            kt.run_kiln(kt.ingest_args(kt.data_path(name), cls.cat.path, layer,
                                       "--format", "tif"), expect_rc=kt.EXIT_OK)

    @classmethod
    def tearDownClass(cls):
        cls.cat.__exit__(None, None, None)

    def render(self, tile, params, name, expect_rc=kt.EXIT_OK):
        out = os.path.join(self.cat.tmp, name)
        rc, _out, err = kt.run_kiln(["render-tile", "--tile", tile, "--params", params,
                                     "--out", out], expect_rc=expect_rc)
        return out, err

    def test_three_band_rescale_is_exact(self):
        tile = fullest_tile(kt.current_dir(self.cat.path, "default", "rgb16"))
        bands, valid, _gt = read_stored(tile)
        ranges = [(6000, 13500), (7000.5, 12500), (8000, 12500)]
        params = "bidx=3,2,1&rescale=" + ";".join("%s,%s" % r for r in ranges)
        out, _ = self.render(tile, params, "rgb16.png")
        rgb, alpha = read_image(out)
        want = np.dstack([rescale(bands[b], *ranges[k]) for k, b in enumerate((2, 1, 0))])
        self.assertGreater(valid.sum(), 1000, tile)
        np.testing.assert_array_equal(alpha, np.where(valid, 255, 0))
        # Under transparent pixels the colour is the encoder's (a tRNS key).
        np.testing.assert_array_equal(rgb[valid], want[valid])
        # A band's values are spread over the range, not flattened to its ends.
        self.assertGreater(len(np.unique(rgb[..., 0][valid])), 50)

    def test_default_rescale_and_colormap_are_exact(self):
        vdir = kt.current_dir(self.cat.path, "default", "band16")
        meta = kt.load_metadata(self.cat.path, "default", "band16")
        hist = meta["statistics"][0]["histogram"]
        lo, hi = percentile(hist, 2), percentile(hist, 98)
        if not lo < hi:
            hi = lo + 1
        tile = fullest_tile(vdir)
        bands, valid, _gt = read_stored(tile)
        self.assertFalse(valid.all(), "the tile should hold nodata")
        for cmap in ("viridis", "magma", "terrain", "RdYlGn"):
            with self.subTest(colormap=cmap):
                out, _ = self.render(tile, "colormap=" + cmap.lower(), cmap + ".png")
                rgb, alpha = read_image(out)
                want = colour_table(cmap)[rescale(bands[0], lo, hi)]
                np.testing.assert_array_equal(alpha, np.where(valid, 255, 0))
                np.testing.assert_array_equal(rgb[valid], want[valid])

    def test_single_band_grey_with_explicit_rescale(self):
        tile = fullest_tile(kt.current_dir(self.cat.path, "default", "band16"))
        bands, valid, _gt = read_stored(tile)
        out, _ = self.render(tile, "rescale=2700,8000", "grey.png")
        grey, alpha = read_image(out)
        self.assertEqual(grey.shape[2], 1)
        want = rescale(bands[0], 2700, 8000)
        np.testing.assert_array_equal(grey[..., 0][valid], want[valid])
        np.testing.assert_array_equal(alpha, np.where(valid, 255, 0))

    def test_hillshade_within_one_dn(self):
        tile = fullest_tile(kt.current_dir(self.cat.path, "default", "dem"))
        bands, valid, gt = read_stored(tile)
        for az, alt, zf in ((315, 45, 1), (120, 30, 3.5)):
            with self.subTest(azimuth=az, altitude=alt, z_factor=zf):
                params = "hillshade&azimuth=%s&altitude=%s&z_factor=%s" % (az, alt, zf)
                out, _ = self.render(tile, params, "shade.png")
                grey, alpha = read_image(out)
                want = hillshade(bands[0], valid, gt, az, alt, zf)
                np.testing.assert_array_equal(alpha, np.where(valid, 255, 0))
                diff = np.abs(grey[..., 0].astype(int) - want.astype(int))
                self.assertLessEqual(int(diff[valid].max()), 1)
                # Real relief: the shading is not flat.
                self.assertGreater(float(grey[..., 0][valid].std()), 5)

    def test_webp(self):
        tile = fullest_tile(kt.current_dir(self.cat.path, "default", "band16"))
        out, _ = self.render(tile, "rescale=2700,8000&colormap=greys&format=webp", "g.webp")
        with open(out, "rb") as f:
            head = f.read(12)
        self.assertEqual(head[:4], b"RIFF")
        self.assertEqual(head[8:12], b"WEBP")
        bands, valid, _gt = read_stored(tile)
        rgb, alpha = read_image(out)
        want = colour_table("greys")[rescale(bands[0], 2700, 8000)]
        # Lossy: compare the mean error over valid pixels.
        err = np.abs(rgb.astype(int) - want.astype(int))[valid].mean()
        self.assertLess(err, 4)
        np.testing.assert_array_equal(alpha > 127, valid)

    def test_bad_parameters_are_refused_by_name(self):
        tile = fullest_tile(kt.current_dir(self.cat.path, "default", "band16"))
        for params, culprit in (("rescale=5,1", "rescale:"), ("colormap=jet", "colormap:"),
                                ("bidx=2", "bidx: band 2 does not exist"),
                                ("format=gif", "format:"), ("azimuth=3", "azimuth:"),
                                ("hillshade&altitude=200", "altitude:")):
            with self.subTest(params=params):
                out, err = self.render(tile, params, "bad.png", expect_rc=kt.EXIT_USAGE)
                self.assertIn(culprit, err)
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()

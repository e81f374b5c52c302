"""Every cell type, nodata and NaN, through warping and pyramids.

The floating layout keeps the source grid, so with nearest resampling each
max-zoom tif tile must hold exactly the source pixels under it: any type
conversion, nodata leak or off-by-one shows as a difference. The level below
must be the 2x2 average of the valid pixels only (a nodata pixel never
bleeds into a value).
"""

import os
import tempfile
import unittest

import numpy as np
from osgeo import gdal

import kiln_test as kt

gdal.UseExceptions()

# (GDAL type name, numpy dtype, scale to range, nodata)
CASES = [
    ("Byte", np.uint8, (1, 255), 0),
    ("UInt16", np.uint16, (1, 60000), 0),
    ("Int16", np.int16, (-30000, 30000), -32768),
    ("UInt32", np.uint32, (1, 4000000000), 0),
    ("Int32", np.int32, (-2000000000, 2000000000), -2147483648),
    ("Int64", np.int64, (-(2**40), 2**40), -(2**62)),
    ("UInt64", np.uint64, (1, 2**40), 0),
    ("Float32", np.float32, (-1000.5, 1000.5), float("nan")),
    ("Float64", np.float64, (-1e6, 1e6), -9999.0),
]


def make_source(path, gdal_type, dtype, value_range, nodata):
    """One band of the L7 scene stretched to the type's range, with the
    top-left 40x40 block set to nodata."""
    src = gdal.Open(kt.l7_path())
    band = src.GetRasterBand(1)
    base = band.ReadAsArray().astype(np.float64)
    lo, hi = value_range
    arr = lo + (base - base.min()) / (base.max() - base.min()) * (hi - lo)
    if np.issubdtype(dtype, np.integer):
        arr = np.round(arr)
    arr = arr.astype(dtype)
    if np.issubdtype(dtype, np.integer):
        arr[arr == dtype(nodata)] = dtype(nodata) + 1  # keep data distinct from nodata
    arr[:40, :40] = nodata
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(path, src.RasterXSize, src.RasterYSize, 1, gdal.GetDataTypeByName(gdal_type))
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    b = ds.GetRasterBand(1)
    b.SetNoDataValue(int(nodata) if np.issubdtype(dtype, np.integer) else float(nodata))
    b.WriteArray(arr)
    ds = None
    return arr


def is_valid(values, nodata):
    if isinstance(nodata, float) and np.isnan(nodata):
        return ~np.isnan(values)
    return values != np.array(nodata).astype(values.dtype)


class CellTypes(unittest.TestCase):
    def test_every_type_round_trips_and_averages_without_nodata_bleeding(self):
        with tempfile.TemporaryDirectory(prefix="kiln-types-") as tmp, kt.TempCatalog() as cat:
            for gdal_type, dtype, value_range, nodata in CASES:
                with self.subTest(cell_type=gdal_type):
                    path = os.path.join(tmp, gdal_type + ".tif")
                    src = make_source(path, gdal_type, dtype, value_range, nodata)
                    layer = "t-" + gdal_type.lower()
                    kt.run_kiln(
                        ["ingest", path, "--layer", layer, "--catalog", cat, "--layout",
                         "floating", "--format", "tif", "--resample", "nearest",
                         "--progress", "none", "-q"],
                        expect_rc=0,
                    )
                    meta = kt.load_metadata(cat, "default", layer)
                    self.assertEqual(meta["cell_type"], np.dtype(dtype).name)
                    zmax = meta["zoom"]["max"]
                    self.assertEqual(zmax, 1)  # 349x352 px in 256-px tiles
                    cur = kt.current_dir(cat, "default", layer)

                    # Max zoom: tiles mosaic back into the source exactly.
                    h, w = src.shape
                    mosaic = np.zeros((512, 512), dtype=dtype)
                    valid = np.zeros((512, 512), dtype=bool)
                    for ty in range(2):
                        for tx in range(2):
                            p = os.path.join(cur, str(zmax), str(tx), "%d.tif" % ty)
                            self.assertTrue(os.path.exists(p), p)
                            ds = gdal.Open(p)
                            self.assertEqual(gdal.GetDataTypeName(ds.GetRasterBand(1).DataType),
                                             gdal_type)
                            t = ds.GetRasterBand(1).ReadAsArray()
                            nd = ds.GetRasterBand(1).GetNoDataValue()
                            ds = None
                            self.assertIsNotNone(nd, "tif tiles carry the nodata value")
                            mosaic[ty * 256:(ty + 1) * 256, tx * 256:(tx + 1) * 256] = t
                            valid[ty * 256:(ty + 1) * 256, tx * 256:(tx + 1) * 256] = \
                                is_valid(t, nodata)
                    src_valid = is_valid(src, nodata)
                    np.testing.assert_array_equal(valid[:h, :w], src_valid)
                    self.assertFalse(valid[h:, :].any() or valid[:, w:].any(),
                                     "pixels beyond the source are nodata")
                    np.testing.assert_array_equal(mosaic[:h, :w][src_valid], src[src_valid])

                    # Level below: the average of valid children, rounded half
                    # away from zero for integers.
                    kids = mosaic.astype(np.float64)
                    kv = valid
                    blocks = kids.reshape(256, 2, 256, 2)
                    vb = kv.reshape(256, 2, 256, 2)
                    count = vb.sum(axis=(1, 3))
                    total = np.where(vb, blocks, 0).sum(axis=(1, 3))
                    with np.errstate(invalid="ignore", divide="ignore"):
                        mean = total / count
                    if np.issubdtype(dtype, np.integer):
                        mean = np.sign(mean) * np.floor(np.abs(mean) + 0.5)
                    p0 = os.path.join(cur, str(zmax - 1), "0", "0.tif")
                    ds0 = gdal.Open(p0)  # keep the dataset alive while its band is read
                    t0 = ds0.GetRasterBand(1).ReadAsArray()
                    ds0 = None
                    v0 = is_valid(t0, nodata)
                    np.testing.assert_array_equal(v0, count > 0)
                    if np.issubdtype(dtype, np.integer) and np.dtype(dtype).itemsize == 8:
                        # 64-bit: compare in float64 (the mean of four
                        # values near 2^40 is exact there).
                        np.testing.assert_array_equal(t0[v0].astype(np.float64), mean[v0])
                    elif np.issubdtype(dtype, np.integer):
                        np.testing.assert_array_equal(t0[v0], mean[v0].astype(dtype))
                    else:
                        np.testing.assert_allclose(t0[v0], mean[v0].astype(dtype), rtol=1e-6)


if __name__ == "__main__":
    unittest.main()

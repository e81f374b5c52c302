// Raster blobs: what a partition hands to the reduce step. They must come
// back exactly, and damaged bytes must come back as an error, never as a
// crash or a silently different raster.
#include "raster/raster_blob.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include <gtest/gtest.h>

namespace kiln {
namespace {

constexpr CellType kAllTypes[] = {CellType::kUInt8,  CellType::kUInt16,  CellType::kInt16,
                                  CellType::kUInt32, CellType::kInt32,   CellType::kUInt64,
                                  CellType::kInt64,  CellType::kFloat32, CellType::kFloat64};

// Every pixel different, extremes of the type present, a patterned mask.
Raster pattern(int w, int h, int bands, CellType type) {
  Raster r(w, h, bands, type);
  dispatch_cell_type(type, [&]<typename T>() {
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (int b = 0; b < bands; ++b) {
      T* p = r.band_as<T>(b);
      for (size_t i = 0; i < r.pixels(); ++i) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        if constexpr (std::is_floating_point_v<T>) {
          p[i] = static_cast<T>(static_cast<double>(state >> 11) / 1e9 - 4e6);
        } else {
          p[i] = static_cast<T>(state >> 17);
        }
      }
      p[0] = std::numeric_limits<T>::lowest();
      p[1] = std::numeric_limits<T>::max();
    }
  });
  for (size_t i = 0; i < r.pixels(); ++i) r.mask[i] = (i % 5 == 0) ? 0 : 255;
  return r;
}

TEST(RasterBlob, RoundTripsEveryCellType) {
  for (CellType t : kAllTypes) {
    const Raster in = pattern(37, 19, 3, t);
    const std::string bytes = serialize_raster(in);
    auto out = deserialize_raster(bytes);
    ASSERT_TRUE(out.is_ok()) << cell_type_name(t) << ": " << out.status().to_string();
    EXPECT_EQ(out->width, 37) << cell_type_name(t);
    EXPECT_EQ(out->height, 19) << cell_type_name(t);
    EXPECT_EQ(out->bands, 3) << cell_type_name(t);
    EXPECT_EQ(out->type, t) << cell_type_name(t);
    EXPECT_EQ(out->data, in.data) << cell_type_name(t);
    EXPECT_EQ(out->mask, in.mask) << cell_type_name(t);
  }
}

TEST(RasterBlob, RoundTripsNanAndAnAllInvalidMask) {
  Raster in(4, 4, 1, CellType::kFloat32);
  for (int i = 0; i < 16; ++i) in.band_as<float>(0)[i] = std::nanf("");
  auto out = deserialize_raster(serialize_raster(in));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(std::isnan(out->band_as<float>(0)[i]));
  EXPECT_FALSE(out->any_valid());
}

TEST(RasterBlob, SameRasterSameBytes) {
  const Raster a = pattern(16, 16, 2, CellType::kUInt16);
  EXPECT_EQ(serialize_raster(a), serialize_raster(a));
}

TEST(RasterBlob, EmptyAndForeignBytesAreErrors) {
  for (const std::string& bytes : {std::string(), std::string("KILN"), std::string(64, '\0'),
                                   std::string("not a raster blob at all, just some text")}) {
    auto r = deserialize_raster(bytes);
    ASSERT_FALSE(r.is_ok()) << "accepted " << bytes.size() << " bytes";
    EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  }
}

TEST(RasterBlob, EveryTruncationIsAnError) {
  const std::string bytes = serialize_raster(pattern(9, 7, 2, CellType::kInt32));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = deserialize_raster(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(r.is_ok()) << "accepted the first " << n << " of " << bytes.size() << " bytes";
  }
}

// The blob begins with a fixed header: 8 magic bytes, then int32 width,
// height, bands, type and a uint64 raw size (native byte order).
constexpr size_t kWidthAt = 8, kHeightAt = 12, kBandsAt = 16, kTypeAt = 20, kRawSizeAt = 24;
constexpr size_t kHeaderBytes = 32;

std::string with_field(std::string bytes, size_t at, int32_t v) {
  std::memcpy(bytes.data() + at, &v, sizeof v);
  return bytes;
}

TEST(RasterBlob, DamagedHeaderFieldsAreErrors) {
  const std::string good = serialize_raster(pattern(8, 4, 2, CellType::kUInt8));
  ASSERT_TRUE(deserialize_raster(good).is_ok());
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_FALSE(deserialize_raster(magic).is_ok()) << "bad magic";
  EXPECT_FALSE(deserialize_raster(with_field(good, kTypeAt, 9)).is_ok()) << "type 9";
  EXPECT_FALSE(deserialize_raster(with_field(good, kTypeAt, -1)).is_ok()) << "type -1";
  EXPECT_FALSE(deserialize_raster(with_field(good, kWidthAt, 0)).is_ok()) << "width 0";
  EXPECT_FALSE(deserialize_raster(with_field(good, kHeightAt, -4)).is_ok()) << "height -4";
  EXPECT_FALSE(deserialize_raster(with_field(good, kBandsAt, 3)).is_ok()) << "bands 3";
  // A raw size that disagrees with the shape.
  std::string raw = good;
  const uint64_t seven = 7;
  std::memcpy(raw.data() + kRawSizeAt, &seven, sizeof seven);
  EXPECT_FALSE(deserialize_raster(raw).is_ok()) << "raw size 7";
  // A wider cell type than the payload holds.
  EXPECT_FALSE(
      deserialize_raster(with_field(good, kTypeAt, static_cast<int32_t>(CellType::kUInt16)))
          .is_ok())
      << "type uint16";
}

// Regression test: raster_blob.cc allocates the Raster from
// the header's width x height x bands before checking raw_size, so a header
// claiming a huge raster throws std::bad_alloc (a crash in the reduce step)
// instead of returning kInternal.
TEST(RasterBlob, HugeDimensionsInTheHeaderAreAnErrorNotACrash) {
  const std::string good = serialize_raster(pattern(8, 4, 2, CellType::kUInt8));
  std::string huge = with_field(good, kWidthAt, std::numeric_limits<int32_t>::max());
  huge = with_field(huge, kHeightAt, std::numeric_limits<int32_t>::max());
  bool threw = false;
  bool ok = false;
  try {
    ok = deserialize_raster(huge).is_ok();
  } catch (const std::exception& e) {
    threw = true;
    ADD_FAILURE() << "threw " << e.what() << " instead of returning an error";
  }
  EXPECT_FALSE(threw);
  EXPECT_FALSE(ok);
}

// Regression test: the zstd frame carries no checksum, so a
// damaged byte in the compressed payload can decode into a different raster
// with no error. The blob crosses processes and hosts; it must be checked.
TEST(RasterBlob, DamagedPayloadIsAnErrorNotADifferentRaster) {
  const Raster in = pattern(16, 8, 2, CellType::kUInt16);
  const std::string good = serialize_raster(in);
  ASSERT_GT(good.size(), kHeaderBytes);
  int silent = 0;
  size_t first_silent = 0;
  for (size_t i = kHeaderBytes; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    auto r = deserialize_raster(bad);
    if (r.is_ok() && (r->data != in.data || r->mask != in.mask)) {
      if (silent++ == 0) first_silent = i;
    }
  }
  EXPECT_EQ(silent, 0) << silent << " of " << good.size() - kHeaderBytes
                       << " single-byte payload corruptions decoded silently into a different "
                          "raster (first at byte "
                       << first_silent << ")";
}

}  // namespace
}  // namespace kiln

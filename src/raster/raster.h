// Raster: an in-memory block of pixels with a validity mask. Tiles, partition
// mosaics and pyramid levels are all Rasters.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "raster/cell_type.h"

namespace kiln {

// Band-sequential pixels (band 0 rows, then band 1 rows, ...) and one mask
// shared by all bands: mask[i] == 0 means "no data here", 255 means valid.
// Pixels under a 0 mask hold the layer's nodata value (or 0 when there is
// none) so encoders may write them as they are.
struct Raster {
  int width = 0;
  int height = 0;
  int bands = 0;
  CellType type = CellType::kUInt8;
  std::vector<uint8_t> data;
  std::vector<uint8_t> mask;

  Raster() = default;
  // Allocates a zero-filled raster with an all-invalid mask.
  Raster(int w, int h, int b, CellType t)
      : width(w),
        height(h),
        bands(b),
        type(t),
        data(static_cast<size_t>(w) * h * b * cell_bytes(t), 0),
        mask(static_cast<size_t>(w) * h, 0) {}

  // Reshapes in place, keeping the buffers' capacity so that a raster reused
  // for one region after another costs no fresh pages. With `zero`, values
  // are zeroed and the mask cleared to all-invalid, as after construction;
  // without it their contents are unspecified (for a caller that writes
  // every pixel).
  void reset(int w, int h, int b, CellType t, bool zero = true) {
    width = w;
    height = h;
    bands = b;
    type = t;
    data.resize(static_cast<size_t>(w) * h * b * cell_bytes(t));
    mask.resize(static_cast<size_t>(w) * h);
    if (zero) {
      std::memset(data.data(), 0, data.size());
      std::memset(mask.data(), 0, mask.size());
    }
  }

  size_t pixels() const { return static_cast<size_t>(width) * height; }
  size_t band_bytes() const { return pixels() * cell_bytes(type); }
  uint8_t* band_data(int b) { return data.data() + b * band_bytes(); }
  const uint8_t* band_data(int b) const { return data.data() + b * band_bytes(); }
  template <typename T>
  T* band_as(int b) {
    return reinterpret_cast<T*>(band_data(b));
  }
  template <typename T>
  const T* band_as(int b) const {
    return reinterpret_cast<const T*>(band_data(b));
  }
  bool any_valid() const {
    for (uint8_t m : mask)
      if (m) return true;
    return false;
  }
  bool all_valid() const {
    for (uint8_t m : mask)
      if (!m) return false;
    return true;
  }
};

// Calls f.template operator()<T>() with T the C++ type of `t`.
template <typename F>
decltype(auto) dispatch_cell_type(CellType t, F&& f) {
  switch (t) {
    case CellType::kUInt8:
      return f.template operator()<uint8_t>();
    case CellType::kUInt16:
      return f.template operator()<uint16_t>();
    case CellType::kInt16:
      return f.template operator()<int16_t>();
    case CellType::kUInt32:
      return f.template operator()<uint32_t>();
    case CellType::kInt32:
      return f.template operator()<int32_t>();
    case CellType::kUInt64:
      return f.template operator()<uint64_t>();
    case CellType::kInt64:
      return f.template operator()<int64_t>();
    case CellType::kFloat32:
      return f.template operator()<float>();
    case CellType::kFloat64:
      return f.template operator()<double>();
  }
  return f.template operator()<uint8_t>();
}

}  // namespace kiln

#include "raster/png_encoder.h"

#include <array>
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libdeflate.h>

namespace kiln {
namespace {

// PNG written directly: signature, IHDR, one IDAT holding a zlib stream made
// by libdeflate in one call, IEND. libdeflate compresses a whole buffer at a
// time several times faster than zlib's streaming deflate at the same level
// and ratio, and tiles are small enough to hold whole (256 KiB raw RGBA).

struct CompressorDeleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};

// One compressor per thread and level: they cost ~1 MB to set up.
libdeflate_compressor* compressor_for(int level) {
  thread_local std::unique_ptr<libdeflate_compressor, CompressorDeleter> cached[13];
  auto& c = cached[level];
  if (!c) c.reset(libdeflate_alloc_compressor(level));
  return c.get();
}

void put_u32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

void put_chunk(std::string* out, const char type[4], const uint8_t* data, size_t n) {
  put_u32(out, static_cast<uint32_t>(n));
  const size_t start = out->size();
  out->append(type, 4);
  out->append(reinterpret_cast<const char*>(data), n);
  uint32_t crc = libdeflate_crc32(0, out->data() + start, n + 4);
  put_u32(out, crc);
}

// Writes one sample; PNG stores 16-bit samples big-endian.
inline uint8_t* put_sample(uint8_t* p, uint8_t v) {
  *p = v;
  return p + 1;
}
inline uint8_t* put_sample(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
  return p + 2;
}

// Interleaves row `y` of the band-sequential tile (plus alpha from the mask).
// One instantiation per layout keeps the inner loop free of branches.
template <typename T, int kBands, bool kAlpha>
void interleave_row(const Raster& tile, int y, uint8_t* row) {
  const size_t offset = static_cast<size_t>(y) * tile.width;
  const T* src[kBands];
  for (int b = 0; b < kBands; ++b) src[b] = tile.band_as<T>(b) + offset;
  const uint8_t* mask = tile.mask.data() + offset;
  constexpr T kOpaque = static_cast<T>(~T{0});
  for (int x = 0; x < tile.width; ++x) {
    for (int b = 0; b < kBands; ++b) row = put_sample(row, src[b][x]);
    if constexpr (kAlpha) row = put_sample(row, mask[x] ? kOpaque : T{0});
  }
}

using RowFiller = void (*)(const Raster&, int, uint8_t*);

template <typename T>
RowFiller pick_filler(int bands, bool alpha) {
  if (bands == 1) return alpha ? interleave_row<T, 1, true> : interleave_row<T, 1, false>;
  return alpha ? interleave_row<T, 3, true> : interleave_row<T, 3, false>;
}

// Filters `row` against `prev` (zeros for the first row) with each of the
// five PNG filters and keeps the one with the smallest sum of absolute
// signed bytes: the heuristic the PNG specification recommends and libpng
// uses, which is what keeps photographic tiles small.
void filter_row(const uint8_t* row, const uint8_t* prev, size_t n, size_t bpp, uint8_t* out,
                uint8_t* scratch) {
  uint64_t best_cost = UINT64_MAX;
  auto consider = [&](int type) {
    uint64_t cost = 0;
    for (size_t i = 0; i < n; ++i) cost += scratch[i] < 128 ? scratch[i] : 256 - scratch[i];
    if (cost < best_cost) {
      best_cost = cost;
      out[0] = static_cast<uint8_t>(type);
      std::memcpy(out + 1, scratch, n);
    }
  };
  // One plain loop per filter type, so the compiler can vectorise each.
  std::memcpy(scratch, row, n);
  consider(0);
  for (size_t i = 0; i < bpp; ++i) scratch[i] = row[i];
  for (size_t i = bpp; i < n; ++i) scratch[i] = static_cast<uint8_t>(row[i] - row[i - bpp]);
  consider(1);
  for (size_t i = 0; i < n; ++i) scratch[i] = static_cast<uint8_t>(row[i] - prev[i]);
  consider(2);
  for (size_t i = 0; i < bpp; ++i) scratch[i] = static_cast<uint8_t>(row[i] - (prev[i] >> 1));
  for (size_t i = bpp; i < n; ++i) {
    scratch[i] = static_cast<uint8_t>(row[i] - ((row[i - bpp] + prev[i]) >> 1));
  }
  consider(3);
  for (size_t i = 0; i < bpp; ++i) scratch[i] = static_cast<uint8_t>(row[i] - prev[i]);
  for (size_t i = bpp; i < n; ++i) {
    // Branch-free Paeth (pa, pb, pc as the specification defines them) so
    // the loop vectorises.
    const int a = row[i - bpp], b = prev[i], c = prev[i - bpp];
    const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
    const int pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
    scratch[i] = static_cast<uint8_t>(row[i] - pred);
  }
  consider(4);
}

// A colour (grey: all three equal) that no valid pixel of the uint8 tile
// holds, for a tRNS key; nullopt when none is found.
std::optional<std::array<uint8_t, 3>> unused_colour(const Raster& tile) {
  const size_t n = tile.pixels();
  const uint8_t* m = tile.mask.data();
  if (tile.bands == 1) {
    bool used[256] = {};
    const uint8_t* v = tile.band_as<uint8_t>(0);
    for (size_t i = 0; i < n; ++i) used[v[i]] |= m[i] != 0;
    for (int k = 0; k < 256; ++k) {
      if (!used[k]) {
        const uint8_t g = static_cast<uint8_t>(k);
        return std::array<uint8_t, 3>{g, g, g};
      }
    }
    return std::nullopt;
  }
  // 16.7 million colours, at most a few hundred thousand pixels: a few
  // fixed, unlikely candidates almost always include a free one.
  const uint8_t *r = tile.band_as<uint8_t>(0), *g = tile.band_as<uint8_t>(1),
                *b = tile.band_as<uint8_t>(2);
  for (uint32_t c : {0x01fe02u, 0xfe01fdu, 0x02fd03u, 0x7f017eu, 0x01807fu, 0xfd7f02u}) {
    const uint8_t cr = static_cast<uint8_t>(c >> 16), cg = static_cast<uint8_t>(c >> 8),
                  cb = static_cast<uint8_t>(c);
    bool found = false;
    for (size_t i = 0; i < n && !found; ++i) {
      found = m[i] && r[i] == cr && g[i] == cg && b[i] == cb;
    }
    if (!found) return std::array<uint8_t, 3>{cr, cg, cb};
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> encode_png(const Raster& source, int level, bool colour_key) {
  assert((source.type == CellType::kUInt8 || source.type == CellType::kUInt16) &&
         (source.bands == 1 || source.bands == 3));
  assert(level >= 0 && level <= 12);
  if (source.width <= 0 || source.height <= 0) {
    return internal_error("cannot encode a " + std::to_string(source.width) + "x" +
                          std::to_string(source.height) +
                          " tile as png: " + (source.width <= 0 ? "width" : "height") + " is zero");
  }
  bool alpha = !source.all_valid();
  // A keyed copy: masked pixels hold the key, and no alpha channel.
  std::optional<std::array<uint8_t, 3>> key;
  Raster keyed;
  if (alpha && colour_key && source.type == CellType::kUInt8) key = unused_colour(source);
  if (key) {
    keyed = source;
    for (int b = 0; b < keyed.bands; ++b) {
      uint8_t* v = keyed.band_as<uint8_t>(b);
      for (size_t i = 0; i < keyed.pixels(); ++i) {
        if (!keyed.mask[i]) v[i] = (*key)[b];
      }
    }
    std::fill(keyed.mask.begin(), keyed.mask.end(), 255);
    alpha = false;
  }
  const Raster& tile = key ? keyed : source;
  const bool wide = tile.type == CellType::kUInt16;
  const size_t channels = static_cast<size_t>(tile.bands) + (alpha ? 1 : 0);
  const size_t bpp = channels * (wide ? 2 : 1);
  const size_t row_bytes = static_cast<size_t>(tile.width) * bpp;
  const RowFiller fill =
      wide ? pick_filler<uint16_t>(tile.bands, alpha) : pick_filler<uint8_t>(tile.bands, alpha);

  // Filtered image: one filter-type byte per row, then the filtered row.
  std::vector<uint8_t> filtered((row_bytes + 1) * tile.height);
  std::vector<uint8_t> rows(2 * row_bytes, 0), scratch(row_bytes);
  uint8_t* prev = rows.data();
  uint8_t* cur = rows.data() + row_bytes;
  for (int y = 0; y < tile.height; ++y) {
    fill(tile, y, cur);
    filter_row(cur, prev, row_bytes, bpp, filtered.data() + y * (row_bytes + 1), scratch.data());
    std::swap(prev, cur);
  }

  libdeflate_compressor* c = compressor_for(level);
  if (!c) return internal_error("libdeflate could not allocate a compressor");
  std::vector<uint8_t> idat(libdeflate_zlib_compress_bound(c, filtered.size()));
  size_t n =
      libdeflate_zlib_compress(c, filtered.data(), filtered.size(), idat.data(), idat.size());
  if (n == 0) return internal_error("libdeflate failed to compress a png tile");

  uint8_t ihdr[13];
  const uint32_t w = static_cast<uint32_t>(tile.width), h = static_cast<uint32_t>(tile.height);
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = static_cast<uint8_t>(w >> (24 - 8 * i));
    ihdr[4 + i] = static_cast<uint8_t>(h >> (24 - 8 * i));
  }
  ihdr[8] = wide ? 16 : 8;
  ihdr[9] = tile.bands == 1 ? (alpha ? 4 : 0) : (alpha ? 6 : 2);  // grey(A) / RGB(A)
  ihdr[10] = 0;                                                   // deflate
  ihdr[11] = 0;                                                   // adaptive filtering
  ihdr[12] = 0;                                                   // no interlace

  std::string out;
  out.reserve(n + 64);
  out.append("\x89PNG\r\n\x1a\n", 8);
  put_chunk(&out, "IHDR", ihdr, sizeof ihdr);
  if (key) {
    // tRNS of a grey or RGB image: the key's samples, 16 bits each.
    const uint8_t trns[6] = {0, (*key)[0], 0, (*key)[1], 0, (*key)[2]};
    put_chunk(&out, "tRNS", trns, tile.bands == 1 ? 2 : 6);
  }
  put_chunk(&out, "IDAT", idat.data(), n);
  put_chunk(&out, "IEND", nullptr, 0);
  return out;
}

}  // namespace kiln

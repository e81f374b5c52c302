#include "render/tif_strip_decoder.h"

#include <libdeflate.h>
#include <zstd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::render {
namespace {

// TIFF 6.0 tags (and the GeoTIFF and GDAL private ones) this layout uses.
enum Tag : uint16_t {
  kNewSubfileType = 254,
  kImageWidth = 256,
  kImageLength = 257,
  kBitsPerSample = 258,
  kCompression = 259,
  kPhotometric = 262,
  kStripOffsets = 273,
  kSamplesPerPixel = 277,
  kRowsPerStrip = 278,
  kStripByteCounts = 279,
  kPlanarConfig = 284,
  kPredictor = 317,
  kExtraSamples = 338,
  kSampleFormat = 339,
  kModelPixelScale = 33550,
  kModelTiepoint = 33922,
  kModelTransformation = 34264,
  kGeoKeyDirectory = 34735,
  kGeoDoubleParams = 34736,
  kGeoAsciiParams = 34737,
  kGdalMetadata = 42112,
  kGdalNodata = 42113,
};
enum Type : uint16_t { kByte = 1, kAscii = 2, kShort = 3, kLong = 4, kDouble = 12 };
constexpr uint16_t kCompressDeflate = 8, kCompressAdobeDeflate = 32946, kCompressZstd = 50000;
constexpr uint32_t kSubfileMask = 4;
constexpr uint16_t kGTRasterTypeGeoKey = 1025, kRasterPixelIsPoint = 2;
constexpr size_t kMaxEntries = 64;

// Little-endian reads from checked positions.
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
double f64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return std::bit_cast<double>(v);
}

size_t type_size(uint16_t type) {
  switch (type) {
    case kByte:
    case kAscii:
      return 1;
    case kShort:
      return 2;
    case kLong:
      return 4;
    case kDouble:
      return 8;
    default:
      return 0;
  }
}

struct Entry {
  uint16_t type = 0;
  uint32_t count = 0;
  const uint8_t* data = nullptr;  // inside the bytes, type_size * count of them
};

// One directory's entries by tag; false when it is not one we read.
class Directory {
 public:
  // Parses the directory at `offset`; nullopt-like false for anything
  // outside this layout or the bytes.
  bool parse(std::string_view bytes, uint32_t offset, uint32_t* next) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
    if (offset < 8 || offset > bytes.size() || bytes.size() - offset < 2) return false;
    const size_t n = u16(b + offset);
    if (n == 0 || n > kMaxEntries || bytes.size() - offset - 2 < n * 12 + 4) return false;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* e = b + offset + 2 + i * 12;
      Entry en;
      en.type = u16(e + 2);
      en.count = u32(e + 4);
      const size_t size = type_size(en.type);
      const uint16_t tag = u16(e);
      if (size == 0) {
        if (tag == kGdalMetadata || tag == kGeoAsciiParams) continue;  // not read
        return false;
      }
      const uint64_t total = static_cast<uint64_t>(size) * en.count;
      if (total <= 4) {
        en.data = e + 8;
      } else {
        const uint32_t at = u32(e + 8);
        if (at > bytes.size() || bytes.size() - at < total) return false;
        en.data = b + at;
      }
      entries_[tag] = en;
    }
    *next = u32(b + offset + 2 + n * 12);
    return true;
  }
  const Entry* find(uint16_t tag) const {
    auto it = entries_.find(tag);
    return it == entries_.end() ? nullptr : &it->second;
  }
  // The i-th value of a SHORT or LONG entry; `def` when the tag is absent.
  // False when it is present with another type or too few values.
  bool integer(uint16_t tag, size_t i, uint32_t def, uint32_t* out) const {
    const Entry* e = find(tag);
    if (!e) {
      *out = def;
      return true;
    }
    if (i >= e->count) return false;
    if (e->type == kShort) {
      *out = u16(e->data + 2 * i);
    } else if (e->type == kLong) {
      *out = u32(e->data + 4 * i);
    } else {
      return false;
    }
    return true;
  }

 private:
  std::map<uint16_t, Entry> entries_;
};

// The geometry every directory of this layout shares: one strip.
struct Strip {
  uint32_t width = 0, height = 0, samples = 1, bits = 0, format = 1, compression = 0, predictor = 1;
  std::string_view data;
};

// Reads the strip layout; false when the directory is outside it.
bool read_strip(std::string_view bytes, const Directory& d, Strip* s) {
  uint32_t planar = 1, rows = 0, offset = 0, count = 0;
  if (!d.integer(kImageWidth, 0, 0, &s->width) || !d.integer(kImageLength, 0, 0, &s->height) ||
      !d.integer(kSamplesPerPixel, 0, 1, &s->samples) ||
      !d.integer(kBitsPerSample, 0, 1, &s->bits) || !d.integer(kSampleFormat, 0, 1, &s->format) ||
      !d.integer(kCompression, 0, 1, &s->compression) ||
      !d.integer(kPredictor, 0, 1, &s->predictor) || !d.integer(kPlanarConfig, 0, 1, &planar) ||
      !d.integer(kRowsPerStrip, 0, UINT32_MAX, &rows)) {
    return false;
  }
  if (s->width < 1 || s->height < 1 || s->width > static_cast<uint32_t>(kMaxDecodeSide) ||
      s->height > static_cast<uint32_t>(kMaxDecodeSide) || s->samples < 1 ||
      s->samples > static_cast<uint32_t>(kMaxDecodeBands) || planar != 1 || rows < s->height) {
    return false;
  }
  // Every sample alike.
  for (uint32_t i = 1; i < s->samples; ++i) {
    uint32_t bits = 0, format = 0;
    if (!d.integer(kBitsPerSample, i, s->bits, &bits) || bits != s->bits) return false;
    if (d.find(kSampleFormat) && (!d.integer(kSampleFormat, i, 0, &format) || format != s->format))
      return false;
  }
  const Entry* offsets = d.find(kStripOffsets);
  const Entry* counts = d.find(kStripByteCounts);
  if (!offsets || !counts || offsets->count != 1 || counts->count != 1 ||
      !d.integer(kStripOffsets, 0, 0, &offset) || !d.integer(kStripByteCounts, 0, 0, &count)) {
    return false;
  }
  if (offset > bytes.size() || bytes.size() - offset < count) return false;
  s->data = bytes.substr(offset, count);
  return s->compression == kCompressDeflate || s->compression == kCompressAdobeDeflate ||
         s->compression == kCompressZstd;
}

// Inflates or decompresses the strip into exactly `out.size()` bytes.
Status decompress(const Strip& s, std::vector<uint8_t>* out) {
  if (s.compression == kCompressZstd) {
    const size_t n = ZSTD_decompress(out->data(), out->size(), s.data.data(), s.data.size());
    if (ZSTD_isError(n) || n != out->size()) {
      return input_error("tif tile: the ZSTD strip does not hold the tile's " +
                         std::to_string(out->size()) + " bytes");
    }
    return Status::ok();
  }
  thread_local struct Holder {
    libdeflate_decompressor* d = libdeflate_alloc_decompressor();
    ~Holder() { libdeflate_free_decompressor(d); }
  } holder;
  if (!holder.d) return internal_error("libdeflate could not allocate a decompressor");
  size_t n = 0;
  const libdeflate_result r = libdeflate_zlib_decompress(holder.d, s.data.data(), s.data.size(),
                                                         out->data(), out->size(), &n);
  if (r != LIBDEFLATE_SUCCESS || n != out->size()) {
    return input_error("tif tile: the DEFLATE strip does not hold the tile's " +
                       std::to_string(out->size()) + " bytes");
  }
  return Status::ok();
}

// Undoes the horizontal predictor row by row on samples of T.
template <typename T>
void undo_horizontal(uint8_t* data, size_t width, size_t height, size_t samples) {
  const size_t row = width * samples;
  for (size_t y = 0; y < height; ++y) {
    uint8_t* r = data + y * row * sizeof(T);
    for (size_t i = samples; i < row; ++i) {
      T a, b;
      std::memcpy(&a, r + i * sizeof(T), sizeof(T));
      std::memcpy(&b, r + (i - samples) * sizeof(T), sizeof(T));
      a = static_cast<T>(a + b);
      std::memcpy(r + i * sizeof(T), &a, sizeof(T));
    }
  }
}

// Undoes the floating-point predictor (TIFF Technical Note 3): each row's
// bytes were split into planes by significance, most significant first,
// then differenced with a stride of one pixel.
void undo_floating(uint8_t* data, size_t width, size_t height, size_t samples, size_t bytes) {
  const size_t count = width * samples;
  const size_t row = count * bytes;
  std::vector<uint8_t> tmp(row);
  for (size_t y = 0; y < height; ++y) {
    uint8_t* r = data + y * row;
    for (size_t i = samples; i < row; ++i) r[i] = static_cast<uint8_t>(r[i] + r[i - samples]);
    std::memcpy(tmp.data(), r, row);
    for (size_t k = 0; k < count; ++k) {
      for (size_t b = 0; b < bytes; ++b) r[k * bytes + b] = tmp[(bytes - b - 1) * count + k];
    }
  }
}

std::optional<CellType> cell_type_of(uint32_t bits, uint32_t format) {
  if (format == 1 && bits == 8) return CellType::kUInt8;
  if (format == 1 && bits == 16) return CellType::kUInt16;
  if (format == 2 && bits == 16) return CellType::kInt16;
  if (format == 1 && bits == 32) return CellType::kUInt32;
  if (format == 2 && bits == 32) return CellType::kInt32;
  if (format == 3 && bits == 32) return CellType::kFloat32;
  if (format == 3 && bits == 64) return CellType::kFloat64;
  return std::nullopt;  // 64-bit integers: GDAL's nodata handling for them is its own
}

// The geotransform of a pixel scale and a tiepoint; false when the tile
// describes its georeference another way (a matrix, PixelIsPoint).
bool geotransform_of(const Directory& d, DecodedTile* out) {
  if (d.find(kModelTransformation)) return false;
  if (const Entry* keys = d.find(kGeoKeyDirectory)) {
    if (keys->type != kShort || keys->count < 4) return false;
    const size_t n = u16(keys->data + 6);
    if (keys->count < 4 + 4 * n) return false;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* k = keys->data + 8 * (i + 1);
      if (u16(k) == kGTRasterTypeGeoKey && u16(k + 2) == 0 && u16(k + 6) == kRasterPixelIsPoint)
        return false;
    }
  }
  const Entry* scale = d.find(kModelPixelScale);
  const Entry* tie = d.find(kModelTiepoint);
  if (!scale && !tie) return true;  // none: GDAL's default, has_geotransform false
  if (!scale || !tie || scale->type != kDouble || tie->type != kDouble || scale->count < 2 ||
      tie->count != 6) {
    return false;
  }
  const double sx = f64(scale->data), sy = f64(scale->data + 8);
  const double i = f64(tie->data), j = f64(tie->data + 8);
  const double x = f64(tie->data + 24), y = f64(tie->data + 32);
  out->geotransform = {x - i * sx, sx, 0, y + j * sy, 0, -sy};
  out->has_geotransform = true;
  return true;
}

}  // namespace

Result<std::optional<DecodedTile>> decode_kiln_tif(std::string_view bytes) {
  static_assert(std::endian::native == std::endian::little, "samples are read in place");
  const std::optional<DecodedTile> other;  // "not this layout: ask GDAL"
  if (bytes.size() < 8 || bytes.substr(0, 4) != std::string_view("II*\0", 4)) return other;
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  Directory image;
  uint32_t next = 0;
  if (!image.parse(bytes, u32(b + 4), &next)) return other;
  uint32_t subfile = 0;
  if (!image.integer(kNewSubfileType, 0, 0, &subfile) || subfile != 0) return other;
  Strip s;
  if (!read_strip(bytes, image, &s)) return other;
  const std::optional<CellType> type = cell_type_of(s.bits, s.format);
  if (!type) return other;
  const bool floating = s.format == 3;
  if (!(s.predictor == 1 || (s.predictor == 2 && !floating) || (s.predictor == 3 && floating)))
    return other;

  DecodedTile out;
  if (!geotransform_of(image, &out)) return other;
  if (const Entry* nd = image.find(kGdalNodata)) {
    if (nd->type != kAscii || nd->count == 0) return other;
    std::string text(reinterpret_cast<const char*>(nd->data), nd->count);
    text = text.substr(0, text.find('\0'));
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') return other;
    out.nodata = v;
  }

  // The mask directory, when there is one, and nothing after it.
  std::optional<Strip> mask;
  if (next != 0) {
    Directory md;
    uint32_t after = 0;
    uint32_t kind = 0, photometric = 0;
    Strip m;
    if (!md.parse(bytes, next, &after) || after != 0 || !md.integer(kNewSubfileType, 0, 0, &kind) ||
        kind != kSubfileMask || !md.integer(kPhotometric, 0, 0, &photometric) || photometric != 4 ||
        !read_strip(bytes, md, &m) || m.width != s.width || m.height != s.height ||
        m.samples != 1 || m.bits != 1 || m.predictor != 1 || md.find(kExtraSamples)) {
      return other;
    }
    mask = m;
  }

  const size_t cell = cell_bytes(*type);
  const size_t pixels = static_cast<size_t>(s.width) * s.height;
  if (static_cast<uint64_t>(pixels) * s.samples * cell > kMaxDecodedBytes) {
    return input_error("tif tile: " + std::to_string(s.width) + "x" + std::to_string(s.height) +
                       " with " + std::to_string(s.samples) + " bands of " +
                       std::to_string(s.bits) + " bits is larger than a tile can be");
  }
  std::vector<uint8_t> raw(pixels * s.samples * cell);
  KILN_RETURN_IF_ERROR(decompress(s, &raw));
  if (s.predictor == 2) {
    if (cell == 1) undo_horizontal<uint8_t>(raw.data(), s.width, s.height, s.samples);
    if (cell == 2) undo_horizontal<uint16_t>(raw.data(), s.width, s.height, s.samples);
    if (cell == 4) undo_horizontal<uint32_t>(raw.data(), s.width, s.height, s.samples);
  } else if (s.predictor == 3) {
    undo_floating(raw.data(), s.width, s.height, s.samples, cell);
  }

  Raster& r = out.raster;
  r.reset(static_cast<int>(s.width), static_cast<int>(s.height), static_cast<int>(s.samples), *type,
          /*zero=*/false);
  if (s.samples == 1) {
    std::memcpy(r.data.data(), raw.data(), raw.size());
  } else {
    for (uint32_t band = 0; band < s.samples; ++band) {
      uint8_t* dst = r.band_data(static_cast<int>(band));
      const uint8_t* src = raw.data() + band * cell;
      const size_t stride = s.samples * cell;
      for (size_t i = 0; i < pixels; ++i) std::memcpy(dst + i * cell, src + i * stride, cell);
    }
  }

  std::vector<uint8_t>& m = r.mask;
  if (mask && !out.nodata) {
    const size_t row = (s.width + 7) / 8;
    std::vector<uint8_t> bits(row * s.height);
    KILN_RETURN_IF_ERROR(decompress(*mask, &bits));
    for (size_t y = 0; y < s.height; ++y) {
      for (size_t x = 0; x < s.width; ++x) {
        m[y * s.width + x] = (bits[y * row + x / 8] >> (7 - x % 8)) & 1 ? 255 : 0;
      }
    }
  } else {
    std::fill(m.begin(), m.end(), 255);
  }
  const bool has_nodata = out.nodata.has_value();
  const double nd = out.nodata.value_or(0);
  dispatch_cell_type(*type, [&]<typename T>() {
    for (int band = 0; band < r.bands; ++band) {
      const T* d = r.band_as<T>(band);
      for (size_t i = 0; i < pixels; ++i) {
        const double v = static_cast<double>(d[i]);
        if ((has_nodata && v == nd) || std::isnan(v)) m[i] = 0;
      }
    }
  });
  return std::optional<DecodedTile>(std::move(out));
}

}  // namespace kiln::render

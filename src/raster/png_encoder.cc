#include "raster/png_encoder.h"

#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <png.h>

namespace kiln {
namespace {

// Owns the libpng write struct and its info struct.
class PngWriteStruct {
 public:
  PngWriteStruct() = default;
  PngWriteStruct(const PngWriteStruct&) = delete;
  PngWriteStruct& operator=(const PngWriteStruct&) = delete;
  ~PngWriteStruct() { png_destroy_write_struct(&png_, info_ ? &info_ : nullptr); }

  bool init(void* error_context, png_error_ptr on_error, png_error_ptr on_warning) {
    png_ = png_create_write_struct(PNG_LIBPNG_VER_STRING, error_context, on_error, on_warning);
    if (png_) info_ = png_create_info_struct(png_);
    return png_ && info_;
  }
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

// Where libpng's output and messages go. Trivially destructible on purpose:
// libpng leaves by longjmp, which must not skip a destructor.
struct PngSink {
  std::string* out = nullptr;
  char error[256] = "";
  char warning[256] = "";  // libpng often explains its next error in a warning
};

void copy_message(char (&to)[256], png_const_charp message) {
  std::strncpy(to, message ? message : "unknown libpng error", sizeof(to) - 1);
}

void on_png_error(png_structp png, png_const_charp message) {
  copy_message(static_cast<PngSink*>(png_get_error_ptr(png))->error, message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp png, png_const_charp message) {
  copy_message(static_cast<PngSink*>(png_get_error_ptr(png))->warning, message);
}

void on_png_write(png_structp png, png_bytep data, size_t length) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  bool out_of_memory = false;
  try {
    sink->out->append(reinterpret_cast<const char*>(data), length);
  } catch (const std::bad_alloc&) {
    out_of_memory = true;
  }
  // Outside the catch block, so the longjmp leaves no exception in flight.
  if (out_of_memory) png_error(png, "out of memory");
}

// Without a flush callback libpng would fflush() the io pointer as a FILE*.
void on_png_flush(png_structp) {}

// Writes one sample of a PNG row; PNG stores 16-bit samples big-endian.
inline uint8_t* put_sample(uint8_t* p, uint8_t v) {
  *p = v;
  return p + 1;
}
inline uint8_t* put_sample(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v & 0xff);
  return p + 2;
}

// Interleaves row `y` of the band-sequential tile (plus alpha from the mask)
// into `row`. One instantiation per layout keeps the inner loop free of
// branches on band count or depth.
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

struct PngLayout {
  int bit_depth;
  int color_type;
  RowFiller fill;
};

// Runs every libpng call of one encode. Everything that has a destructor
// lives in the caller, so a longjmp back to the setjmp here skips none.
bool write_png(png_structp png, png_infop info, const Raster& tile, const PngLayout& layout,
               int level, uint8_t* row) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, static_cast<png_uint_32>(tile.width),
               static_cast<png_uint_32>(tile.height), layout.bit_depth, layout.color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // libpng's default filter choice (adaptive over all five filters for 8/16-bit
  // non-palette images) is deterministic and the same for every tile.
  png_set_compression_level(png, level);
  png_write_info(png, info);
  for (int y = 0; y < tile.height; ++y) {
    layout.fill(tile, y, row);
    png_write_row(png, row);
  }
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

Result<std::string> encode_png(const Raster& tile, int level) {
  assert((tile.type == CellType::kUInt8 || tile.type == CellType::kUInt16) &&
         (tile.bands == 1 || tile.bands == 3));
  const bool alpha = !tile.all_valid();
  const bool wide = tile.type == CellType::kUInt16;
  PngLayout layout;
  layout.bit_depth = wide ? 16 : 8;
  if (tile.bands == 1) {
    layout.color_type = alpha ? PNG_COLOR_TYPE_GRAY_ALPHA : PNG_COLOR_TYPE_GRAY;
  } else {
    layout.color_type = alpha ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB;
  }
  layout.fill =
      wide ? pick_filler<uint16_t>(tile.bands, alpha) : pick_filler<uint8_t>(tile.bands, alpha);
  const size_t channels = static_cast<size_t>(tile.bands) + (alpha ? 1 : 0);
  std::vector<uint8_t> row(static_cast<size_t>(tile.width) * channels * (wide ? 2 : 1));

  std::string out;
  // Photographic tiles came out at 30-80% of their raw size on the sample
  // imagery (NAIP, Landsat), so half the raw size costs at most one regrowth.
  out.reserve(row.size() * tile.height / 2 + 1024);
  PngSink sink;
  sink.out = &out;
  PngWriteStruct writer;
  if (!writer.init(&sink, on_png_error, on_png_warning)) {
    return internal_error("libpng could not allocate a png writer");
  }
  png_set_write_fn(writer.png(), &sink, on_png_write, on_png_flush);
  if (!write_png(writer.png(), writer.info(), tile, layout, level, row.data())) {
    return internal_error("libpng failed to encode a " + std::to_string(tile.width) + "x" +
                          std::to_string(tile.height) + " tile: " + sink.error +
                          (sink.warning[0] ? std::string(" (") + sink.warning + ")" : ""));
  }
  return out;
}

}  // namespace kiln

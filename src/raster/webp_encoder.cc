#include "raster/webp_encoder.h"

#include <cstdint>
#include <memory>
#include <vector>

#include <webp/encode.h>

namespace kiln {
namespace {

struct WebPBufferFree {
  void operator()(uint8_t* p) const { WebPFree(p); }
};
using WebPBuffer = std::unique_ptr<uint8_t, WebPBufferFree>;

// Interleaves the band-sequential tile into RGB or RGBA; a single band is
// repeated into R, G and B because WebP has no grey mode.
template <bool kAlpha>
void interleave(const Raster& tile, uint8_t* out) {
  const uint8_t* r = tile.band_data(0);
  const uint8_t* g = tile.bands == 3 ? tile.band_data(1) : r;
  const uint8_t* b = tile.bands == 3 ? tile.band_data(2) : r;
  const uint8_t* mask = tile.mask.data();
  const size_t n = tile.pixels();
  for (size_t i = 0; i < n; ++i) {
    *out++ = r[i];
    *out++ = g[i];
    *out++ = b[i];
    if constexpr (kAlpha) *out++ = mask[i] ? 255 : 0;
  }
}

}  // namespace

Result<std::string> encode_webp(const Raster& tile, bool lossless, int quality) {
  assert(tile.type == CellType::kUInt8 && (tile.bands == 1 || tile.bands == 3));
  if (tile.width > WEBP_MAX_DIMENSION || tile.height > WEBP_MAX_DIMENSION) {
    return invalid_argument("webp tiles are at most " + std::to_string(WEBP_MAX_DIMENSION) +
                            " pixels wide and high; this tile is " + std::to_string(tile.width) +
                            "x" + std::to_string(tile.height) + ": use png or tif");
  }
  const bool alpha = !tile.all_valid();
  const int channels = alpha ? 4 : 3;
  const int stride = tile.width * channels;
  std::vector<uint8_t> pixels(static_cast<size_t>(stride) * tile.height);
  if (alpha) {
    interleave<true>(tile, pixels.data());
  } else {
    interleave<false>(tile, pixels.data());
  }

  uint8_t* raw = nullptr;
  size_t size = 0;
  const uint8_t* in = pixels.data();
  const int w = tile.width;
  const int h = tile.height;
  const float q = static_cast<float>(quality);
  if (lossless) {
    size = alpha ? WebPEncodeLosslessRGBA(in, w, h, stride, &raw)
                 : WebPEncodeLosslessRGB(in, w, h, stride, &raw);
  } else {
    size = alpha ? WebPEncodeRGBA(in, w, h, stride, q, &raw)
                 : WebPEncodeRGB(in, w, h, stride, q, &raw);
  }
  WebPBuffer encoded(raw);
  if (size == 0 || !encoded) {
    // The simple API reports no reason; with sane sizes only memory is left.
    return internal_error("libwebp failed to encode a " + std::to_string(w) + "x" +
                          std::to_string(h) + " tile");
  }
  return std::string(reinterpret_cast<const char*>(encoded.get()), size);
}

}  // namespace kiln

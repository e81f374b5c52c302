#include "ingest/curve.h"

#include <utility>

namespace kiln::ingest {

uint64_t morton_index(uint32_t x, uint32_t y) {
  auto spread = [](uint64_t v) {
    v &= 0xffffffffULL;
    v = (v | (v << 16)) & 0x0000ffff0000ffffULL;
    v = (v | (v << 8)) & 0x00ff00ff00ff00ffULL;
    v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0fULL;
    v = (v | (v << 2)) & 0x3333333333333333ULL;
    v = (v | (v << 1)) & 0x5555555555555555ULL;
    return v;
  };
  return spread(x) | (spread(y) << 1);
}

uint64_t hilbert_index(int order, uint32_t x, uint32_t y) {
  // The classic xy-to-distance walk: at each scale, add the quadrant's offset
  // and rotate the coordinates into that quadrant's frame.
  const uint64_t n = uint64_t{1} << order;
  uint64_t d = 0;
  for (uint64_t s = n / 2; s > 0; s /= 2) {
    uint64_t rx = (x & s) ? 1 : 0;
    uint64_t ry = (y & s) ? 1 : 0;
    d += s * s * ((3 * rx) ^ ry);
    if (ry == 0) {
      if (rx == 1) {
        x = static_cast<uint32_t>(n - 1 - x);
        y = static_cast<uint32_t>(n - 1 - y);
      }
      std::swap(x, y);
    }
  }
  return d;
}

}  // namespace kiln::ingest

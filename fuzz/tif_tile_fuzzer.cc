// Fuzz target for the renderer's decoder of stored tif tiles
// (render/tif_strip_decoder.h): bytes a tenant's task wrote into the
// catalog, read by the renderer process behind the tile endpoint.
//
// Input: the bytes of a tile file. Seeds: tiles of Kiln's own ingests
// (uint16 with an internal mask, 3-band uint8, float32), fuzz/corpus/tif_tile.
//
// Refusals and "not this layout" are expected and never a finding. What is:
// a crash or sanitizer report, a refusal that is not kInputError, or a
// decoded tile whose size, band count or buffers break the decoder's
// bounds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "render/tif_strip_decoder.h"

namespace {

size_t g_checked = 0;  // inputs decoded on the fast path

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "tif_tile_fuzzer: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::render;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kiln::Result<std::optional<DecodedTile>> d = decode_kiln_tif(bytes);
  if (!d.is_ok()) {
    if (d.status().code() != kiln::StatusCode::kInputError) {
      fail("refusal that is not an input error: " + d.status().to_string());
    }
    return 0;
  }
  if (!d->has_value()) return 0;
  const kiln::Raster& r = (*d)->raster;
  if (r.width < 1 || r.height < 1 || r.width > kMaxDecodeSide || r.height > kMaxDecodeSide ||
      r.bands < 1 || r.bands > kMaxDecodeBands) {
    fail("decoded size out of bounds");
  }
  if (r.data.size() != r.pixels() * r.bands * kiln::cell_bytes(r.type) ||
      r.mask.size() != r.pixels()) {
    fail("buffer sizes do not match the tile");
  }
  for (uint8_t m : r.mask)
    if (m != 0 && m != 255) fail("mask value other than 0 or 255");
  ++g_checked;
  return 0;
}

extern "C" size_t kiln_fuzz_checked_count() { return g_checked; }

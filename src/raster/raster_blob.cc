#include "raster/raster_blob.h"

#include <cstring>
#include <memory>

#include <zstd.h>

namespace kiln {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'R', 'B', '0', '1'};

struct Header {
  char magic[8];
  int32_t width, height, bands, type;
  uint64_t raw_size;
};

}  // namespace

std::string serialize_raster(const Raster& r) {
  std::string raw(r.data.size() + r.mask.size(), '\0');
  std::memcpy(raw.data(), r.data.data(), r.data.size());
  std::memcpy(raw.data() + r.data.size(), r.mask.data(), r.mask.size());
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.width = r.width;
  h.height = r.height;
  h.bands = r.bands;
  h.type = static_cast<int32_t>(r.type);
  h.raw_size = raw.size();
  std::string out(sizeof h + ZSTD_compressBound(raw.size()), '\0');
  std::memcpy(out.data(), &h, sizeof h);
  // A checksummed frame: a damaged blob must fail, not decode into another
  // raster that the reduce would publish.
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), &ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  size_t n = ZSTD_compress2(cctx.get(), out.data() + sizeof h, out.size() - sizeof h, raw.data(),
                            raw.size());
  out.resize(sizeof h + n);
  return out;
}

Result<Raster> deserialize_raster(std::string_view bytes) {
  Header h{};
  if (bytes.size() < sizeof h) return internal_error("raster blob too short");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return internal_error("not a raster blob");
  if (h.type < 0 || h.type > static_cast<int>(CellType::kFloat64) || h.width <= 0 ||
      h.height <= 0 || h.bands <= 0) {
    return internal_error("corrupt raster blob header");
  }
  // Check sizes before allocating: a damaged header must not ask for
  // terabytes.
  const uint64_t pixels = static_cast<uint64_t>(h.width) * static_cast<uint64_t>(h.height);
  const uint64_t cb = cell_bytes(static_cast<CellType>(h.type));
  if (pixels > (uint64_t{1} << 34) || static_cast<uint64_t>(h.bands) > 65536 ||
      h.raw_size != pixels * h.bands * cb + pixels) {
    return internal_error("raster blob size mismatch");
  }
  const unsigned long long frame =
      ZSTD_getFrameContentSize(bytes.data() + sizeof h, bytes.size() - sizeof h);
  if (frame != h.raw_size) return internal_error("raster blob size mismatch");
  Raster r(h.width, h.height, h.bands, static_cast<CellType>(h.type));
  std::string raw(h.raw_size, '\0');
  size_t n =
      ZSTD_decompress(raw.data(), raw.size(), bytes.data() + sizeof h, bytes.size() - sizeof h);
  if (ZSTD_isError(n) || n != raw.size()) return internal_error("corrupt raster blob data");
  std::memcpy(r.data.data(), raw.data(), r.data.size());
  std::memcpy(r.mask.data(), raw.data() + r.data.size(), r.mask.size());
  return r;
}

}  // namespace kiln

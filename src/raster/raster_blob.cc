#include "raster/raster_blob.h"

#include <cstring>

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
  size_t n = ZSTD_compress(out.data() + sizeof h, out.size() - sizeof h, raw.data(), raw.size(), 1);
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
  Raster r(h.width, h.height, h.bands, static_cast<CellType>(h.type));
  if (h.raw_size != r.data.size() + r.mask.size()) return internal_error("raster blob size mismatch");
  std::string raw(h.raw_size, '\0');
  size_t n = ZSTD_decompress(raw.data(), raw.size(), bytes.data() + sizeof h, bytes.size() - sizeof h);
  if (ZSTD_isError(n) || n != raw.size()) return internal_error("corrupt raster blob data");
  std::memcpy(r.data.data(), raw.data(), r.data.size());
  std::memcpy(r.mask.data(), raw.data() + r.data.size(), r.mask.size());
  return r;
}

}  // namespace kiln

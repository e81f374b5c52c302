#include "render/stored_tile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "render/percentiles.h"
#include "render/render.h"
#include "render/tile_decoder.h"

namespace kiln::render {
namespace {

// A stored tile is at most a few MiB (512 px, float64, 4 bands: 8 MiB);
// metadata.json tens of KiB.
constexpr off_t kMaxTileBytes = off_t{64} << 20;
constexpr off_t kMaxMetadataBytes = off_t{64} << 20;
// Versions whose defaults are remembered; past it the memory starts over.
constexpr size_t kMaxRemembered = 256;

// The bytes of `path`, without following a symlink at its last component;
// nullopt when there is no such regular file.
Result<std::optional<std::string>> read_regular(const std::string& path, off_t limit) {
  os::Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) return std::optional<std::string>();
    return io_error("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat " + path);
  if (!S_ISREG(st.st_mode)) return std::optional<std::string>();
  if (st.st_size > limit) {
    return input_error(path + " is " + std::to_string(st.st_size) + " bytes; a tile is at most " +
                       std::to_string(limit));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return std::optional<std::string>(std::move(out));
}

std::string tile_path(const StoredTileRequest& r, int64_t x, int64_t y) {
  return r.version_dir + "/" + std::to_string(r.z) + "/" + std::to_string(x) + "/" +
         std::to_string(y) + ".tif";
}

// The decoded tile at x, y of r's zoom; nullopt when none was written.
Result<std::optional<DecodedTile>> load(const StoredTileRequest& r, int64_t x, int64_t y) {
  const std::string path = tile_path(r, x, y);
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> bytes, read_regular(path, kMaxTileBytes));
  if (!bytes) return std::optional<DecodedTile>();
  Result<DecodedTile> d = decode_tif_tile(*bytes);
  if (!d.is_ok()) return Status(d.status().code(), path + ": " + d.status().message());
  return std::optional<DecodedTile>(std::move(*d));
}

}  // namespace

Result<std::vector<Range>> StoredTileRenderer::defaults_for(const std::string& version_dir) {
  if (auto it = defaults_.find(version_dir); it != defaults_.end()) return it->second;
  const std::string path = version_dir + "/metadata.json";
  KILN_ASSIGN_OR_RETURN(std::optional<std::string> text, read_regular(path, kMaxMetadataBytes));
  if (!text) return input_error(path + " is missing");
  const nlohmann::json m = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) return input_error(path + " is not JSON");
  Result<std::vector<Range>> d = default_rescale(m);
  if (!d.is_ok()) return Status(d.status().code(), path + ": " + d.status().message());
  if (defaults_.size() >= kMaxRemembered) defaults_.clear();
  defaults_[version_dir] = *d;
  return d;
}

Result<std::string> StoredTileRenderer::render(const StoredTileRequest& r) {
  KILN_ASSIGN_OR_RETURN(RenderParams params, parse_render_query(r.query));
  params.format = r.format;
  KILN_ASSIGN_OR_RETURN(std::optional<DecodedTile> centre, load(r, r.x, r.y));
  if (!centre) return not_found("no tile was written at " + tile_path(r, r.x, r.y));
  KILN_RETURN_IF_ERROR(check_against_layer(&params, centre->raster.bands));

  // Without a rescale in the query: the version's percentiles. A layer
  // without statistics still renders uint8 data (0-255); render_tile()
  // names rescale when it has nothing to go on.
  std::vector<Range> defaults;
  if (params.rescale.empty() && !params.hillshade) {
    Result<std::vector<Range>> d = defaults_for(r.version_dir);
    if (d.is_ok()) defaults = std::move(*d);
  }
  const TileGeometry geometry =
      centre->has_geotransform
          ? geometry_from_geotransform(centre->geotransform)
          : mercator_tile_geometry(r.z, static_cast<int>(r.y), centre->raster.width);
  Raster image;
  if (params.hillshade) {
    // The neighbours' edge pixels, so the slope at a tile's edge sees the
    // same ground as the tile next to it.
    std::array<std::optional<DecodedTile>, 8> n;
    const int64_t side = int64_t{1} << r.z;
    int i = 0;
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        if (dx == 0 && dy == 0) continue;
        const int64_t x = r.x + dx, y = r.y + dy;
        if (x >= 0 && y >= 0 && x < side && y < side) {
          KILN_ASSIGN_OR_RETURN(n[i], load(r, x, y));
        }
        ++i;
      }
    }
    std::array<const Raster*, 8> ptrs{};
    for (size_t k = 0; k < n.size(); ++k) ptrs[k] = n[k] ? &n[k]->raster : nullptr;
    const Raster framed = add_border(centre->raster, ptrs, 1);
    KILN_ASSIGN_OR_RETURN(image,
                          render_tile(framed, centre->nodata, params, defaults, &geometry, 1));
  } else {
    KILN_ASSIGN_OR_RETURN(image,
                          render_tile(centre->raster, centre->nodata, params, defaults, &geometry));
  }
  return encode_image(image, params.format);
}

std::string encode_render_request(const StoredTileRequest& r) {
  return nlohmann::json{{"dir", r.version_dir},
                        {"z", r.z},
                        {"x", r.x},
                        {"y", r.y},
                        {"query", r.query},
                        {"format", image_format_name(r.format)}}
             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

Result<StoredTileRequest> decode_render_request(std::string_view line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return invalid_argument("render request: not a JSON object");
  auto str = [&j](const char* k, std::string* out) -> Status {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) {
      return invalid_argument(std::string("render request: ") + k + " must be a string");
    }
    *out = it->get<std::string>();
    return Status::ok();
  };
  auto num = [&j](const char* k, int64_t* out) -> Status {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
      return invalid_argument(std::string("render request: ") + k + " must be an integer >= 0");
    }
    *out = it->get<int64_t>();
    return Status::ok();
  };
  StoredTileRequest r;
  std::string format;
  int64_t z = 0;
  KILN_RETURN_IF_ERROR(str("dir", &r.version_dir));
  KILN_RETURN_IF_ERROR(str("query", &r.query));
  KILN_RETURN_IF_ERROR(str("format", &format));
  KILN_RETURN_IF_ERROR(num("z", &z));
  KILN_RETURN_IF_ERROR(num("x", &r.x));
  KILN_RETURN_IF_ERROR(num("y", &r.y));
  if (r.version_dir.empty() || r.version_dir[0] != '/') {
    return invalid_argument("render request: dir must be absolute");
  }
  if (z > 30 || r.x >= (int64_t{1} << z) || r.y >= (int64_t{1} << z)) {
    return invalid_argument("render request: z/x/y out of range");
  }
  r.z = static_cast<int>(z);
  if (format == "png") {
    r.format = ImageFormat::kPng;
  } else if (format == "webp") {
    r.format = ImageFormat::kWebp;
  } else {
    return invalid_argument("render request: format must be png or webp");
  }
  return r;
}

std::string encode_render_reply(const Status& s, size_t bytes) {
  nlohmann::json j = {{"code", s.is_ok() ? "ok" : status_code_name(s.code())}, {"bytes", bytes}};
  if (!s.is_ok()) j["message"] = s.message();
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status decode_render_reply(std::string_view line, size_t* bytes, Status* carried) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  auto code = j.is_object() ? j.find("code") : j.end();
  auto n = j.is_object() ? j.find("bytes") : j.end();
  if (!j.is_object() || code == j.end() || !code->is_string() || n == j.end() ||
      !n->is_number_unsigned() || n->get<uint64_t>() > kMaxRenderReplyBytes) {
    return internal_error("the renderer answered with something other than a reply header");
  }
  *bytes = static_cast<size_t>(n->get<uint64_t>());
  const std::string name = code->get<std::string>();
  *carried = Status::ok();
  if (name == "ok") return Status::ok();
  const std::string message = j.value("message", std::string("(no message)"));
  for (StatusCode c :
       {StatusCode::kInvalidArgument, StatusCode::kInputError, StatusCode::kNotFound,
        StatusCode::kEmpty, StatusCode::kIOError, StatusCode::kCancelled, StatusCode::kInternal,
        StatusCode::kUnavailable, StatusCode::kResourceExhausted}) {
    if (name == status_code_name(c)) {
      *carried = Status(c, message);
      return Status::ok();
    }
  }
  // An unknown code is the renderer's failure, whatever it says.
  *carried = internal_error("the renderer answered code '" + name + "': " + message);
  return Status::ok();
}

}  // namespace kiln::render

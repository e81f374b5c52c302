// `kiln render-tile`: one stored analytic tile (tif) rendered as the tile
// endpoint will render it (src/render, docs/rendering.md), for checking a
// layer's look from the command line and for the reference test.
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "render/percentiles.h"
#include "render/render.h"
#include "render/tile_decoder.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

struct RenderFlags {
  std::string tile;
  std::string params;
  std::string out;
  std::string metadata;
};

// Stored tiles are a few hundred KiB; anything far larger is not a tile.
constexpr std::uintmax_t kMaxTileBytes = 64u << 20;
constexpr std::uintmax_t kMaxMetadataBytes = 64u << 20;

Result<std::string> read_file(const std::string& path, std::uintmax_t limit, const char* flag) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return input_error(std::string(flag) + ": cannot read " + path + ": " + ec.message());
  if (size > limit) {
    return input_error(std::string(flag) + ": " + path + " is " + std::to_string(size) +
                       " bytes; at most " + std::to_string(limit));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) return input_error(std::string(flag) + ": cannot read " + path);
  return buf.str();
}

// Writes `bytes` to `path` through a temporary file and a rename, so a
// failure leaves no half-written image.
Status write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      return io_error("--out: cannot write " + path);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return io_error("--out: cannot write " + path);
  }
  return Status::ok();
}

Status run(const RenderFlags& f) {
  KILN_ASSIGN_OR_RETURN(render::RenderParams params, render::parse_render_query(f.params));
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(f.tile, kMaxTileBytes, "--tile"));
  Result<render::DecodedTile> decoded = render::decode_tif_tile(bytes);
  if (!decoded.is_ok()) {
    return Status(decoded.status().code(), "--tile " + f.tile + ": " + decoded.status().message());
  }
  KILN_RETURN_IF_ERROR(render::check_against_layer(&params, decoded->raster.bands));

  // Defaults come from the version's metadata.json: <version>/<z>/<x>/<y>.tif.
  std::vector<render::Range> defaults;
  std::string metadata = f.metadata;
  if (metadata.empty()) {
    fs::path guess = fs::path(f.tile).parent_path().parent_path().parent_path() / "metadata.json";
    if (fs::exists(guess)) metadata = guess.string();
  }
  if (!metadata.empty() && params.rescale.empty() && !params.hillshade) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(metadata, kMaxMetadataBytes, "--metadata"));
    nlohmann::json m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) return input_error("--metadata: " + metadata + " is not JSON");
    KILN_ASSIGN_OR_RETURN(defaults, render::default_rescale(m));
  }
  std::optional<render::TileGeometry> geometry;
  if (decoded->has_geotransform) {
    geometry = render::geometry_from_geotransform(decoded->geotransform);
  }
  KILN_ASSIGN_OR_RETURN(Raster image,
                        render::render_tile(decoded->raster, decoded->nodata, params, defaults,
                                            geometry ? &*geometry : nullptr));
  KILN_ASSIGN_OR_RETURN(std::string encoded, render::encode_image(image, params.format));
  return write_atomically(f.out, encoded);
}

}  // namespace

Command add_render_command(CLI::App& app) {
  auto f = std::make_shared<RenderFlags>();
  Command c;
  c.app = app.add_subcommand(
      "render-tile",
      "Render one stored analytic tile (tif) to PNG/WebP as the tile endpoint does:\n"
      "--params takes the endpoint's query (bidx, rescale, colormap, format, hillshade, azimuth,\n"
      "altitude, z_factor; docs/rendering.md). Default rescale: the 2nd-98th percentiles of\n"
      "the version's metadata.json (--metadata, else found beside the tile's z/x/y folders).");
  c.app->add_option("--tile", f->tile, "A stored tile: <version>/<z>/<x>/<y>.tif")->required();
  c.app->add_option("--params", f->params, "Query string, e.g. 'rescale=0,3000&colormap=viridis'");
  c.app->add_option("--out", f->out, "Where to write the image")->required();
  c.app->add_option("--metadata", f->metadata, "The layer version's metadata.json");
  c.run = [f]() -> int {
    Status s = run(*f);
    return s.is_ok() ? kExitOk : report_error(s);
  };
  return c;
}

}  // namespace kiln::cli

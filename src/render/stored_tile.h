// Rendering a tile of a published layer version, read from the catalog:
// the tile, its eight neighbours when hillshade needs them, and the
// version's default rescale from its metadata.json. What the renderer
// process behind the tile endpoint runs for each request (`kiln task
// render`, server/render_pool.h); it opens tenant-written files, so it runs
// in the sandbox, never in the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <string_view>

#include "common/status.h"
#include "render/render_params.h"

namespace kiln::render {

struct StoredTileRequest {
  std::string version_dir;  // <catalog>/<env>/<layer>/versions/vNNNNNN, absolute
  int z = 0;
  int64_t x = 0, y = 0;
  std::string query;  // the request's query string (render_params.h)
  ImageFormat format = ImageFormat::kPng;
};

// Renders stored tiles of layer versions; remembers each version's default
// rescale (versions never change). Not thread-safe: one per process.
class StoredTileRenderer {
 public:
  // The image bytes. kNotFound when the tile was never written (no data
  // there); kInvalidArgument naming the parameter for a query the layer
  // cannot honour; kInputError naming the file for a tile or metadata that
  // is not what an ingest writes.
  Result<std::string> render(const StoredTileRequest& r);

 private:
  Result<std::vector<Range>> defaults_for(const std::string& version_dir);

  std::map<std::string, std::vector<Range>> defaults_;
};

// The renderer process's pipe protocol (`kiln task render`; the server's
// side is server/render_pool.h). The server writes one request per line;
// the renderer answers each with one header line, then the header's
// `bytes` of image:
//   {"dir": "...", "z": 5, "x": 17, "y": 11, "query": "...", "format": "png"}
//   {"code": "ok", "bytes": 74374}    or, with status_code_name(),
//   {"code": "not found", "bytes": 0, "message": "no tile was written at ..."}
std::string encode_render_request(const StoredTileRequest& r);
// kInvalidArgument naming the field.
Result<StoredTileRequest> decode_render_request(std::string_view line);
// The header line (with its newline) answering with `s` and `bytes` of image.
std::string encode_render_reply(const Status& s, size_t bytes);
// Reads a reply header: its byte count into `*bytes`, the status it
// carries (code and message) into `*carried`. kInternal when the line is
// not a reply header.
Status decode_render_reply(std::string_view line, size_t* bytes, Status* carried);

// The largest image a reply may carry (a 1024 px RGB PNG at worst is ~4 MiB).
inline constexpr size_t kMaxRenderReplyBytes = 64u << 20;

}  // namespace kiln::render

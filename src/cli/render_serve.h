// `kiln task render`: the renderer process behind the tile endpoint
// (server/render_pool.h). Reads render requests on stdin, one per line,
// and answers each on stdout with a header line and the image
// (render/stored_tile.h has the protocol). Started by `kiln serve` in the
// sandbox, with the environment's catalog read-only.
#pragma once

namespace kiln::cli {

// Serves requests until stdin ends, or until `max_requests` (> 0) have
// been answered. Returns the exit code.
int serve_renders(int max_requests);

}  // namespace kiln::cli

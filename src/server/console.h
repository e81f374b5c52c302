// The web console's door (docs/console.md): GET / answers the console's
// page and GET /console/{file} its scripts and styles, from the bytes
// embedded at build time (console_assets.h). They hold no data, so they
// are served without authentication; everything the page shows it reads
// from the /v1 API with the session cookie (authenticate.h).
#pragma once

#include "http/server.h"
#include "server/console_assets.h"

namespace kiln::server {

class Console {
 public:
  // Adds the door's routes to `http`. Handlers are thread-safe.
  void install(http::Server& http);

 private:
  // Answers `asset` (200, or 304 when If-None-Match names its ETag).
  static void send_asset(const ConsoleAsset& asset, const http::Request& req, http::Response& res);
};

}  // namespace kiln::server

// The web console's door (docs/console.md): GET / answers the console's
// page and GET /console/{file} its scripts and styles, from the bytes
// embedded at build time (console_assets.h). They hold no data, so they
// are served without authentication; everything the page shows it reads
// from the /v1 API with the session cookie (authenticate.h). The one
// endpoint the console added to that API is here too:
// GET /v1/cluster/history (cluster_history.h), authenticated like the rest.
#pragma once

#include "http/server.h"
#include "server/authenticate.h"
#include "server/cluster_history.h"
#include "server/console_assets.h"

namespace kiln::server {

class Console {
 public:
  struct Deps {
    Authenticator auth;
    const ClusterHistory& history;
  };
  explicit Console(Deps deps) : d_(deps) {}

  // Adds the door's routes to `http`. Handlers are thread-safe.
  void install(http::Server& http);

 private:
  // Answers `asset` (200, or 304 when If-None-Match names its ETag).
  static void send_asset(const ConsoleAsset& asset, const http::Request& req, http::Response& res);

  Deps d_;
};

}  // namespace kiln::server

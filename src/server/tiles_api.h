// The tile door: an environment's catalog layers over HTTP (docs/cluster.md,
// "Layers and tiles"). GET /v1/layers, /v1/layers/{layer}[@{version}],
// .../tiles/{z}/{x}/{y}.{ext}, .../tilejson.json, /v1/wmts; and the browser
// sessions that let a page read them without a token in its URLs
// (POST/GET/DELETE /v1/session, session.h).
//
// Each request is the caller's environment's only: the catalog root and
// environment come from the server's config, never from the request, and
// another environment's layer answers exactly like a missing one. Files
// are opened beneath the catalog root without following a symlink in any
// component (open_beneath.h: one openat2 with RESOLVE_NO_SYMLINKS, or
// O_NOFOLLOW one component at a time), so a symlink planted in a catalog
// leads nowhere; the one symlink read is `current`, whose target must be
// versions/vNNNNNN.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/process.h"
#include "http/server.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/quotas.h"
#include "server/render_pool.h"
#include "server/session.h"
#include "server/tile_request.h"

namespace kiln::server {

// Cache-Control of a versioned (pinned) URL's answer: it never changes.
inline constexpr char kImmutableCacheControl[] = "public, max-age=31536000, immutable";

// A 304 answer to a matching If-None-Match, with the validators a tile or
// document answer carries.
void send_not_modified(http::Response& res, const std::string& etag, const char* cache_control);

class TilesApi {
 public:
  struct Deps {
    const ServerConfig& config;
    const TokenTable& tokens;
    EnvironmentQuotas& quotas;
    const Sessions& sessions;
    const Clock& clock;
    // Renders analytic (tif) layers' tiles as png/webp; null: not offered.
    RenderPool* renderer = nullptr;
  };
  explicit TilesApi(Deps deps) : d_(deps) {}

  // Adds the door's routes to `http`. Handlers are thread-safe.
  void install(http::Server& http);

 private:
  // A published version, opened.
  struct Version {
    os::Fd dir;  // versions/vNNNNNN, O_PATH: a base for *at() lookups and fstat only
    std::shared_ptr<const LayerInfo> info;
    int current = 0;  // the layer's current version (0: none)
  };

  // The caller's environment by bearer token or session cookie, or writes
  // 401/429 and returns nullptr.
  const EnvironmentConfig* authenticate(const http::Request& req, http::Response& res);
  // `ref` of `env` opened; kNotFound alike for a missing layer, version or
  // environment directory.
  Result<Version> open_version(const EnvironmentConfig& env, const LayerRef& ref);
  // The catalog root directory (from the config), opened at most once per
  // kRootReopenMs and shared by the requests meanwhile (an open of the
  // whole configured path and a close per tile otherwise); a root replaced
  // or mounted over while serving is seen within that time. Null when it
  // cannot be opened.
  std::shared_ptr<const os::Fd> catalog_root(const std::string& path) EXCLUDES(roots_mu_);
  // metadata.json of an opened version directory, parsed once per version
  // directory (versions never change; the key includes its inode and ctime
  // so a layer removed and made again is read anew).
  Result<std::shared_ptr<const LayerInfo>> layer_info(const std::string& env_dir, int dir_fd,
                                                      const std::string& layer) EXCLUDES(cache_mu_);

  void handle_layers(const http::Request& req, http::Response& res);
  void handle_layer(const http::Request& req, http::Response& res);
  void handle_tile(const http::Request& req, http::Response& res);
  // An analytic layer's tile rendered as the query says (tiles_render.cc).
  void handle_rendered_tile(const http::Request& req, http::Response& res,
                            const EnvironmentConfig& env, const LayerRef& ref, const Version& v,
                            const TileAddress& t);
  void handle_tilejson(const http::Request& req, http::Response& res);
  void handle_wmts(const http::Request& req, http::Response& res);
  void handle_session_create(const http::Request& req, http::Response& res);
  void handle_session_get(const http::Request& req, http::Response& res);
  void handle_session_delete(const http::Request& req, http::Response& res);

  Deps d_;
  struct OpenedRoot {
    std::shared_ptr<const os::Fd> fd;
    int64_t opened_ms = 0;
  };
  Mutex roots_mu_;
  std::map<std::string, OpenedRoot> roots_ GUARDED_BY(roots_mu_);
  Mutex cache_mu_;
  std::map<std::string, std::shared_ptr<const LayerInfo>> cache_ GUARDED_BY(cache_mu_);
};

}  // namespace kiln::server

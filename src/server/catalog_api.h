// The catalog upkeep door (docs/catalog.md, "Upkeep"): an environment's own
// layers removed, rolled back and pruned through the native API.
//
//   DELETE /v1/layers/{layer}[?dry_run=true]         {"dry_run": bool} optional
//   POST   /v1/layers/{layer}/rollback               {"to": N, "dry_run": bool}
//   POST   /v1/layers/prune                          {"keep": N, "layer": L, "dry_run": bool}
//
// Authenticated like RestApi (authenticate.h: the bearer token or the
// console's session cookie with its CSRF header, the environment's request
// quota). The catalog root and the environment come
// from the token's [[environment]] in the config, never from the request, so
// another environment's layer answers 404 exactly like an unknown one. A
// layer with a step that may still write it (PENDING, RUNNING or
// CANCEL_PENDING in the job store) is refused with 409 naming the step, as is
// one with an ingest in progress on disk (catalog::Catalog's rules). GET
// routes for layers are another door's (tiles).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "catalog/catalog.h"
#include "cluster/step_service.h"
#include "common/clock.h"
#include "common/status.h"
#include "http/server.h"
#include "server/auth.h"
#include "server/core_names.h"
#include "server/quotas.h"
#include "server/session.h"

namespace kiln::server {

class CatalogApi {
 public:
  struct Deps {
    const ServerConfig& config;
    StepService& steps;  // the job store's view of each environment's steps
    const TokenTable& tokens;
    EnvironmentQuotas& quotas;
    const Sessions& sessions;  // the console's session cookies (authenticate.h)
    const Clock& clock;
  };
  explicit CatalogApi(Deps deps) : d_(deps) {}

  // Adds the door's routes to `http`.
  void install(http::Server& http);

 private:
  void handle_remove(const http::Request& req, http::Response& res);
  void handle_rollback(const http::Request& req, http::Response& res);
  void handle_prune(const http::Request& req, http::Response& res);

  // The layers of `env` a step may still write, each with the reason
  // ("step s-... is RUNNING"): its PENDING, RUNNING and CANCEL_PENDING steps.
  Result<std::map<std::string, std::string>> busy_layers(const EnvironmentConfig& env);
  void change_idle_layer(const EnvironmentConfig& env, const std::string& layer, const char* verb,
                         http::Response& res,
                         const std::function<Result<catalog::UpkeepReport>(
                             const catalog::Catalog&, const std::string&)>& change);

  size_t body_limit() const { return static_cast<size_t>(d_.config.max_body_bytes); }

  Deps d_;
};

}  // namespace kiln::server

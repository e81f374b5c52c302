#include "server/console.h"

#include <string>

#include "server/http_util.h"
#include "server/tile_request.h"

namespace kiln::server {
namespace {

// The page may load only its own scripts, styles, images (tiles) and API
// answers, and may not be framed (a framed console could be clicked into
// cancelling a step).
constexpr char kPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ConsoleAsset* find_asset(std::string_view name) {
  for (const ConsoleAsset& a : console_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

void Console::install(http::Server& http) {
  http.Get("/", [](const http::Request& req, http::Response& res) {
    const ConsoleAsset* index = find_asset("index.html");
    if (!index) return send_error(res, 404, "not_found", "this build has no console");
    send_asset(*index, req, res);
  });
  http.Get(R"(/console/([^/]+))", [](const http::Request& req, http::Response& res) {
    const ConsoleAsset* a = find_asset(req.matches[1]);
    if (!a) {
      return send_error(res, 404, "not_found",
                        "no console file '" + std::string(req.matches[1]) + "'");
    }
    send_asset(*a, req, res);
  });
  http.Get("/v1/cluster/history", [this](const http::Request& req, http::Response& res) {
    const EnvironmentConfig* env = authenticate_request(req, res, d_.auth);
    if (!env) return;
    res.set_header("Cache-Control", "no-store");
    send_json(res, 200, d_.history.to_json(*env));
  });
}

void Console::send_asset(const ConsoleAsset& asset, const http::Request& req, http::Response& res) {
  const std::string etag(asset.etag);
  // The files' names are fixed, so a browser revalidates each load (a 304
  // of no body on loopback) and an upgraded server's files are seen at once.
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Content-Security-Policy", kPolicy);
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  if (if_none_match(req.get_header_value("If-None-Match"), etag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(std::string(asset.body), std::string(asset.content_type));
}

}  // namespace kiln::server

// The tile door's rendered tiles: an analytic (tif) layer's tile asked for
// as .png or .webp is rendered by one of the environment's renderer
// processes (render_pool.h), never in the server, as the query says
// (docs/rendering.md).
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "render/render_params.h"
#include "server/http_util.h"
#include "server/tiles_api.h"

namespace kiln::server {
namespace {

// The raw query of a request-target ("" without one).
std::string_view query_of(const std::string& target) {
  const size_t q = target.find('?');
  return q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
}

// FNV-1a, 64 bits: the query's part of a rendered tile's ETag.
std::string query_hash(std::string_view query) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : query) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// `message` with every occurrence of the server's path of the version
// replaced by the layer's name: the caller learns which tile, not where the
// catalog lives.
std::string without_paths(std::string message, const std::string& dir, const std::string& name) {
  for (size_t at = message.find(dir); at != std::string::npos; at = message.find(dir, at)) {
    message.replace(at, dir.size(), name);
    at += name.size();
  }
  return message;
}

}  // namespace

void TilesApi::handle_rendered_tile(const http::Request& req, http::Response& res,
                                    const EnvironmentConfig& env, const LayerRef& ref,
                                    const Version& v, const TileAddress& t) {
  const LayerInfo& info = *v.info;
  if (!d_.renderer) {
    return send_error(res, 404, "not_found",
                      "layer '" + ref.layer +
                          "' stores tif tiles and this server renders none ([server] "
                          "render_processes = 0): ask for .tif");
  }
  const std::string_view query = query_of(req.target);
  auto pairs = render::split_query(query);
  if (!pairs.is_ok()) return send_status(res, pairs.status());
  auto params = render::parse_render_params(*pairs);
  if (!params.is_ok()) return send_status(res, params.status());
  for (const auto& [key, value] : *pairs) {
    if (key == "format" && value != t.ext) {
      return send_error(res, 400, "bad_request",
                        "format=" + value + " disagrees with the path's ." + t.ext +
                            " (the extension chooses the format; leave format out)");
    }
  }

  const char* cache = ref.version ? kImmutableCacheControl : "no-cache";
  std::string etag = tile_etag(info.version, info.created_at, t);
  etag.insert(etag.size() - 1, "-r" + query_hash(query));
  if (if_none_match(req.get_header_value("If-None-Match"), etag)) {
    return send_not_modified(res, etag, cache);
  }

  render::StoredTileRequest r;
  r.version_dir = env.catalog + "/" + env.name + "/" + ref.layer + "/versions/" +
                  version_dir_name(info.version);
  r.z = t.z;
  r.x = t.x;
  r.y = t.y;
  r.query = std::string(query);
  r.format = t.ext == "webp" ? render::ImageFormat::kWebp : render::ImageFormat::kPng;
  Result<std::string> image = d_.renderer->render(env.name, r);
  const std::string name = ref.layer + "@" + std::to_string(info.version);
  if (!image.is_ok()) {
    const Status& s = image.status();
    const std::string message = without_paths(s.message(), r.version_dir, name);
    switch (s.code()) {
      case StatusCode::kNotFound:
        res.status = 204;  // inside the extent, never written: no data there
        return;
      case StatusCode::kInvalidArgument:
        return send_error(res, 400, "bad_request", message);
      case StatusCode::kUnavailable:
        res.set_header("Retry-After", "1");
        return send_error(res, 503, "unavailable", message);
      default:
        return send_error(res, 500, "internal",
                          "tile " + std::to_string(t.z) + "/" + std::to_string(t.x) + "/" +
                              std::to_string(t.y) + " of layer '" + ref.layer +
                              "' could not be rendered: " + message);
    }
  }
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", cache);
  res.set_header("Vary", "Authorization, Cookie");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Kiln-Version", std::to_string(info.version));
  res.status = 200;
  res.set_content(std::move(*image), t.ext == "webp" ? "image/webp" : "image/png");
}

}  // namespace kiln::server

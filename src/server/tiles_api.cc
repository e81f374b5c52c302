#include "server/tiles_api.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "catalog/catalog.h"
#include "render/render_params.h"
#include "server/authenticate.h"
#include "server/http_util.h"
#include "server/open_beneath.h"

namespace kiln::server {
namespace {

using json = nlohmann::json;
using http::Request;
using http::Response;

// metadata.json files above this are refused unread (a Landsat layer's is ~20 KiB).
constexpr off_t kMaxMetadataBytes = off_t{64} << 20;
// Tiles above this are refused unread (a 512 px float64 4-band tile is 8 MiB).
constexpr off_t kMaxTileBytes = off_t{256} << 20;
// Parsed metadata kept at most; past it the cache starts over.
constexpr size_t kMaxCachedVersions = 4096;
// Web Mercator: half the world's side in metres, and the scale denominator
// of zoom 0 with 256 px tiles (OGC 17-083r2, WebMercatorQuad: 0.28 mm pixels).
constexpr double kMercatorHalf = 20037508.342789244;
constexpr double kScaleZ0At256 = 559082264.0287178;

// Directories a tile request only looks up beneath (openat2, readlinkat,
// fstat): O_PATH descriptors, cheaper to open and close than readable ones.
constexpr int kLookupDir = O_PATH | O_DIRECTORY;
// How long an opened catalog root serves before it is opened again.
constexpr int64_t kRootReopenMs = 1000;

Status layer_not_found(const std::string& layer) {
  return not_found("layer '" + layer + "' not found");
}

int open_dir_at(int dir, const std::string& name) {
  return ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Reads a regular file opened at `dir`/`name` (a relative path) without
// following a symlink in any component; kNotFound when it is missing (or
// not a regular file), kIOError otherwise.
Result<std::string> read_file_at(int dir, const std::string& name, off_t limit, bool* missing) {
  *missing = false;
  os::Fd fd(open_beneath(dir, name, O_RDONLY | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
      *missing = true;
      return not_found(name + " not found");
    }
    return io_error("cannot open " + name + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat " + name);
  if (!S_ISREG(st.st_mode)) {
    *missing = true;
    return not_found(name + " not found");
  }
  if (st.st_size > limit) return io_error(name + " is larger than " + std::to_string(limit));
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

// The entries of a directory opened at `dir`/`name` (no symlink), dot
// entries left out; empty when it cannot be read.
std::vector<std::string> list_dir_at(int dir, const std::string& name) {
  std::vector<std::string> out;
  const int fd = open_dir_at(dir, name);
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return out;
  }
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Published version numbers of a layer directory, ascending.
std::vector<int> versions_of(int layer_fd) {
  std::vector<int> out;
  for (const std::string& n : list_dir_at(layer_fd, "versions")) {
    if (auto v = version_of_link("versions/" + n)) out.push_back(*v);
  }
  return out;
}

// The version the `current` link at `dir`/`link` names, or 0.
int current_of(int dir, const char* link = "current") {
  char buf[64];
  const ssize_t n = ::readlinkat(dir, link, buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return 0;
  return version_of_link(std::string_view(buf, static_cast<size_t>(n))).value_or(0);
}

std::string content_type_of(const std::string& ext) {
  if (ext == "png") return "image/png";
  if (ext == "webp") return "image/webp";
  return "image/tiff";
}

// "http://host:port" from the request's Host header, refused (empty) when
// it is not a plain host[:port]: the URLs we hand out name no other place.
std::string base_url(const Request& req) {
  static const std::regex kHost(
      R"(^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$)");
  const std::string host = req.get_header_value("Host");
  if (!std::regex_match(host, kHost)) return "";
  return "http://" + host;
}

std::string tiles_url(const std::string& base, const std::string& layer, int version,
                      const std::string& ext, const char* z, const char* x, const char* y) {
  return base + "/v1/layers/" + layer + "@" + std::to_string(version) + "/tiles/" + z + "/" + x +
         "/" + y + "." + ext;
}

json extent_json(const LayerInfo& info) {
  return {{"wgs84", info.wgs84 ? json(*info.wgs84) : json(nullptr)},
          {"layer_crs", info.layer_crs ? json(*info.layer_crs) : json(nullptr)}};
}

// A zoom at which the extent fills about 1,000 pixels, within the layer's zooms.
int center_zoom(const LayerInfo& info) {
  int z = info.min_zoom;
  if (info.wgs84) {
    const double span = std::max((*info.wgs84)[2] - (*info.wgs84)[0], 1e-9);
    z = static_cast<int>(std::floor(std::log2(360.0 * 1000.0 / (span * info.tile_size))));
  }
  return std::clamp(z, info.min_zoom, info.max_zoom);
}

}  // namespace

void send_not_modified(Response& res, const std::string& etag, const char* cache_control) {
  res.status = 304;
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", cache_control);
  res.set_header("Vary", "Authorization, Cookie");
}

void TilesApi::install(http::Server& http) {
  http.Post("/v1/session", [this](const Request& q, Response& r) { handle_session_create(q, r); });
  http.Get("/v1/session", [this](const Request& q, Response& r) { handle_session_get(q, r); });
  http.Delete("/v1/session",
              [this](const Request& q, Response& r) { handle_session_delete(q, r); });
  http.Get("/v1/layers", [this](const Request& q, Response& r) { handle_layers(q, r); });
  http.Get(R"(/v1/layers/([^/]+))", [this](const Request& q, Response& r) { handle_layer(q, r); });
  http.Get(R"(/v1/layers/([^/]+)/tilejson\.json)",
           [this](const Request& q, Response& r) { handle_tilejson(q, r); });
  http.Get(R"(/v1/layers/([^/]+)/tiles/([^/]+)/([^/]+)/([^/]+))",
           [this](const Request& q, Response& r) { handle_tile(q, r); });
  http.Get("/v1/wmts", [this](const Request& q, Response& r) { handle_wmts(q, r); });
}

const EnvironmentConfig* TilesApi::authenticate(const Request& req, Response& res) {
  return authenticate_request(
      req, res, Authenticator{d_.tokens, d_.config, d_.quotas, d_.sessions, d_.clock});
}

Result<std::shared_ptr<const LayerInfo>> TilesApi::layer_info(const std::string& env_dir,
                                                              int dir_fd,
                                                              const std::string& layer) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return io_error("cannot stat a version of layer '" + layer + "'");
  const std::string key = env_dir + '\0' + layer + '\0' + std::to_string(st.st_dev) + ':' +
                          std::to_string(st.st_ino) + ':' + std::to_string(st.st_ctim.tv_sec) +
                          '.' + std::to_string(st.st_ctim.tv_nsec);
  {
    MutexLock lock(&cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  bool missing = false;
  auto text = read_file_at(dir_fd, "metadata.json", kMaxMetadataBytes, &missing);
  if (!text.is_ok()) {
    if (missing) return layer_not_found(layer);
    return io_error("layer '" + layer + "': " + text.status().message());
  }
  auto info = parse_layer_info(*text);
  if (!info.is_ok()) return internal_error("layer '" + layer + "': " + info.status().message());
  auto shared = std::make_shared<const LayerInfo>(std::move(*info));
  MutexLock lock(&cache_mu_);
  if (cache_.size() >= kMaxCachedVersions) cache_.clear();
  cache_[key] = shared;
  return std::shared_ptr<const LayerInfo>(shared);
}

std::shared_ptr<const os::Fd> TilesApi::catalog_root(const std::string& path) {
  const int64_t now = d_.clock.now_ms();
  {
    MutexLock lock(&roots_mu_);
    auto it = roots_.find(path);
    if (it != roots_.end() && now - it->second.opened_ms < kRootReopenMs &&
        now >= it->second.opened_ms) {
      return it->second.fd;
    }
  }
  // Requests still using the previous descriptor keep it open until they end.
  auto fd = std::make_shared<const os::Fd>(::open(path.c_str(), kLookupDir | O_CLOEXEC));
  if (!fd->valid()) return nullptr;
  MutexLock lock(&roots_mu_);
  roots_[path] = OpenedRoot{fd, now};
  return fd;
}

Result<TilesApi::Version> TilesApi::open_version(const EnvironmentConfig& env,
                                                 const LayerRef& ref) {
  const std::shared_ptr<const os::Fd> root = catalog_root(env.catalog);
  if (!root) return layer_not_found(ref.layer);
  const std::string layer_path = env.name + '/' + ref.layer;
  Version v;
  // `current` is read through the root by path (readlinkat follows a
  // symlink on the way), but what it yields is only a number: the version
  // directory is then opened beneath the root in one lookup that follows
  // no symlink, so a layer that is not a plain directory of this
  // environment opens nothing. Two syscalls fewer per tile than opening
  // the layer first.
  v.current = current_of(root->get(), (layer_path + "/current").c_str());
  const int wanted = ref.version.value_or(v.current);
  if (wanted > 0) {
    v.dir = os::Fd(open_beneath(root->get(), layer_path + "/versions/" + version_dir_name(wanted),
                                kLookupDir));
  }
  if (!v.dir.valid()) {
    // Only failures tell a missing layer from a missing version.
    os::Fd layer(open_beneath(root->get(), layer_path, kLookupDir));
    if (!layer.valid()) return layer_not_found(ref.layer);
    if (wanted == 0) return not_found("layer '" + ref.layer + "' has no published version");
    return not_found("layer '" + ref.layer + "' has no version " + std::to_string(wanted));
  }
  KILN_ASSIGN_OR_RETURN(v.info, layer_info(env.catalog + '\0' + env.name, v.dir.get(), ref.layer));
  if (v.info->version != wanted) {
    return internal_error("layer '" + ref.layer + "': " + version_dir_name(wanted) +
                          "/metadata.json says version " + std::to_string(v.info->version));
  }
  return v;
}

void TilesApi::handle_layers(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  json layers = json::array();
  os::Fd root(::open(env->catalog.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  os::Fd envd(root.valid() ? open_dir_at(root.get(), env->name) : -1);
  if (envd.valid()) {
    for (const std::string& name : list_dir_at(root.get(), env->name)) {
      if (!catalog::validate_name("layer", name).is_ok()) continue;
      os::Fd layer(open_dir_at(envd.get(), name));
      if (!layer.valid()) continue;  // a file or a symlink: not a layer
      json l = {{"name", name},
                {"current_version", current_of(layer.get())},
                {"versions", versions_of(layer.get())}};
      if (l["current_version"].get<int>() > 0) {
        auto v = open_version(*env, LayerRef{name, std::nullopt});
        if (v.is_ok()) {
          const LayerInfo& info = *v->info;
          l["format"] = info.format;
          l["layout"] = info.layout;
          l["tile_size"] = info.tile_size;
          l["zoom"] = {{"min", info.min_zoom}, {"max", info.max_zoom}};
          l["extent"] = extent_json(info);
          l["created_at"] = info.created_at;
        }
      }
      layers.push_back(std::move(l));
    }
  }
  res.set_header("Cache-Control", "no-cache");
  send_json(res, 200, {{"environment", env->name}, {"layers", std::move(layers)}});
}

void TilesApi::handle_layer(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto ref = parse_layer_ref(req.matches[1]);
  if (!ref.is_ok()) return send_status(res, ref.status());
  auto v = open_version(*env, *ref);
  if (!v.is_ok()) return send_status(res, v.status());
  const LayerInfo& info = *v->info;
  json out = {{"name", ref->layer},
              {"version", info.version},
              {"current_version", v->current},
              {"metadata", info.metadata}};
  {
    os::Fd root(::open(env->catalog.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    os::Fd envd(root.valid() ? open_dir_at(root.get(), env->name) : -1);
    os::Fd layer(envd.valid() ? open_dir_at(envd.get(), ref->layer) : -1);
    out["versions"] = layer.valid() ? versions_of(layer.get()) : std::vector<int>{};
  }
  const std::string base = base_url(req);
  if (!base.empty()) {
    out["tiles"] = tiles_url(base, ref->layer, info.version, info.format, "{z}", "{x}", "{y}");
    if (info.zoomed()) out["tilejson"] = base + "/v1/layers/" + req.matches[1] + "/tilejson.json";
  }
  res.set_header("Cache-Control", "no-cache");
  send_json(res, 200, out);
}

void TilesApi::handle_tile(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto ref = parse_layer_ref(req.matches[1]);
  if (!ref.is_ok()) return send_status(res, ref.status());
  auto t = parse_tile_address(req.matches[2], req.matches[3], req.matches[4]);
  if (!t.is_ok()) return send_status(res, t.status());
  auto v = open_version(*env, *ref);
  if (!v.is_ok()) return send_status(res, v.status());
  const LayerInfo& info = *v->info;
  // An analytic layer's tile as png or webp is rendered (tiles_render.cc).
  const bool rendered = info.format == "tif" && t->ext != "tif";
  if (t->ext != info.format && !rendered) {
    return send_error(res, 404, "not_found",
                      "layer '" + ref->layer + "' stores " + info.format + " tiles: ask for ." +
                          info.format + " (the tile door serves the stored tiles as they are)");
  }
  if (!rendered) {
    for (const auto& [key, value] : req.params) {
      if (render::is_render_param(key)) {
        return send_error(res, 400, "bad_request",
                          "'" + key + "': layer '" + ref->layer + "' stores " + info.format +
                              " tiles, served as they are; rendering parameters apply to "
                              "analytic (tif) layers' .png and .webp tiles");
      }
    }
  }
  if (!info.inside(t->z, t->x, t->y)) {
    return send_error(res, 404, "not_found",
                      "tile " + std::to_string(t->z) + "/" + std::to_string(t->x) + "/" +
                          std::to_string(t->y) + " is outside layer '" + ref->layer + "' (zooms " +
                          std::to_string(info.min_zoom) + "-" + std::to_string(info.max_zoom) +
                          ", see levels[] in its metadata)");
  }
  if (rendered) return handle_rendered_tile(req, res, *env, *ref, *v, *t);
  const char* cache = ref->version ? kImmutableCacheControl : "no-cache";
  const std::string etag = tile_etag(info.version, info.created_at, *t);
  if (if_none_match(req.get_header_value("If-None-Match"), etag)) {
    return send_not_modified(res, etag, cache);
  }
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", cache);
  res.set_header("Vary", "Authorization, Cookie");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Kiln-Version", std::to_string(info.version));
  // z/x/y.ext opened beneath the version directory, no symlink followed.
  bool missing = true;
  Result<std::string> bytes = read_file_at(
      v->dir.get(),
      std::to_string(t->z) + '/' + std::to_string(t->x) + '/' + std::to_string(t->y) + '.' + t->ext,
      kMaxTileBytes, &missing);
  if (!bytes.is_ok()) {
    if (missing) {
      // Inside the extent but never written: empty (no data there).
      res.status = 204;
      return;
    }
    return send_status(res, io_error("layer '" + ref->layer + "': " + bytes.status().message()));
  }
  res.status = 200;
  res.set_content(std::move(*bytes), content_type_of(t->ext));
}

void TilesApi::handle_tilejson(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  auto ref = parse_layer_ref(req.matches[1]);
  if (!ref.is_ok()) return send_status(res, ref.status());
  auto v = open_version(*env, *ref);
  if (!v.is_ok()) return send_status(res, v.status());
  const LayerInfo& info = *v->info;
  if (!info.zoomed()) {
    return send_error(res, 404, "not_found",
                      "layer '" + ref->layer + "' is " + info.layout +
                          " (its own grid): TileJSON describes Web Mercator (zoomed) layers only");
  }
  const std::string base = base_url(req);
  if (base.empty()) return send_error(res, 400, "bad_request", "Host: must be host[:port]");
  const std::array<double, 4> b =
      info.wgs84.value_or(std::array<double, 4>{-180, -85.0511, 180, 85.0511});
  json tj = {
      {"tilejson", "3.0.0"},
      {"name", ref->layer},
      {"version", "1.0." + std::to_string(info.version)},
      {"scheme", "xyz"},
      {"tiles", {tiles_url(base, ref->layer, info.version, info.format, "{z}", "{x}", "{y}")}},
      {"minzoom", info.min_zoom},
      {"maxzoom", info.max_zoom},
      {"bounds", b},
      {"center", {(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, center_zoom(info)}},
      {"tile_size", info.tile_size}};
  const char* cache = ref->version ? kImmutableCacheControl : "no-cache";
  const std::string etag = version_etag("tilejson", info.version, info.created_at);
  if (if_none_match(req.get_header_value("If-None-Match"), etag)) {
    return send_not_modified(res, etag, cache);
  }
  res.set_header("ETag", etag);
  res.set_header("Cache-Control", cache);
  res.set_header("Vary", "Authorization, Cookie, Host");
  send_json(res, 200, tj);
}

void TilesApi::handle_wmts(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate(req, res);
  if (!env) return;
  // OGC KVP names are case-insensitive; only GetCapabilities is served
  // (tiles come from the RESTful ResourceURL).
  for (const auto& [k, val] : req.params) {
    std::string key = k;
    for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string v = val;
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == "SERVICE" && v != "wmts") {
      return send_error(res, 400, "bad_request", "SERVICE: only WMTS is served here");
    }
    if (key == "REQUEST" && v != "getcapabilities") {
      return send_error(res, 400, "bad_request",
                        "REQUEST: only GetCapabilities; tiles are at each layer's ResourceURL");
    }
  }
  const std::string base = base_url(req);
  if (base.empty()) return send_error(res, 400, "bad_request", "Host: must be host[:port]");

  struct Entry {
    std::string name;
    std::shared_ptr<const LayerInfo> info;
  };
  std::vector<Entry> entries;
  std::map<int, int> max_zoom_by_size;  // tile size -> deepest zoom of its layers
  {
    os::Fd root(::open(env->catalog.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root.valid()) {
      for (const std::string& name : list_dir_at(root.get(), env->name)) {
        if (!catalog::validate_name("layer", name).is_ok()) continue;
        auto v = open_version(*env, LayerRef{name, std::nullopt});
        if (!v.is_ok() || !v->info->zoomed()) continue;
        entries.push_back({name, v->info});
        int& mz = max_zoom_by_size[v->info->tile_size];
        mz = std::max(mz, v->info->max_zoom);
      }
    }
  }
  auto set_name = [](int ts) {
    return ts == 256 ? std::string("GoogleMapsCompatible")
                     : "GoogleMapsCompatible_" + std::to_string(ts) + "px";
  };
  std::ostringstream x;
  x.precision(17);
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<Capabilities xmlns=\"http://www.opengis.net/wmts/1.0\" "
       "xmlns:ows=\"http://www.opengis.net/ows/1.1\" "
       "xmlns:xlink=\"http://www.w3.org/1999/xlink\" version=\"1.0.0\">\n"
    << "  <ows:ServiceIdentification>\n"
    << "    <ows:Title>Kiln catalog: " << env->name << "</ows:Title>\n"
    << "    <ows:ServiceType>OGC WMTS</ows:ServiceType>\n"
    << "    <ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>\n"
    << "  </ows:ServiceIdentification>\n"
    << "  <ows:OperationsMetadata>\n";
  // Both operations are RESTful: capabilities here, tiles at each layer's
  // ResourceURL.
  for (const char* op : {"GetCapabilities", "GetTile"}) {
    x << "    <ows:Operation name=\"" << op << "\"><ows:DCP><ows:HTTP><ows:Get xlink:href=\""
      << base << "/v1/" << (op[3] == 'C' ? "wmts" : "layers/")
      << "\"><ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>RESTful"
         "</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get></ows:HTTP></ows:DCP>"
         "</ows:Operation>\n";
  }
  x << "  </ows:OperationsMetadata>\n"
    << "  <Contents>\n";
  for (const Entry& e : entries) {
    const LayerInfo& info = *e.info;
    x << "    <Layer>\n"
      << "      <ows:Title>" << e.name << "</ows:Title>\n";
    if (info.wgs84) {
      const auto& b = *info.wgs84;
      x << "      <ows:WGS84BoundingBox>\n"
        << "        <ows:LowerCorner>" << b[0] << " " << b[1] << "</ows:LowerCorner>\n"
        << "        <ows:UpperCorner>" << b[2] << " " << b[3] << "</ows:UpperCorner>\n"
        << "      </ows:WGS84BoundingBox>\n";
    }
    if (info.layer_crs) {
      const auto& b = *info.layer_crs;
      x << "      <ows:BoundingBox crs=\"urn:ogc:def:crs:EPSG::3857\">\n"
        << "        <ows:LowerCorner>" << b[0] << " " << b[1] << "</ows:LowerCorner>\n"
        << "        <ows:UpperCorner>" << b[2] << " " << b[3] << "</ows:UpperCorner>\n"
        << "      </ows:BoundingBox>\n";
    }
    x << "      <ows:Identifier>" << e.name << "</ows:Identifier>\n"
      << "      <Style isDefault=\"true\"><ows:Identifier>default</ows:Identifier></Style>\n"
      << "      <Format>" << content_type_of(info.format) << "</Format>\n"
      << "      <TileMatrixSetLink>\n"
      << "        <TileMatrixSet>" << set_name(info.tile_size) << "</TileMatrixSet>\n"
      << "        <TileMatrixSetLimits>\n";
    for (const LevelExtent& l : info.levels) {
      if (l.empty) continue;
      x << "          <TileMatrixLimits><TileMatrix>" << l.zoom << "</TileMatrix><MinTileRow>"
        << l.min_y << "</MinTileRow><MaxTileRow>" << l.max_y << "</MaxTileRow><MinTileCol>"
        << l.min_x << "</MinTileCol><MaxTileCol>" << l.max_x
        << "</MaxTileCol></TileMatrixLimits>\n";
    }
    x << "        </TileMatrixSetLimits>\n"
      << "      </TileMatrixSetLink>\n"
      << "      <ResourceURL format=\"" << content_type_of(info.format)
      << "\" resourceType=\"tile\" template=\""
      << tiles_url(base, e.name, info.version, info.format, "{TileMatrix}", "{TileCol}",
                   "{TileRow}")
      << "\"/>\n"
      << "    </Layer>\n";
  }
  for (const auto& [ts, max_zoom] : max_zoom_by_size) {
    x << "    <TileMatrixSet>\n"
      << "      <ows:Identifier>" << set_name(ts) << "</ows:Identifier>\n"
      << "      <ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>\n";
    if (ts == 256) {
      x << "      <WellKnownScaleSet>urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
           "</WellKnownScaleSet>\n";
    }
    for (int z = 0; z <= max_zoom; ++z) {
      const int64_t side = int64_t{1} << z;
      x << "      <TileMatrix><ows:Identifier>" << z << "</ows:Identifier><ScaleDenominator>"
        << kScaleZ0At256 * 256.0 / ts / static_cast<double>(side)
        << "</ScaleDenominator><TopLeftCorner>" << -kMercatorHalf << " " << kMercatorHalf
        << "</TopLeftCorner><TileWidth>" << ts << "</TileWidth><TileHeight>" << ts
        << "</TileHeight><MatrixWidth>" << side << "</MatrixWidth><MatrixHeight>" << side
        << "</MatrixHeight></TileMatrix>\n";
    }
    x << "    </TileMatrixSet>\n";
  }
  x << "  </Contents>\n"
    << "</Capabilities>\n";
  res.set_header("Cache-Control", "no-cache");
  res.set_header("Vary", "Authorization, Cookie, Host");
  res.status = 200;
  res.set_content(x.str(), "application/xml");
}

void TilesApi::handle_session_create(const Request& req, Response& res) {
  const EnvironmentConfig* env = authenticate_bearer(req, res, d_.tokens, d_.config, d_.quotas);
  if (!env) return;
  const int64_t expires_s = d_.clock.now_ms() / 1000 + kSessionSeconds;
  res.set_header("Set-Cookie",
                 session_set_cookie(d_.sessions.seal(env->name, expires_s), kSessionSeconds));
  res.set_header("Cache-Control", "no-store");
  send_json(res, 200, {{"environment", env->name}, {"expires_at", rfc3339(expires_s * 1000)}});
}

void TilesApi::handle_session_get(const Request& req, Response& res) {
  const std::string cookie = cookie_value(req.get_header_value("Cookie"), kSessionCookie);
  auto env = cookie.empty() ? std::nullopt : d_.sessions.open(cookie, d_.clock.now_ms() / 1000);
  if (!env || !d_.config.environment(*env)) {
    return send_error(res, 401, "unauthorized", "no valid session cookie: POST /v1/session");
  }
  res.set_header("Cache-Control", "no-store");
  send_json(res, 200, {{"environment", *env}});
}

void TilesApi::handle_session_delete(const Request&, Response& res) {
  // Clearing a cookie needs no credential: it is the browser's own.
  res.set_header("Set-Cookie", session_set_cookie("", 0));
  res.set_header("Cache-Control", "no-store");
  send_json(res, 200, {{"signed_out", true}});
}

}  // namespace kiln::server

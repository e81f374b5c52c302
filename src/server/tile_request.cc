#include "server/tile_request.h"

#include <charconv>
#include <cstdio>

#include "catalog/catalog.h"

namespace kiln::server {
namespace {

using json = nlohmann::json;

// Decimal digits only, no leading zero (except "0"), within [0, hi].
bool parse_decimal(std::string_view s, int64_t hi, int64_t* out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > hi) return false;
  *out = v;
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

Status bad_metadata(const std::string& field) {
  return internal_error("metadata.json: " + field + " is missing or not what an ingest writes");
}

std::optional<std::array<double, 4>> box_of(const json& j) {
  if (!j.is_array() || j.size() != 4) return std::nullopt;
  std::array<double, 4> b{};
  for (size_t i = 0; i < 4; ++i) {
    if (!j[i].is_number()) return std::nullopt;
    b[i] = j[i].get<double>();
  }
  return b;
}

}  // namespace

Result<LayerRef> parse_layer_ref(std::string_view segment) {
  LayerRef ref;
  const size_t at = segment.find('@');
  ref.layer = std::string(segment.substr(0, at));
  KILN_RETURN_IF_ERROR(catalog::validate_name("layer", ref.layer));
  if (at != std::string_view::npos) {
    int64_t v = 0;
    if (!parse_decimal(segment.substr(at + 1), kMaxLayerVersion, &v) || v < 1) {
      return invalid_argument("layer version '" + std::string(segment.substr(at + 1)) +
                              "': use name@N with N a version number 1-" +
                              std::to_string(kMaxLayerVersion));
    }
    ref.version = static_cast<int>(v);
  }
  return ref;
}

Result<TileAddress> parse_tile_address(std::string_view z, std::string_view x,
                                       std::string_view y_ext) {
  TileAddress t;
  int64_t zz = 0;
  if (!parse_decimal(z, kMaxTileZoom, &zz)) {
    return invalid_argument("tile zoom '" + std::string(z) + "': must be an integer 0-" +
                            std::to_string(kMaxTileZoom));
  }
  t.z = static_cast<int>(zz);
  const int64_t side = int64_t{1} << t.z;
  if (!parse_decimal(x, side - 1, &t.x)) {
    return invalid_argument("tile column '" + std::string(x) + "': must be an integer 0-" +
                            std::to_string(side - 1) + " at zoom " + std::to_string(t.z));
  }
  const size_t dot = y_ext.find('.');
  if (dot == std::string_view::npos) {
    return invalid_argument("tile '" + std::string(y_ext) + "': must be {y}.png, .webp or .tif");
  }
  if (!parse_decimal(y_ext.substr(0, dot), side - 1, &t.y)) {
    return invalid_argument("tile row '" + std::string(y_ext.substr(0, dot)) +
                            "': must be an integer 0-" + std::to_string(side - 1) + " at zoom " +
                            std::to_string(t.z));
  }
  t.ext = std::string(y_ext.substr(dot + 1));
  if (t.ext != "png" && t.ext != "webp" && t.ext != "tif") {
    return invalid_argument("tile format '" + t.ext + "': must be png, webp or tif");
  }
  return t;
}

std::optional<int> version_of_link(std::string_view target) {
  constexpr std::string_view kPrefix = "versions/v";
  if (target.size() != kPrefix.size() + 6 || target.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  int v = 0;
  for (char c : target.substr(kPrefix.size())) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1) return std::nullopt;
  return v;
}

std::string version_dir_name(int version) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "v%06d", version);
  return buf;
}

namespace {
// The commit time without its punctuation: 2024-05-01T12:34:56Z -> 20240501T123456Z.
std::string compact_time(std::string_view t) {
  std::string out;
  for (char c : t) {
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')) out += c;
  }
  return out;
}
}  // namespace

std::string tile_etag(int version, std::string_view created_at, const TileAddress& t) {
  return "\"v" + std::to_string(version) + "-" + compact_time(created_at) + "-" +
         std::to_string(t.z) + "-" + std::to_string(t.x) + "-" + std::to_string(t.y) + "." + t.ext +
         "\"";
}

std::string version_etag(std::string_view what, int version, std::string_view created_at) {
  return "\"" + std::string(what) + "-v" + std::to_string(version) + "-" +
         compact_time(created_at) + "\"";
}

bool if_none_match(std::string_view header, std::string_view etag) {
  std::string_view want = etag;
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string item = trim(header.substr(pos, end - pos));
    if (item == "*") return true;
    if (item.rfind("W/", 0) == 0) item = item.substr(2);
    if (!item.empty() && item == want) return true;
    pos = end + 1;
  }
  return false;
}

bool LayerInfo::inside(int z, int64_t x, int64_t y) const {
  for (const LevelExtent& l : levels) {
    if (l.zoom != z) continue;
    return !l.empty && x >= l.min_x && x <= l.max_x && y >= l.min_y && y <= l.max_y;
  }
  return false;
}

Result<LayerInfo> parse_layer_info(std::string_view text) {
  json m = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!m.is_object()) return internal_error("metadata.json: not a JSON object");
  LayerInfo info;
  if (!m.contains("version") || !m["version"].is_number_integer()) return bad_metadata("version");
  info.version = m["version"].get<int>();
  if (m.contains("created_at") && m["created_at"].is_string()) {
    info.created_at = m["created_at"].get<std::string>();
  }
  if (!m.contains("format") || !m["format"].is_string()) return bad_metadata("format");
  info.format = m["format"].get<std::string>();
  if (info.format == "tiff") info.format = "tif";
  info.layout = m.value("layout", std::string("zoomed"));
  if (!m.contains("tile_size") || !m["tile_size"].is_number_integer()) {
    return bad_metadata("tile_size");
  }
  info.tile_size = m["tile_size"].get<int>();
  const json& zoom = m.contains("zoom") ? m["zoom"] : json();
  if (!zoom.is_object() || !zoom.contains("min") || !zoom.contains("max") ||
      !zoom["min"].is_number_integer() || !zoom["max"].is_number_integer()) {
    return bad_metadata("zoom");
  }
  info.min_zoom = zoom["min"].get<int>();
  info.max_zoom = zoom["max"].get<int>();
  if (m.contains("levels") && m["levels"].is_array()) {
    for (const json& l : m["levels"]) {
      if (!l.is_object() || !l.contains("zoom") || !l["zoom"].is_number_integer()) {
        return bad_metadata("levels[].zoom");
      }
      LevelExtent e;
      e.zoom = l["zoom"].get<int>();
      const char* keys[] = {"min_x", "min_y", "max_x", "max_y"};
      int64_t* dst[] = {&e.min_x, &e.min_y, &e.max_x, &e.max_y};
      bool all = true;
      for (int i = 0; i < 4; ++i) {
        if (!l.contains(keys[i]) || !l[keys[i]].is_number_integer()) {
          all = false;
          break;
        }
        *dst[i] = l[keys[i]].get<int64_t>();
      }
      e.empty = !all || e.max_x < e.min_x || e.max_y < e.min_y;
      info.levels.push_back(e);
    }
  }
  if (m.contains("extent") && m["extent"].is_object()) {
    const json& ex = m["extent"];
    if (ex.contains("wgs84")) info.wgs84 = box_of(ex["wgs84"]);
    if (ex.contains("layer_crs")) info.layer_crs = box_of(ex["layer_crs"]);
  }
  info.metadata = std::move(m);
  return info;
}

}  // namespace kiln::server

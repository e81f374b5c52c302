#include "render/render_params.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "render/colormap.h"

namespace kiln::render {
namespace {

// Quotes tenant text in an error message: at most 40 bytes, control bytes
// and non-ASCII shown as '?', so a message never carries an attacker's
// terminal escapes or megabytes.
std::string quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      c = ' ';
    } else if (c == '%') {
      const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (lo < 0) return invalid_argument("query: bad %-escape in " + quote(s));
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return invalid_argument("query: NUL byte in " + quote(s));
    out += c;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// A finite decimal number filling all of `s` (no spaces, no "inf"/"nan").
std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Numbers beyond this are refused so that (v - min) * 255 never overflows.
constexpr double kMaxMagnitude = 1e300;

Status parse_bidx(std::string_view v, RenderParams* p) {
  const auto parts = split(v, ',');
  if (parts.size() != 1 && parts.size() != 3) {
    return invalid_argument(
        "bidx: give 1 band index (a single-band image) or 3 (red,green,blue); got " +
        std::to_string(parts.size()) + " in " + quote(v));
  }
  for (std::string_view part : parts) {
    int b = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), b);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size() || b < 1 ||
        b > kMaxBandIndex) {
      return invalid_argument("bidx: " + quote(part) +
                              " is not a band index (a whole number from 1; bands count from 1)");
    }
    p->bidx.push_back(b);
  }
  return Status::ok();
}

Status parse_rescale(std::string_view v, RenderParams* p) {
  const auto pairs = split(v, ';');
  if (pairs.size() > 3) {
    return invalid_argument("rescale: at most 3 min,max pairs (one per band); got " +
                            std::to_string(pairs.size()));
  }
  for (std::string_view pair : pairs) {
    const auto ends = split(pair, ',');
    std::optional<double> lo = ends.size() == 2 ? parse_number(ends[0]) : std::nullopt;
    std::optional<double> hi = ends.size() == 2 ? parse_number(ends[1]) : std::nullopt;
    if (!lo || !hi) {
      return invalid_argument("rescale: " + quote(pair) +
                              " is not min,max (two finite numbers, e.g. rescale=0,3000)");
    }
    if (std::fabs(*lo) > kMaxMagnitude || std::fabs(*hi) > kMaxMagnitude) {
      return invalid_argument("rescale: " + quote(pair) + " is out of range (|value| <= 1e300)");
    }
    if (!(*lo < *hi)) {
      return invalid_argument("rescale: " + quote(pair) + ": min must be less than max");
    }
    p->rescale.push_back(Range{*lo, *hi});
  }
  return Status::ok();
}

std::string colormap_list() {
  std::string s;
  for (const std::string& n : colormap_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// A number in [lo, hi] (or (lo, hi] when `open_low`) for parameter `key`.
Result<double> parse_in_range(std::string_view key, std::string_view v, double lo, double hi,
                              bool open_low) {
  std::optional<double> x = parse_number(v);
  const bool low_ok = x && (open_low ? *x > lo : *x >= lo);
  if (!x || !low_ok || *x > hi) {
    char range[96];
    std::snprintf(range, sizeof(range), "%s%g, %g]", open_low ? "(" : "[", lo, hi);
    return invalid_argument(std::string(key) + ": " + quote(v) + " is not a number in " + range);
  }
  return *x;
}

}  // namespace

const char* image_format_name(ImageFormat f) { return f == ImageFormat::kWebp ? "webp" : "png"; }

Result<QueryPairs> split_query(std::string_view query) {
  if (query.size() > kMaxQueryBytes) {
    return invalid_argument("query: " + std::to_string(query.size()) + " bytes; at most " +
                            std::to_string(kMaxQueryBytes));
  }
  QueryPairs pairs;
  for (std::string_view item : split(query, '&')) {
    if (item.empty()) continue;
    if (pairs.size() == kMaxParams) {
      return invalid_argument("query: more than " + std::to_string(kMaxParams) + " parameters");
    }
    const size_t eq = item.find('=');
    KILN_ASSIGN_OR_RETURN(std::string key, percent_decode(item.substr(0, eq)));
    std::string value;
    if (eq != std::string_view::npos) {
      KILN_ASSIGN_OR_RETURN(value, percent_decode(item.substr(eq + 1)));
    }
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

bool is_render_param(std::string_view key) {
  static const std::set<std::string_view> kKeys = {"bidx",      "rescale", "colormap", "format",
                                                   "hillshade", "azimuth", "altitude", "z_factor"};
  return kKeys.count(key) > 0;
}

Result<RenderParams> parse_render_params(const QueryPairs& pairs,
                                         const std::set<std::string, std::less<>>& also_allowed) {
  if (pairs.size() > kMaxParams) {
    return invalid_argument("query: more than " + std::to_string(kMaxParams) + " parameters");
  }
  std::set<std::string, std::less<>> seen;
  RenderParams p;
  bool hillshade = false;
  HillshadeParams hs;
  std::string shade_option;  // the first hillshade option given, for errors
  for (const auto& [key, value] : pairs) {
    if (!is_render_param(key)) {
      if (also_allowed.count(key)) continue;
      return invalid_argument(quote(key) +
                              ": unknown parameter; rendering takes bidx, rescale, colormap, "
                              "format, hillshade, azimuth, altitude, z_factor");
    }
    if (!seen.insert(key).second) return invalid_argument(key + ": given more than once");
    if (value.size() > kMaxValueBytes) {
      return invalid_argument(key + ": value of " + std::to_string(value.size()) +
                              " bytes; at most " + std::to_string(kMaxValueBytes));
    }
    if (key == "bidx") {
      KILN_RETURN_IF_ERROR(parse_bidx(value, &p));
    } else if (key == "rescale") {
      KILN_RETURN_IF_ERROR(parse_rescale(value, &p));
    } else if (key == "colormap") {
      p.colormap = canonical_colormap_name(value);
      if (p.colormap.empty()) {
        return invalid_argument("colormap: no colour map " + quote(value) +
                                "; known: " + colormap_list());
      }
    } else if (key == "format") {
      if (value == "png") {
        p.format = ImageFormat::kPng;
      } else if (value == "webp") {
        p.format = ImageFormat::kWebp;
      } else {
        return invalid_argument("format: " + quote(value) + " is not png or webp");
      }
    } else if (key == "hillshade") {
      if (value.empty() || value == "true" || value == "1") {
        hillshade = true;
      } else if (value != "false" && value != "0") {
        return invalid_argument("hillshade: " + quote(value) +
                                " is not true or false (or empty, meaning true)");
      }
    } else {
      if (shade_option.empty()) shade_option = key;
      if (key == "azimuth") {
        KILN_ASSIGN_OR_RETURN(hs.azimuth, parse_in_range(key, value, 0, 360, false));
      } else if (key == "altitude") {
        KILN_ASSIGN_OR_RETURN(hs.altitude, parse_in_range(key, value, 0, 90, false));
      } else {
        KILN_ASSIGN_OR_RETURN(hs.z_factor, parse_in_range(key, value, 0, 1e6, true));
      }
    }
  }
  if (!hillshade && !shade_option.empty()) {
    return invalid_argument(shade_option + ": applies only with hillshade");
  }
  if (hillshade) {
    if (!p.rescale.empty()) {
      return invalid_argument(
          "rescale: not used with hillshade (shading is 0-255 already; drop rescale)");
    }
    if (p.bidx.size() > 1) {
      return invalid_argument("hillshade: needs one elevation band; bidx selects " +
                              std::to_string(p.bidx.size()));
    }
    p.hillshade = hs;
  }
  if (!p.colormap.empty() && p.bidx.size() > 1) {
    return invalid_argument("colormap: applies to a single band; bidx selects " +
                            std::to_string(p.bidx.size()));
  }
  if (!p.rescale.empty() && !p.bidx.empty() && p.rescale.size() != 1 &&
      p.rescale.size() != p.bidx.size()) {
    return invalid_argument("rescale: give one min,max pair or one per band of bidx (" +
                            std::to_string(p.bidx.size()) + "); got " +
                            std::to_string(p.rescale.size()));
  }
  return p;
}

Result<RenderParams> parse_render_query(std::string_view query) {
  KILN_ASSIGN_OR_RETURN(QueryPairs pairs, split_query(query));
  return parse_render_params(pairs);
}

Status check_against_layer(RenderParams* p, int layer_bands) {
  if (layer_bands < 1) return invalid_argument("layer: has no bands");
  if (p->bidx.empty()) {
    // A single map or hillshade wants one band; else show RGB when there is one.
    if (layer_bands >= 3 && p->colormap.empty() && !p->hillshade) {
      p->bidx = {1, 2, 3};
    } else {
      p->bidx = {1};
    }
  }
  for (int b : p->bidx) {
    if (b > layer_bands) {
      return invalid_argument("bidx: band " + std::to_string(b) +
                              " does not exist; the layer has " + std::to_string(layer_bands) +
                              (layer_bands == 1 ? " band" : " bands"));
    }
  }
  if (p->rescale.size() > 1 && p->rescale.size() != p->bidx.size()) {
    return invalid_argument("rescale: give one min,max pair or one per band shown (" +
                            std::to_string(p->bidx.size()) + "); got " +
                            std::to_string(p->rescale.size()));
  }
  return Status::ok();
}

}  // namespace kiln::render

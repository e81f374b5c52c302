#include "render/colormap.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cmath>
#include <map>

namespace kiln::render {
namespace {

// A control point: position 0-1 along the map and its colour as 0xRRGGBB.
struct Stop {
  double at;
  uint32_t rgb;
};

// Where the control points come from. Only the points are taken (a handful
// of published colours per map, which are facts about the maps); the
// 256-entry tables are interpolated from them here, so they approximate the
// upstream tables (within a few DN for viridis and magma, whose upstream
// tables are sampled from a perceptual model, not from linear segments).
//
// viridis, magma: by Nathaniel J. Smith, Stefan van der Walt (viridis) and
//   Eric Firing (magma), released under CC0 (public domain dedication). The
//   stops are the 11 evenly spaced colours the maps' authors' tables give at
//   0, 0.1, ..., 1 (as R's viridisLite prints them with viridis(11)/magma(11)).
// greys, RdYlGn: ColorBrewer 2.0 by Cynthia A. Brewer, Penn State
//   (Apache License 2.0): the 9-class "Greys" (light to dark, as matplotlib's
//   "Greys") and the 11-class "RdYlGn" schemes, evenly spaced.
// terrain: the six segment ends of matplotlib's "terrain" map (matplotlib
//   licence, BSD-style), given there as fractions and scaled to 8 bits here.
// gray: plain black to white (no upstream), for a single band seen as is.
const std::map<std::string, std::vector<Stop>, std::less<>>& stops() {
  static const auto* kStops = new std::map<std::string, std::vector<Stop>, std::less<>>{
      {"viridis",
       {{0.0, 0x440154},
        {0.1, 0x482576},
        {0.2, 0x414487},
        {0.3, 0x35608D},
        {0.4, 0x2A788E},
        {0.5, 0x21908C},
        {0.6, 0x22A884},
        {0.7, 0x43BF71},
        {0.8, 0x7AD151},
        {0.9, 0xBBDF27},
        {1.0, 0xFDE725}}},
      {"magma",
       {{0.0, 0x000004},
        {0.1, 0x140E36},
        {0.2, 0x3B0F70},
        {0.3, 0x641A80},
        {0.4, 0x8C2981},
        {0.5, 0xB73779},
        {0.6, 0xDE4968},
        {0.7, 0xF7705C},
        {0.8, 0xFE9F6D},
        {0.9, 0xFECF92},
        {1.0, 0xFCFDBF}}},
      {"terrain",
       // matplotlib: (0.2,0.2,0.6) (0,0.6,1) (0,0.8,0.4) (1,1,0.6) (0.5,0.36,0.33) (1,1,1)
       {{0.00, 0x333399},
        {0.15, 0x0099FF},
        {0.25, 0x00CC66},
        {0.50, 0xFFFF99},
        {0.75, 0x805C54},
        {1.00, 0xFFFFFF}}},
      {"greys",
       {{0 / 8.0, 0xFFFFFF},
        {1 / 8.0, 0xF0F0F0},
        {2 / 8.0, 0xD9D9D9},
        {3 / 8.0, 0xBDBDBD},
        {4 / 8.0, 0x969696},
        {5 / 8.0, 0x737373},
        {6 / 8.0, 0x525252},
        {7 / 8.0, 0x252525},
        {8 / 8.0, 0x000000}}},
      {"gray", {{0.0, 0x000000}, {1.0, 0xFFFFFF}}},
      {"RdYlGn",
       {{0.0, 0xA50026},
        {0.1, 0xD73027},
        {0.2, 0xF46D43},
        {0.3, 0xFDAE61},
        {0.4, 0xFEE08B},
        {0.5, 0xFFFFBF},
        {0.6, 0xD9EF8B},
        {0.7, 0xA6D96A},
        {0.8, 0x66BD63},
        {0.9, 0x1A9850},
        {1.0, 0x006837}}},
  };
  return *kStops;
}

uint8_t channel(uint32_t rgb, int shift) { return static_cast<uint8_t>((rgb >> shift) & 0xff); }

// Entry i sits at t = i / 255; between two stops each channel is linear and
// rounded half up: floor(a + (b - a) * f + 0.5).
ColorTable interpolate(const std::vector<Stop>& s) {
  ColorTable table;
  size_t k = 0;
  for (int i = 0; i < 256; ++i) {
    const double t = i / 255.0;
    while (k + 2 < s.size() && t > s[k + 1].at) ++k;
    const Stop& a = s[k];
    const Stop& b = s[k + 1];
    const double f = std::clamp((t - a.at) / (b.at - a.at), 0.0, 1.0);
    auto mix = [&](int shift) {
      const double x = channel(a.rgb, shift), y = channel(b.rgb, shift);
      return static_cast<uint8_t>(std::floor(x + (y - x) * f + 0.5));
    };
    table[i] = Rgb{mix(16), mix(8), mix(0)};
  }
  return table;
}

}  // namespace

const std::vector<std::string>& colormap_names() {
  static const auto* kNames =
      new std::vector<std::string>{"viridis", "magma", "terrain", "greys", "gray", "RdYlGn"};
  return *kNames;
}

std::string canonical_colormap_name(std::string_view name) {
  for (const std::string& n : colormap_names()) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(n[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return n;
  }
  return {};
}

const ColorTable& colormap_table(std::string_view canonical_name) {
  // Built once, in a function-local static (thread-safe initialisation).
  static const auto* kTables = [] {
    auto* t = new std::map<std::string, ColorTable, std::less<>>();
    for (const auto& [name, s] : stops()) (*t)[name] = interpolate(s);
    return t;
  }();
  auto it = kTables->find(canonical_name);
  assert(it != kTables->end());
  return it->second;
}

}  // namespace kiln::render

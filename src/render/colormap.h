// Named colour maps: 256-entry RGB tables that a rescaled value 0-255 indexes.
//
// The tables are generated here, at first use, by linear interpolation (in
// 8-bit sRGB) between each map's published control points; colormap.cc
// lists the points, where they were published and under which licence.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::render {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

using ColorTable = std::array<Rgb, 256>;

// The canonical names, in the order docs/rendering.md lists them.
const std::vector<std::string>& colormap_names();

// The canonical name for `name` compared case-insensitively ("rdylgn" ->
// "RdYlGn"), or empty when there is no such map.
std::string canonical_colormap_name(std::string_view name);

// The table of a canonical name. REQUIRES: canonical_colormap_name(name)
// is not empty. Thread-safe; the tables are built once and never freed.
const ColorTable& colormap_table(std::string_view canonical_name);

}  // namespace kiln::render

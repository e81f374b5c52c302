// RenderParams: how an analytic tile becomes a picture, parsed from a tile
// request's query parameters (docs/rendering.md lists them). Every value is
// tenant input: sizes are bounded, numbers range-checked, and each refusal
// names the parameter.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "raster/cell_type.h"

namespace kiln::render {

enum class ImageFormat { kPng, kWebp };

struct Range {
  double min = 0;
  double max = 0;
};

struct HillshadeParams {
  double azimuth = 315;  // degrees clockwise from north, where the light comes from
  double altitude = 45;  // degrees above the horizon
  double z_factor = 1;   // vertical exaggeration (elevation units per metre)
};

struct RenderParams {
  // 1-based band indexes, 1 or 3 of them; empty: the layer's band 1, or its
  // bands 1,2,3 when it has three or more.
  std::vector<int> bidx;
  // One range for every band, or one per band of bidx; empty: the layer's
  // 2nd-98th percentiles (default_rescale()).
  std::vector<Range> rescale;
  std::string colormap;  // canonical name (colormap.h), empty for none
  ImageFormat format = ImageFormat::kPng;
  std::optional<HillshadeParams> hillshade;
};

// Limits on tenant input. A query longer than kMaxQueryBytes, a value longer
// than kMaxValueBytes or more than kMaxParams pairs is refused before parsing.
inline constexpr size_t kMaxQueryBytes = 4096;
inline constexpr size_t kMaxValueBytes = 1024;
inline constexpr size_t kMaxParams = 32;
// Band indexes above this are refused outright (GDAL's own limit is 65536).
inline constexpr int kMaxBandIndex = 65535;

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// Splits "a=1&b=2" into pairs, percent-decoding keys and values ('+' is a
// space). kInvalidArgument for an oversized query, a bad %-escape or a NUL.
Result<QueryPairs> split_query(std::string_view query);

// Parses the rendering parameters among `pairs`. A key that is neither a
// rendering parameter nor in `also_allowed` (the caller's own parameters,
// e.g. a URL signature) is refused, as is a repeated one.
// kInvalidArgument names the parameter and says what it accepts. Checks that
// need the layer (band count, cell type) are check_against_layer()'s.
// Thread-safe.
Result<RenderParams> parse_render_params(
    const QueryPairs& pairs, const std::set<std::string, std::less<>>& also_allowed = {});

// Whether `key` is one of the rendering parameters (bidx, rescale, ...).
bool is_render_param(std::string_view key);

// Shorthand: split_query then parse_render_params with nothing else allowed.
Result<RenderParams> parse_render_query(std::string_view query);

// Resolves the defaults that depend on the layer and refuses what it cannot
// hold: fills bidx, checks each index against `layer_bands`, and checks that
// rescale has one range or one per selected band. kInvalidArgument names
// the parameter.
Status check_against_layer(RenderParams* params, int layer_bands);

const char* image_format_name(ImageFormat f);

}  // namespace kiln::render

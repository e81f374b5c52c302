// A Raster as bytes (zstd-compressed), for handing a partition's top tiles
// to the reduce step, which may run in another process or on another host.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "raster/raster.h"

namespace kiln {

std::string serialize_raster(const Raster& r);
// kInternal if the bytes are not a raster blob of this version.
Result<Raster> deserialize_raster(std::string_view bytes);

}  // namespace kiln

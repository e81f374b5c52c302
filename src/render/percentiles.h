// Default rescale ranges: each band's 2nd-98th percentile, estimated from
// the histogram the ingest stores in metadata.json ("statistics"[b]
// ["histogram"]: buckets of equal width over [min, max]).
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "render/render_params.h"

namespace kiln::render {

struct StoredHistogram {
  double min = 0;
  double max = 0;
  std::vector<uint64_t> buckets;
};

// The value below which `percent` (0-100) of the histogram's count lies,
// interpolating linearly inside the bucket where it falls. kInvalidArgument
// for an empty histogram or a percent out of range.
Result<double> histogram_percentile(const StoredHistogram& h, double percent);

// One range per band of `metadata` (a layer's metadata.json): the 2nd and
// 98th percentiles of its histogram; a band whose two percentiles coincide
// (a constant band) gets [p, p + 1]. kInvalidArgument naming the field when
// the statistics are missing or malformed, or a band has no data.
Result<std::vector<Range>> default_rescale(const nlohmann::json& metadata);

}  // namespace kiln::render

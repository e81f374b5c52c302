#include "render/percentiles.h"

#include <cmath>
#include <string>

namespace kiln::render {

Result<double> histogram_percentile(const StoredHistogram& h, double percent) {
  if (!(percent >= 0 && percent <= 100)) {
    return invalid_argument("percentile: " + std::to_string(percent) + " is not in [0, 100]");
  }
  uint64_t total = 0;
  for (uint64_t c : h.buckets) total += c;
  if (total == 0 || !(h.min <= h.max)) return invalid_argument("histogram: no values");
  const double width = (h.max - h.min) / static_cast<double>(h.buckets.size());
  const double target = percent / 100.0 * static_cast<double>(total);
  double below = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    const double c = static_cast<double>(h.buckets[i]);
    if (c > 0 && below + c >= target) {
      const double frac = (target - below) / c;
      return h.min + (static_cast<double>(i) + frac) * width;
    }
    below += c;
  }
  return h.max;
}

Result<std::vector<Range>> default_rescale(const nlohmann::json& metadata) {
  const auto stats = metadata.find("statistics");
  if (stats == metadata.end() || !stats->is_array()) {
    return invalid_argument("metadata.json: no statistics array");
  }
  std::vector<Range> out;
  for (size_t b = 0; b < stats->size(); ++b) {
    const std::string where = "metadata.json: statistics[" + std::to_string(b) + "].histogram";
    const nlohmann::json& s = (*stats)[b];
    if (!s.is_object() || !s.contains("histogram") || !s["histogram"].is_object()) {
      return invalid_argument(where + ": missing");
    }
    const nlohmann::json& hj = s["histogram"];
    StoredHistogram h;
    if (!hj.contains("min") || !hj["min"].is_number() || !hj.contains("max") ||
        !hj["max"].is_number() || !hj.contains("buckets") || !hj["buckets"].is_array()) {
      return invalid_argument(where + ": needs numbers min, max and an array buckets");
    }
    h.min = hj["min"].get<double>();
    h.max = hj["max"].get<double>();
    for (const auto& c : hj["buckets"]) {
      if (!c.is_number_integer() || c.get<int64_t>() < 0) {
        if (!c.is_number_unsigned()) return invalid_argument(where + ".buckets: not counts");
      }
      h.buckets.push_back(c.get<uint64_t>());
    }
    Result<double> lo = histogram_percentile(h, 2);
    Result<double> hi = histogram_percentile(h, 98);
    if (!lo.is_ok() || !hi.is_ok()) {
      return invalid_argument("rescale: band " + std::to_string(b + 1) +
                              " has no data to take defaults from; give rescale=min,max");
    }
    Range r{*lo, *hi};
    if (!(r.min < r.max)) r.max = r.min + 1;
    out.push_back(r);
  }
  return out;
}

}  // namespace kiln::render

#include "sim/trace.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace kiln::sim {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::stringstream ss(line);
  while (std::getline(ss, cell, ',')) {
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.pop_back();
    while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
    out.push_back(cell);
  }
  return out;
}

bool to_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return *end == '\0' && std::isfinite(*out);
}

// Calls row(fields, where) for each data line (after the header; blank lines
// and lines starting with '#' are skipped).
template <typename F>
Status for_each_row(const std::string& path, size_t columns, F row) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot read it");
  std::string line;
  int64_t n = 0;
  bool header = true;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#' || line == "\r") continue;
    if (header) {
      header = false;
      continue;
    }
    const std::string where = path + ":" + std::to_string(n);
    std::vector<std::string> f = split_csv(line);
    if (f.size() < columns) {
      return invalid_argument(where + ": expected " + std::to_string(columns) +
                              " comma-separated fields, got " + std::to_string(f.size()));
    }
    KILN_RETURN_IF_ERROR(row(f, where));
  }
  if (header) return invalid_argument(path + ": empty (a header line and rows expected)");
  return Status::ok();
}

}  // namespace

Result<std::vector<Arrival>> read_workload(const std::string& path) {
  std::vector<Arrival> out;
  KILN_RETURN_IF_ERROR(for_each_row(path, 3, [&](const auto& f, const std::string& where) {
    double t = 0, tiles = 0;
    if (!to_double(f[0], &t) || t < 0) {
      return invalid_argument(where + ": arrival_s '" + f[0] + "' is not a time >= 0");
    }
    if (f[1].empty()) return invalid_argument(where + ": environment is empty");
    if (!to_double(f[2], &tiles) || tiles < 1) {
      return invalid_argument(where + ": tiles '" + f[2] + "' is not a count >= 1");
    }
    out.push_back({static_cast<int64_t>(t * 1000), f[1], static_cast<int64_t>(tiles)});
    return Status::ok();
  }));
  std::stable_sort(out.begin(), out.end(),
                   [](const Arrival& a, const Arrival& b) { return a.t_ms < b.t_ms; });
  return out;
}

Result<std::vector<SpotPoint>> read_spot_trace(const std::string& path) {
  std::vector<SpotPoint> out;
  KILN_RETURN_IF_ERROR(for_each_row(path, 2, [&](const auto& f, const std::string& where) {
    SpotPoint p;
    double t = 0;
    if (!to_double(f[0], &t) || t < 0) {
      return invalid_argument(where + ": t_s '" + f[0] + "' is not a time >= 0");
    }
    if (!to_double(f[1], &p.price_per_hour) || p.price_per_hour < 0) {
      return invalid_argument(where + ": price_per_hour '" + f[1] + "' is not a price >= 0");
    }
    if (f.size() > 2 && !f[2].empty() &&
        (!to_double(f[2], &p.interruptions_per_node_hour) || p.interruptions_per_node_hour < 0)) {
      return invalid_argument(where + ": interruptions_per_node_hour '" + f[2] +
                              "' is not a rate >= 0");
    }
    p.t_ms = static_cast<int64_t>(t * 1000);
    out.push_back(p);
    return Status::ok();
  }));
  std::stable_sort(out.begin(), out.end(),
                   [](const SpotPoint& a, const SpotPoint& b) { return a.t_ms < b.t_ms; });
  return out;
}

elastic::PriceTrace spot_prices(const std::vector<SpotPoint>& points) {
  std::vector<std::pair<int64_t, double>> p;
  for (const SpotPoint& s : points) p.emplace_back(s.t_ms, s.price_per_hour);
  auto trace = elastic::PriceTrace::from_points(std::move(p));
  return trace.is_ok() ? *trace : elastic::PriceTrace(0);
}

double interruption_rate(const std::vector<SpotPoint>& points, int64_t t_ms) {
  if (points.empty()) return 0;
  auto it = std::upper_bound(points.begin(), points.end(), t_ms,
                             [](int64_t t, const SpotPoint& p) { return t < p.t_ms; });
  return it == points.begin() ? points.front().interruptions_per_node_hour
                              : std::prev(it)->interruptions_per_node_hour;
}

}  // namespace kiln::sim

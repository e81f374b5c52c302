#include "sim/trace.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

namespace kiln::sim {
namespace {

using nlohmann::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? comma : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool parse_number(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return *end == '\0' && std::isfinite(*out);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One data line of either format, as named cells: CSV cells by their
// column, JSON members by key. `where` is "<path>:<line>".
class Row {
 public:
  Row(std::string where, int64_t line, const std::vector<std::string>* columns,
      std::vector<std::string> cells)
      : where_(std::move(where)), line_(line), columns_(columns), cells_(std::move(cells)) {}
  Row(std::string where, int64_t line, json object)
      : where_(std::move(where)), line_(line), object_(std::move(object)) {}

  const std::string& where() const { return where_; }
  int64_t line() const { return line_; }

  // The number in column/key `name`; `required` false: nullopt when absent
  // or an empty cell.
  Result<std::optional<double>> number(const std::string& name, bool required) const {
    if (columns_ != nullptr) {
      const size_t i = index(name);
      if (i >= cells_.size() || cells_[i].empty()) {
        if (!required) return std::optional<double>();
        return invalid_argument(where_ + ": " + name + " is missing");
      }
      double v = 0;
      if (!parse_number(cells_[i], &v)) {
        return invalid_argument(where_ + ": " + name + " '" + cells_[i] + "' is not a number");
      }
      return std::optional<double>(v);
    }
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) {
      if (!required) return std::optional<double>();
      return invalid_argument(where_ + ": \"" + name + "\" is missing");
    }
    if (!it->is_number()) {
      return invalid_argument(where_ + ": \"" + name + "\" " + it->dump() + " is not a number");
    }
    return std::optional<double>(it->get<double>());
  }

  Result<std::string> text(const std::string& name) const {
    if (columns_ != nullptr) {
      const size_t i = index(name);
      if (i >= cells_.size() || cells_[i].empty()) {
        return invalid_argument(where_ + ": " + name + " is missing");
      }
      return cells_[i];
    }
    auto it = object_.find(name);
    if (it == object_.end() || !it->is_string() || it->get<std::string>().empty()) {
      return invalid_argument(where_ + ": \"" + name + "\" must be a non-empty string");
    }
    return it->get<std::string>();
  }

 private:
  size_t index(const std::string& name) const {
    return static_cast<size_t>(std::find(columns_->begin(), columns_->end(), name) -
                               columns_->begin());
  }

  std::string where_;
  int64_t line_ = 0;
  const std::vector<std::string>* columns_ = nullptr;  // CSV: the header's names
  std::vector<std::string> cells_;
  json object_;
};

// Calls row() for each data line of `path`. CSV: the first line that is not
// blank or a '#' comment is the header and must hold `required` columns
// (in any order; `optional` ones may follow); JSON lines: one object per line.
Status for_each_row(const std::string& path, const std::vector<std::string>& required,
                    const std::vector<std::string>& optional,
                    const std::function<Status(const Row&)>& row) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot read it");
  enum class Format { kUnknown, kCsv, kJson } format = Format::kUnknown;
  if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json")) {
    format = Format::kJson;
  }
  std::vector<std::string> columns;
  std::string expected;
  for (const auto& c : required) expected += (expected.empty() ? "" : ",") + c;
  std::string line;
  int64_t number = 0;
  bool any = false;
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    if (format == Format::kUnknown) format = t[0] == '{' ? Format::kJson : Format::kCsv;
    if (format == Format::kJson) {
      json j = json::parse(t, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        return invalid_argument(where + ": not a JSON object (JSON lines: one object per line)");
      }
      KILN_RETURN_IF_ERROR(row(Row(where, number, std::move(j))));
      any = true;
      continue;
    }
    std::vector<std::string> cells = split_csv(t);
    if (columns.empty()) {
      for (const std::string& c : required) {
        if (std::find(cells.begin(), cells.end(), c) == cells.end()) {
          return invalid_argument(where + ": the header line must name the columns '" + expected +
                                  "', got '" + t + "'");
        }
      }
      for (const std::string& c : cells) {
        if (std::find(required.begin(), required.end(), c) == required.end() &&
            std::find(optional.begin(), optional.end(), c) == optional.end()) {
          return invalid_argument(where + ": unknown column '" + c + "' (columns: " + expected +
                                  (optional.empty() ? "" : ", optional " + optional.front()) + ")");
        }
      }
      columns = std::move(cells);
      continue;
    }
    if (cells.size() > columns.size()) {
      return invalid_argument(where + ": " + std::to_string(cells.size()) +
                              " fields, the header has " + std::to_string(columns.size()));
    }
    KILN_RETURN_IF_ERROR(row(Row(where, number, &columns, std::move(cells))));
    any = true;
  }
  if (!any) return invalid_argument(path + ": no data lines");
  return Status::ok();
}

int64_t to_ms(double seconds) { return std::llround(seconds * 1000); }

}  // namespace

Result<std::vector<Arrival>> read_workload(const std::string& path) {
  std::vector<Arrival> out;
  KILN_RETURN_IF_ERROR(
      for_each_row(path, {"arrival_s", "environment", "tiles"}, {}, [&](const Row& r) -> Status {
        KILN_ASSIGN_OR_RETURN(std::optional<double> t, r.number("arrival_s", true));
        if (*t < 0 || *t > 366.0 * 86400) {
          return invalid_argument(r.where() + ": arrival_s " + std::to_string(*t) +
                                  " is not a time from 0 to a year, in seconds");
        }
        KILN_ASSIGN_OR_RETURN(std::string env, r.text("environment"));
        KILN_ASSIGN_OR_RETURN(std::optional<double> tiles, r.number("tiles", true));
        if (*tiles < 1 || *tiles > 1e12 || *tiles != std::floor(*tiles)) {
          return invalid_argument(r.where() + ": tiles must be a whole number >= 1");
        }
        out.push_back({to_ms(*t), std::move(env), static_cast<int64_t>(*tiles), r.line()});
        return Status::ok();
      }));
  std::stable_sort(out.begin(), out.end(),
                   [](const Arrival& a, const Arrival& b) { return a.t_ms < b.t_ms; });
  return out;
}

Result<std::vector<SpotPoint>> read_spot_trace(const std::string& path) {
  std::vector<SpotPoint> out;
  KILN_RETURN_IF_ERROR(for_each_row(
      path, {"t_s", "price_per_hour"}, {"interruptions_per_node_hour"},
      [&](const Row& r) -> Status {
        SpotPoint p;
        KILN_ASSIGN_OR_RETURN(std::optional<double> t, r.number("t_s", true));
        if (*t < 0) return invalid_argument(r.where() + ": t_s must be >= 0");
        KILN_ASSIGN_OR_RETURN(std::optional<double> price, r.number("price_per_hour", true));
        if (*price < 0) return invalid_argument(r.where() + ": price_per_hour must be >= 0");
        KILN_ASSIGN_OR_RETURN(std::optional<double> rate,
                              r.number("interruptions_per_node_hour", false));
        if (rate && *rate < 0) {
          return invalid_argument(r.where() + ": interruptions_per_node_hour must be >= 0");
        }
        p.t_ms = to_ms(*t);
        p.price_per_hour = *price;
        p.interruptions_per_node_hour = rate ? *rate : -1;
        out.push_back(p);
        return Status::ok();
      }));
  std::stable_sort(out.begin(), out.end(),
                   [](const SpotPoint& a, const SpotPoint& b) { return a.t_ms < b.t_ms; });
  return out;
}

elastic::PriceTrace spot_prices(const std::vector<SpotPoint>& points) {
  std::vector<std::pair<int64_t, double>> p;
  p.reserve(points.size());
  for (const SpotPoint& s : points) p.emplace_back(s.t_ms, s.price_per_hour);
  auto trace = elastic::PriceTrace::from_points(std::move(p));
  assert(trace.is_ok() && "read_spot_trace checked the prices");
  return *trace;
}

double interruption_rate(const std::vector<SpotPoint>& points, int64_t t_ms, double fallback) {
  if (points.empty()) return fallback;
  auto it = std::upper_bound(points.begin(), points.end(), t_ms,
                             [](int64_t t, const SpotPoint& p) { return t < p.t_ms; });
  const SpotPoint& p = it == points.begin() ? points.front() : *std::prev(it);
  return p.interruptions_per_node_hour < 0 ? fallback : p.interruptions_per_node_hour;
}

}  // namespace kiln::sim

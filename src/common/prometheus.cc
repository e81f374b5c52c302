#include "common/prometheus.h"

#include <cmath>
#include <cstdio>

namespace kiln {
namespace {

std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Label values escape backslash, quote and newline.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  MutexLock lock(&mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, std::string* out) const {
  MutexLock lock(&mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    metric_sample(out, name + "_bucket", {{"le", format_value(le)}},
                  static_cast<double>(cumulative));
  }
  metric_sample(out, name + "_sum", {}, sum_);
  metric_sample(out, name + "_count", {}, static_cast<double>(count_));
}

void metric_header(std::string* out, const std::string& name, const char* type,
                   const std::string& help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void metric_sample(std::string* out, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels, double value) {
  *out += name;
  if (!labels.empty()) {
    *out += "{";
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) *out += ",";
      *out += labels[i].first + "=\"" + escape(labels[i].second) + "\"";
    }
    *out += "}";
  }
  *out += " " + format_value(value) + "\n";
}

}  // namespace kiln

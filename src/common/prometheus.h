// Prometheus text exposition (format 0.0.4) for kiln serve's /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines for metric `name`.
  void render(const std::string& name, std::string* out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Writes "# HELP" and "# TYPE" lines.
void metric_header(std::string* out, const std::string& name, const char* type,
                   const std::string& help);
// One sample line: name{labels} value. `labels` are (key, value) pairs.
void metric_sample(std::string* out, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels, double value);

}  // namespace kiln

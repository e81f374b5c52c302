// Prometheus text exposition (format 0.0.4) for kiln serve's /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace kiln {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  // Thread-safe.
  void observe(double v) EXCLUDES(mu_);
  // Appends the _bucket/_sum/_count lines for metric `name`. Thread-safe.
  void render(const std::string& name, std::string* out) const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  const std::vector<double> bounds_;
  // Per bucket, not cumulative; the last is +Inf.
  std::vector<uint64_t> counts_ GUARDED_BY(mu_);
  double sum_ GUARDED_BY(mu_) = 0;
  uint64_t count_ GUARDED_BY(mu_) = 0;
};

// Writes "# HELP" and "# TYPE" lines.
void metric_header(std::string* out, const std::string& name, const char* type,
                   const std::string& help);
// One sample line: name{labels} value. `labels` are (key, value) pairs.
void metric_sample(std::string* out, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& labels, double value);

}  // namespace kiln

// A token bucket per key: `rate` requests per second on average, bursts of
// up to `burst`. What the EMR endpoint answers ThrottlingException from, so
// one noisy client (dozens of Airflow sensors on one key) cannot starve the
// others, while the rates the warm cluster promises stay unthrottled.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace kiln::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // Takes one token from `key`'s bucket; false when it is empty. Thread-safe.
  bool allow(const std::string& key, Clock::time_point now = Clock::now()) EXCLUDES(mu_);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  const double rate_, burst_;
  Mutex mu_;
  std::map<std::string, Bucket> buckets_ GUARDED_BY(mu_);
};

}  // namespace kiln::server

// Lifecycle: whether the cluster still takes work. Shared by the parts of
// the core so that, once shutdown begins, no door submits a step, no worker
// gets a new lease and the scheduler starts nothing new. Thread-safe.
#pragma once

#include <atomic>

namespace kiln::cluster {

class Lifecycle {
 public:
  bool stopping() const { return stopping_.load(); }
  // Returns true for the call that began it.
  bool begin_stopping() { return !stopping_.exchange(true); }

 private:
  std::atomic<bool> stopping_{false};
};

}  // namespace kiln::cluster

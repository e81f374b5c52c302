// CancelToken: the one way long loops in Kiln learn they should stop.
// Loops call cancelled() between units of work (a tile, a partition) and
// return a kCancelled Status; nothing is interrupted mid-write.
#pragma once

#include <atomic>

namespace kiln {

class CancelToken {
 public:
  // Thread-safe; idempotent.
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> flag_{false};
};

}  // namespace kiln

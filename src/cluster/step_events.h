// StepEvents: "something about steps changed". Every step transition the
// core makes (submit, start, cancel, a task's completion, a lapsed lease, a
// finished cancellation) bumps a version and wakes the waiters, so a long
// poll (GET /v1/steps/{id}/wait, the shutdown's wait for leases) wakes on
// the event instead of re-reading the store on a timer.
//
// Thread-safe. Waiters re-read what they wait for after each wake-up: an
// event says that something changed, not what.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"

namespace kiln::cluster {

class StepEvents {
 public:
  explicit StepEvents(const Clock& clock) : clock_(clock) {}

  // Called on every notify(), after the waiters are woken (the scheduler
  // takes a pass). Add listeners before the first notify().
  void add_listener(std::function<void()> listener);

  uint64_t version() const EXCLUDES(mu_);
  void notify() EXCLUDES(mu_);
  // Blocks until the version differs from `seen`, close() is called, or the
  // clock reaches deadline_ms. Returns the version then.
  uint64_t wait_for_change(uint64_t seen, int64_t deadline_ms) const EXCLUDES(mu_);
  // Wakes every waiter for good (shutdown): waits return at once.
  void close() EXCLUDES(mu_);
  bool closed() const EXCLUDES(mu_);

 private:
  const Clock& clock_;
  std::vector<std::function<void()>> listeners_;  // fixed before use
  mutable Mutex mu_;
  mutable CondVar changed_;
  uint64_t version_ GUARDED_BY(mu_) = 0;
  bool closed_ GUARDED_BY(mu_) = false;
};

}  // namespace kiln::cluster

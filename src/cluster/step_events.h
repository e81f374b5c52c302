// StepEvents: "something about steps changed". Every step transition the
// core makes (submit, start, cancel, a task's completion, a lapsed lease, a
// finished cancellation) bumps a version and wakes the waiters, so a long
// poll (GET /v1/steps/{id}/wait, the shutdown's wait for leases) wakes on
// the event instead of re-reading the store on a timer.
//
// Thread-safe. Waiters re-read what they wait for after each wake-up: an
// event says that something changed, not what. Two ways to wait: block a
// thread (wait_for_change), or subscribe a callback that is told (a waiter
// list that serves many long polls from one thread, server/step_waiters.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
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
  void notify() EXCLUDES(mu_, subs_mu_);
  // Blocks until the version differs from `seen`, close() is called, or the
  // clock reaches deadline_ms. Returns the version then.
  uint64_t wait_for_change(uint64_t seen, int64_t deadline_ms) const EXCLUDES(mu_);
  // Wakes every waiter for good (shutdown): waits return at once.
  void close() EXCLUDES(mu_, subs_mu_);
  bool closed() const EXCLUDES(mu_);

  // Calls `callback` on every notify() and on close(), on the thread that
  // called them, after the blocked waiters are woken. It must be quick and
  // must not block or call subscribe/unsubscribe (it runs under a lock that
  // serialises callbacks). Returns an id for unsubscribe(). Thread-safe.
  uint64_t subscribe(std::function<void()> callback) EXCLUDES(subs_mu_);
  // After it returns, the callback is not running and is not called again.
  // Not from inside a callback. Thread-safe.
  void unsubscribe(uint64_t id) EXCLUDES(subs_mu_);

 private:
  const Clock& clock_;
  std::vector<std::function<void()>> listeners_;  // fixed before use
  mutable Mutex mu_;
  mutable CondVar changed_;
  uint64_t version_ GUARDED_BY(mu_) = 0;
  bool closed_ GUARDED_BY(mu_) = false;
  // Held while callbacks run, so unsubscribe() can promise they are done.
  mutable Mutex subs_mu_;
  std::map<uint64_t, std::function<void()>> subscribers_ GUARDED_BY(subs_mu_);
  uint64_t next_subscriber_ GUARDED_BY(subs_mu_) = 1;

  void call_subscribers() EXCLUDES(subs_mu_);
};

}  // namespace kiln::cluster

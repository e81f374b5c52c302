// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// Clang thread-safety annotations, so `make tsa` checks that every member
// declared GUARDED_BY(mu_) is touched only with mu_ held.
//
//   mutable Mutex mu_;
//   int count_ GUARDED_BY(mu_) = 0;
//   void add() EXCLUDES(mu_) { MutexLock lock(&mu_); ++count_; }
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "common/clock.h"
#include "common/thread_annotations.h"

namespace kiln {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for the scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->lock(); }
  ~MutexLock() RELEASE() { mu_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

// A condition variable over a Mutex the caller holds. Waits may wake
// spuriously: callers loop on their condition.
class CondVar {
 public:
  void wait(Mutex* mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  // Waits at most `real` (steady time). Returns false on timeout.
  bool wait_for(Mutex* mu, std::chrono::milliseconds real) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool woken = cv_.wait_for(lock, real) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  // Waits until notified or `clock` reaches deadline_ms; false once the
  // deadline has passed. With a ManualClock the wait is cut into short real
  // slices, so a test that advances the clock ends it.
  bool wait_until(Mutex* mu, const Clock& clock, int64_t deadline_ms) REQUIRES(mu) {
    const int64_t now = clock.now_ms();
    if (now >= deadline_ms) return false;
    wait_for(mu, clock.real_wait(deadline_ms));
    return clock.now_ms() < deadline_ms;
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace kiln

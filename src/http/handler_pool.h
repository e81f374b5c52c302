// HandlerPool: the fixed set of threads that run request handlers. The
// loop thread hands it whole requests; a handler that must wait for
// something suspends its request (Response::suspend) instead of holding
// its thread.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/mutex.h"

namespace kiln::http {

class HandlerPool {
 public:
  explicit HandlerPool(size_t threads) : size_(threads == 0 ? 1 : threads) {}
  ~HandlerPool() { stop(); }
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  // Starts the threads. Call once.
  void start() EXCLUDES(mu_);
  // Queues `job`; a free thread runs it. Thread-safe. Dropped after stop().
  void submit(std::function<void()> job) EXCLUDES(mu_);
  // Threads waiting for a job now. Thread-safe (for tests).
  size_t idle_threads() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return idle_;
  }
  // Drops queued jobs, waits for running ones, joins the threads.
  // Idempotent; not from a pool thread.
  void stop() EXCLUDES(mu_);

 private:
  void run() EXCLUDES(mu_);

  const size_t size_;
  std::vector<std::thread> threads_;
  Mutex mu_;
  CondVar ready_;
  std::deque<std::function<void()>> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  // Threads waiting for a job, and whether one of them has been signalled
  // and has not yet woken. While a wake is in flight, submit() signals no
  // other: the woken thread signals the next one if jobs remain, and a
  // thread that finishes a job takes the next queued one without sleeping.
  // So every queued job has a thread coming as long as any is idle (a slow
  // handler never holds up another's request), with one wake-up per burst
  // rather than one per request.
  size_t idle_ GUARDED_BY(mu_) = 0;
  bool waking_ GUARDED_BY(mu_) = false;
};

}  // namespace kiln::http

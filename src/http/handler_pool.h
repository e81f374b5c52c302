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
};

}  // namespace kiln::http

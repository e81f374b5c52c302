#include "http/handler_pool.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "common/mutex.h"

namespace kiln::http {
namespace {

// Jobs that each hold their thread until all of them run at once: only a
// pool that gives every queued job its own idle thread gets them there.
// The pool wakes one thread per burst and lets the woken thread wake the
// next; a chain that stopped short would leave the rest queued behind
// blocked jobs.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  void arrive_and_wait() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ++arrived_;
    cv_.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (arrived_ < n_ && !released_ && std::chrono::steady_clock::now() < deadline) {
      cv_.wait_for(&mu_, std::chrono::milliseconds(100));
    }
    if (arrived_ >= n_) ++met_;
  }
  // Lets everyone go (the test's end, whatever happened).
  void release() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool wait_arrived(int want) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (arrived_ < want && std::chrono::steady_clock::now() < deadline) {
      cv_.wait_for(&mu_, std::chrono::milliseconds(100));
    }
    return arrived_ >= want;
  }
  int met() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return met_;
  }
  bool wait_met(int want) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (met_ < want && std::chrono::steady_clock::now() < deadline) {
      cv_.wait_for(&mu_, std::chrono::milliseconds(100));
    }
    return met_ >= want;
  }

 private:
  const int n_;
  Mutex mu_;
  CondVar cv_;
  int arrived_ GUARDED_BY(mu_) = 0;
  int met_ GUARDED_BY(mu_) = 0;
  bool released_ GUARDED_BY(mu_) = false;
};

// Until every thread of `pool` waits for work (a burst then has to wake
// them; threads still starting would take queued jobs on their own).
bool all_idle(HandlerPool& pool, size_t threads) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pool.idle_threads() < threads) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(HandlerPool, ABurstOfBlockingJobsGetsAThreadEach) {
  constexpr int kThreads = 8;
  HandlerPool pool(kThreads);
  pool.start();
  ASSERT_TRUE(all_idle(pool, kThreads));
  Rendezvous all(kThreads);
  for (int i = 0; i < kThreads; ++i) pool.submit([&all] { all.arrive_and_wait(); });
  const bool met = all.wait_met(kThreads);
  all.release();
  pool.stop();
  EXPECT_TRUE(met) << all.met() << " of " << kThreads << " jobs ran together";
}

TEST(HandlerPool, JobsSubmittedWhileOthersBlockStillRun) {
  constexpr int kThreads = 4;
  HandlerPool pool(kThreads);
  pool.start();
  // Jobs that block (a slow handler each), submitted one at a time, each
  // after the previous one holds its thread: every one must still find an
  // idle thread.
  ASSERT_TRUE(all_idle(pool, kThreads));
  Rendezvous all(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    pool.submit([&all] { all.arrive_and_wait(); });
    ASSERT_TRUE(all.wait_arrived(i + 1)) << "job " << i << " found no thread";
  }
  const bool met = all.wait_met(kThreads);
  // And, with every thread free again, a burst still gets them all.
  all.release();
  ASSERT_TRUE(all_idle(pool, kThreads));
  Rendezvous again(kThreads);
  for (int i = 0; i < kThreads; ++i) pool.submit([&again] { again.arrive_and_wait(); });
  const bool met_again = again.wait_met(kThreads);
  all.release();
  again.release();
  pool.stop();
  EXPECT_TRUE(met);
  EXPECT_TRUE(met_again) << again.met() << " of " << kThreads;
}

}  // namespace
}  // namespace kiln::http

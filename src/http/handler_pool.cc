#include "http/handler_pool.h"

namespace kiln::http {

void HandlerPool::start() {
  for (size_t i = 0; i < size_; ++i) threads_.emplace_back([this] { run(); });
}

void HandlerPool::submit(std::function<void()> job) {
  bool wake = false;
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
    wake = idle_ > 0 && !waking_;
    if (wake) waking_ = true;
  }
  if (wake) ready_.notify_one();
}

void HandlerPool::stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    jobs_.clear();
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void HandlerPool::run() {
  for (;;) {
    std::function<void()> job;
    bool wake_next = false;
    {
      MutexLock lock(&mu_);
      while (jobs_.empty() && !stopping_) {
        ++idle_;
        ready_.wait(&mu_);
        --idle_;
        waking_ = false;  // the signal in flight (or a spurious wake) is spent
      }
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      wake_next = !jobs_.empty() && idle_ > 0 && !waking_;
      if (wake_next) waking_ = true;
    }
    if (wake_next) ready_.notify_one();
    job();
  }
}

}  // namespace kiln::http

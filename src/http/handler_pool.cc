#include "http/handler_pool.h"

namespace kiln::http {

void HandlerPool::start() {
  for (size_t i = 0; i < size_; ++i) threads_.emplace_back([this] { run(); });
}

void HandlerPool::submit(std::function<void()> job) {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
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
    {
      MutexLock lock(&mu_);
      while (jobs_.empty() && !stopping_) ready_.wait(&mu_);
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace kiln::http

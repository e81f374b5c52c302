#include "server/step_waiters.h"

#include <algorithm>
#include <map>
#include <utility>

namespace kiln::server {
namespace {

// With no waiter and no event the thread still looks round this often; it
// costs nothing and bounds the harm of a missed wake-up.
constexpr int64_t kIdleWakeMs = 60'000;

}  // namespace

StepWaiters::StepWaiters(cluster::StepService& steps, cluster::StepEvents& events,
                         const Clock& clock)
    : steps_(steps), events_(events), clock_(clock) {
  // On the notifier's thread: only mark and wake, never read the store.
  subscription_ = events_.subscribe([this] {
    {
      MutexLock lock(&mu_);
      event_seen_ = true;
    }
    wake_.notify_one();
  });
  thread_ = std::thread([this] { run(); });
}

StepWaiters::~StepWaiters() {
  events_.unsubscribe(subscription_);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StepWaiters::add(const EnvironmentConfig& env, const std::string& step_id, int64_t deadline_ms,
                      Done done, std::function<bool()> abandoned) {
  {
    MutexLock lock(&mu_);
    // Fresh: checked once right away, so an event between the caller's own
    // read of the step and this registration is not missed.
    waiters_.push_back({&env, step_id, deadline_ms, std::move(done), std::move(abandoned), true});
  }
  wake_.notify_one();
}

size_t StepWaiters::pending() const {
  MutexLock lock(&mu_);
  return waiters_.size();
}

void StepWaiters::run() {
  for (;;) {
    std::vector<Waiter> batch;
    {
      MutexLock lock(&mu_);
      for (;;) {
        if (stopping_) return;
        const int64_t now = clock_.now_ms();
        // After an event every waiter looks again; otherwise only the new
        // ones and those whose deadline has come.
        const bool all = event_seen_;
        event_seen_ = false;
        int64_t next = now + kIdleWakeMs;
        std::vector<Waiter> keep;
        for (Waiter& w : waiters_) {
          if (all || w.fresh || w.deadline_ms <= now) {
            batch.push_back(std::move(w));
          } else {
            next = std::min(next, w.deadline_ms);
            keep.push_back(std::move(w));
          }
        }
        waiters_.swap(keep);
        if (!batch.empty()) break;
        wake_.wait_until(&mu_, clock_, next);
      }
    }
    std::vector<Waiter> waiting = check(std::move(batch));
    MutexLock lock(&mu_);
    for (Waiter& w : waiting) waiters_.push_back(std::move(w));
  }
}

std::vector<StepWaiters::Waiter> StepWaiters::check(std::vector<Waiter> batch) {
  const bool closed = events_.closed();
  const int64_t now = clock_.now_ms();
  // Many polls often wait on the same step: one read each.
  std::map<std::pair<std::string, std::string>, Result<store::Step>> read;
  std::vector<Waiter> waiting;
  for (Waiter& w : batch) {
    if (w.abandoned && w.abandoned()) continue;
    const auto key = std::make_pair(w.env->name, w.step_id);
    auto it = read.find(key);
    if (it == read.end()) it = read.emplace(key, steps_.get(*w.env, w.step_id)).first;
    const Result<store::Step>& step = it->second;
    if (!step.is_ok() || store::is_terminal(step->state) || now >= w.deadline_ms || closed) {
      w.done(step);
      continue;
    }
    w.fresh = false;
    waiting.push_back(std::move(w));
  }
  return waiting;
}

}  // namespace kiln::server

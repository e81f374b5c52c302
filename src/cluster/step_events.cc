#include "cluster/step_events.h"

namespace kiln::cluster {

uint64_t StepEvents::version() const {
  MutexLock lock(&mu_);
  return version_;
}

void StepEvents::add_listener(std::function<void()> listener) {
  listeners_.push_back(std::move(listener));
}

void StepEvents::notify() {
  {
    MutexLock lock(&mu_);
    ++version_;
  }
  changed_.notify_all();
  call_subscribers();
  for (const auto& l : listeners_) l();
}

uint64_t StepEvents::wait_for_change(uint64_t seen, int64_t deadline_ms) const {
  MutexLock lock(&mu_);
  while (version_ == seen && !closed_) {
    if (!changed_.wait_until(&mu_, clock_, deadline_ms)) break;
  }
  return version_;
}

void StepEvents::close() {
  {
    MutexLock lock(&mu_);
    closed_ = true;
  }
  changed_.notify_all();
  call_subscribers();
}

bool StepEvents::closed() const {
  MutexLock lock(&mu_);
  return closed_;
}

uint64_t StepEvents::subscribe(std::function<void()> callback) {
  MutexLock lock(&subs_mu_);
  const uint64_t id = next_subscriber_++;
  subscribers_.emplace(id, std::move(callback));
  return id;
}

void StepEvents::unsubscribe(uint64_t id) {
  MutexLock lock(&subs_mu_);
  subscribers_.erase(id);
}

void StepEvents::call_subscribers() {
  MutexLock lock(&subs_mu_);
  for (const auto& [id, callback] : subscribers_) callback();
}

}  // namespace kiln::cluster

// StepWaiters: the long polls of GET /v1/steps/{id}/wait, answered by one
// thread instead of a thread each. A waiter is registered with a deadline
// and a callback; step events (cluster::StepEvents::subscribe) and the
// deadlines wake the thread, which reads each waited-for step once per
// pass and calls back for those that ended, timed out, or when the
// events close (shutdown). The HTTP side suspends the request meanwhile
// (http::Response::suspend), so a thousand long polls hold no thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/step_events.h"
#include "cluster/step_service.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "server/core_names.h"
#include "store/job_store.h"

namespace kiln::server {

class StepWaiters {
 public:
  using Done = std::function<void(Result<store::Step>)>;

  // `steps`, `events` and `clock` must outlive this object. Starts the thread.
  StepWaiters(cluster::StepService& steps, cluster::StepEvents& events, const Clock& clock);
  // Stops the thread; waiters still registered are dropped uncalled.
  ~StepWaiters();
  StepWaiters(const StepWaiters&) = delete;
  StepWaiters& operator=(const StepWaiters&) = delete;

  // Calls `done` once, on the waiters' thread: with the step when it is
  // terminal, with the step as it is when `deadline_ms` passes or the step
  // events close, or with the error reading it. `abandoned` (may be empty)
  // says nobody needs the answer any more (the client left): the waiter is
  // then dropped without a call. `env` must outlive the wait (the config's).
  // Thread-safe.
  void add(const EnvironmentConfig& env, const std::string& step_id, int64_t deadline_ms, Done done,
           std::function<bool()> abandoned) EXCLUDES(mu_);
  // Waiters registered and not yet answered. Thread-safe.
  size_t pending() const EXCLUDES(mu_);

 private:
  struct Waiter {
    const EnvironmentConfig* env;
    std::string step_id;
    int64_t deadline_ms;
    Done done;
    std::function<bool()> abandoned;
    bool fresh;  // not checked since it was added
  };

  void run() EXCLUDES(mu_);
  // Reads the steps of `batch` (each once) and answers what is due; returns
  // the waiters that wait on.
  std::vector<Waiter> check(std::vector<Waiter> batch);

  cluster::StepService& steps_;
  cluster::StepEvents& events_;
  const Clock& clock_;
  mutable Mutex mu_;
  CondVar wake_;
  std::vector<Waiter> waiters_ GUARDED_BY(mu_);
  bool event_seen_ GUARDED_BY(mu_) = false;  // a step event since the last full pass
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t subscription_ = 0;
  std::thread thread_;
};

}  // namespace kiln::server

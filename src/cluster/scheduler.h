// Scheduler: the cluster's clock-driven half. One pass (run every
// `period`, and at once when kicked):
//   expire lapsed leases (their tasks go back to the queue),
//   start PENDING steps as their environment's concurrency allows,
//   finish cancellations whose tasks have stopped,
//   clean the staging of FAILED/CANCELLED steps,
//   then the registered tick hooks (executor, Slurm dispatcher, autoscaler).
// Every transition it makes is logged in the step's log and announced on
// StepEvents. A store error skips that part of the pass and is logged; the
// next pass tries again.
//
// recover() is the start-up half: steps of environments no longer
// configured are INTERRUPTED; leases are either returned (workers that died
// with the previous server) or extended (batch jobs that outlive it).
//
// Thread-safety: pass() runs on the scheduler's own thread (start()); kick()
// and stop() may be called from any thread. Tick hooks run on that thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/lifecycle.h"
#include "cluster/policies.h"
#include "cluster/step_events.h"
#include "cluster/step_log.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "config/server_config.h"
#include "store/job_store.h"

namespace kiln::cluster {

struct SchedulerOptions {
  // Longest time between passes when nothing kicks the scheduler: how late
  // a lapsed lease may be noticed.
  int64_t period_ms = 200;
  int lease_seconds = 15;
  // Told the seconds from submission to RUNNING of each step started (the
  // /metrics histogram). Runs on the scheduler's thread.
  std::function<void(double seconds)> on_start_latency;
};

class Scheduler {
 public:
  using TickHook = std::function<void(int64_t now_ms)>;
  // Every pointer must outlive this object. `environments`: the configured
  // ones, for where staging directories are.
  Scheduler(SchedulerOptions options, const std::vector<config::EnvironmentConfig>& environments,
            store::JobStore* store, StepLog* log, Policies* policies, StepEvents* events,
            Lifecycle* lifecycle, const Clock& clock);
  ~Scheduler();

  // At start-up, before any worker connects. `workers_outlive_server`:
  // true for batch executors (Slurm), whose tasks keep their leases for
  // two lease periods to report to this server; false for local workers,
  // which died with the previous server, so their leases return at once.
  Status recover(bool workers_outlive_server);

  // Called at the end of each pass with the pass's time. `while_stopping`:
  // also once shutdown has begun.
  void add_tick(TickHook hook, bool while_stopping);

  // One pass, on the calling thread.
  void pass();
  // Runs passes on a thread of its own until stop().
  void start();
  // Wake the thread for a pass now (a step was submitted or ended).
  void kick() EXCLUDES(mu_);
  // Ends the thread after its current pass. Idempotent.
  void stop() EXCLUDES(mu_);

  // Passes completed so far. A test that must show that something did not
  // happen waits for a pass that began after its request, then looks.
  int64_t passes() const { return passes_.load(); }

  // Blocks until no task is leased or the clock reaches deadline_ms; wakes
  // on step events. Returns the tasks still leased.
  int64_t wait_for_leases(int64_t deadline_ms);

 private:
  void loop() EXCLUDES(mu_);
  void clean_staging(const store::Step& step) const;
  void observe_start_latency(const std::vector<std::string>& started);

  const SchedulerOptions options_;
  const std::vector<config::EnvironmentConfig>& environments_;
  store::JobStore* store_;
  StepLog* log_;
  Policies* policies_;
  StepEvents* events_;
  Lifecycle* lifecycle_;
  const Clock& clock_;
  struct Hook {
    TickHook fn;
    bool while_stopping = false;
  };
  std::vector<Hook> hooks_;  // set before start(); read only by the pass

  Mutex mu_;
  CondVar wake_;
  bool kicked_ GUARDED_BY(mu_) = false;
  bool stopped_ GUARDED_BY(mu_) = false;
  std::atomic<int64_t> passes_{0};
  std::thread thread_;
};

}  // namespace kiln::cluster

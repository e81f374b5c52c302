// The worker: what `kiln worker` runs. It registers with the server, leases
// tasks for its free slots, runs each as a `kiln task run` process, reports
// their progress with every heartbeat and their end with a completion, and
// signals the ones the server cancels or no longer knows. It gives up (kills
// its tasks and returns an error) when the server stays unreachable for the
// lease time, since the server will have handed those tasks to others by
// then. One thread; see docs/cluster.md, "Worker protocol".
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/process.h"
#include "common/status.h"

namespace kiln::worker {

struct WorkerOptions {
  std::string server_url;  // "http://127.0.0.1:PORT"
  std::string token;       // the worker token
  int slots = 1;
  // The task command without "--spec FILE"; empty: this executable's
  // "task run".
  std::vector<std::string> task_command;
  std::string host;  // reported at registration; empty: gethostname()
  // SIGTERM first (cancel "TERM", unknown tasks get SIGKILL at once), SIGKILL
  // once this has passed.
  std::chrono::milliseconds cancel_grace{10000};
  // How long a stopping worker waits for its tasks after SIGTERM.
  std::chrono::milliseconds shutdown_grace{10000};
  // Between lease requests that found nothing to do.
  std::chrono::milliseconds idle_poll{500};
  os::ProcessLauncher* launcher = nullptr;  // default: posix_launcher()
  // Where heartbeat and lease periods, retries, grace periods and the outage
  // limit are measured; default: system_clock().
  const Clock* clock = nullptr;

  // Claim mode, for a batch task (one Slurm array task): instead of leasing
  // whatever is runnable, run task `claim_index` of step `claim_step` (-1:
  // its commit task), again after a failed attempt when the server allows,
  // until it is DONE; then leave and return. Empty claim_step: lease mode.
  std::string claim_step;
  int64_t claim_index = 0;
  // Sent with every attempt to register (docs/cluster.md); empty: drawn
  // at random when run_worker starts. Tests set it to see it sent.
  std::string registration_key;
  // How long the server may stay unreachable before the worker gives up;
  // 0: the server's lease_seconds. A batch task waits out a server restart.
  std::chrono::seconds outage_limit{0};
};

// Claim mode returns ok once the task is DONE; kNotFound when its
// step ended otherwise (failed, cancelled) or the task failed for good;
// kCancelled when `stop` fired before the task was done (its lease is
// returned to the server at once: a preempted batch task's work is not
// counted as a failure).
//
// Runs until `stop` fires, then stops leasing, SIGTERMs its tasks, waits for
// them up to shutdown_grace (reporting those that end) and returns ok.
// Returns an error when the server refuses the worker (a wrong token, a
// registration it forgot) or cannot be reached for lease_seconds; its tasks
// are killed first in both cases. `stop` may be fired from a signal handler.
Status run_worker(const WorkerOptions& options, const CancelToken& stop);

}  // namespace kiln::worker

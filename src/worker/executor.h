// Executor: how `kiln serve` gets workers. The local executor starts worker
// processes on this machine; a Slurm executor or an autoscaling node
// provider will implement the same interface, so the server's scheduler
// drives all of them the same way.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace kiln::worker {

struct ExecutorStatus {
  std::string kind;         // "local", ...
  int workers_wanted = 0;   // what the configuration asks for
  int workers_running = 0;  // started and not seen to exit
  int slots_per_worker = 0;
  int64_t restarts = 0;       // workers started again after an exit
  std::vector<int64_t> pids;  // of running workers (local executor)
};

// Not thread-safe unless an implementation says so; the server calls
// start(), tick() and stop() from one thread, the one that lives as long as
// the server (a local worker dies with the thread that started it, see
// local_executor.h).
class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the workers. kInternal naming what failed.
  virtual Status start() = 0;
  // Supervises: notices workers that exited, reports them, replaces them.
  // Call periodically (a few times a second); never blocks for long.
  virtual void tick() = 0;
  // Asks every worker to stop (SIGTERM), waits up to `grace`, then kills
  // what is left. No worker runs once it returns; tick() then does nothing.
  virtual void stop(std::chrono::milliseconds grace) = 0;
  // Thread-safe.
  virtual ExecutorStatus status() const = 0;
};

}  // namespace kiln::worker

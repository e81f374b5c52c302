// One task process a worker runs: `kiln task run --spec FILE` with its
// stdout on a pipe to the worker (progress lines, then a result or an error
// line) and its stderr appended to the step's log.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/process.h"
#include "common/sandbox_net.h"
#include "common/status.h"
#include "worker/server_client.h"

namespace kiln::worker {

// The nice level a task runs at, from its worker's own: 9 levels lower
// priority, at most 19 (a worker at executor.nice = 10 runs its tasks at
// 19). However many tasks a node runs, its worker's heartbeats and, on a
// local cluster, `kiln serve` get the CPU first. Only under contention does
// it matter (docs/cluster.md). A worker at nice 0 (executor.nice = 0) asks
// for no separation: its tasks run at 0 too.
int task_nice_for(int worker_nice);

// Why the worker signalled a task, which decides what it reports when the
// task dies without saying why itself.
enum class StopCause { kNone, kCancel, kShutdown };

// Not thread-safe: the worker's one thread owns it.
class TaskProcess {
 public:
  // Writes the task's spec to <spec_dir>/task-<id>-<attempt>.json, opens its
  // log (append, created with its directory if needed) and starts
  // `command... --spec FILE`, inside the sandbox the lease asks for
  // (worker/task_sandbox.h). Grace periods are measured on `clock`, which
  // must outlive the TaskProcess. Errors name the file or program at fault.
  static Result<std::unique_ptr<TaskProcess>> start(const LeasedTask& task,
                                                    const std::vector<std::string>& command,
                                                    const std::string& spec_dir,
                                                    os::ProcessLauncher* launcher,
                                                    const Clock* clock);
  // Kills and reaps a process still running; removes the spec file.
  ~TaskProcess();

  const LeasedTask& task() const { return task_; }
  pid_t pid() const { return child_.pid(); }
  // The read end of the stdout pipe (non-blocking), for poll(2); -1 at EOF.
  int stdout_fd() const { return out_.get(); }

  // Reads what stdout has and handles its complete lines. Never blocks.
  void read_output();
  // The exit status once the process ended (it is reaped and its output read
  // to the end then); nullopt while it runs.
  std::optional<os::ExitStatus> poll_exit();

  // Sends `sig`, remembering `cause`. SIGTERM starts the grace period after
  // which escalate() kills. Sandboxed, every signal but SIGKILL goes to the
  // task inside (sandbox::signal_command), so it stops as it would
  // unsandboxed; SIGKILL ends the whole sandbox.
  void signal(int sig, StopCause cause, std::chrono::milliseconds grace);
  // SIGKILLs a task whose grace period ran out by `now_ms` (the clock's
  // time). Returns true if it did.
  bool escalate(int64_t now_ms);
  // When escalate() will kill (the clock's time); nullopt before a SIGTERM.
  std::optional<int64_t> kill_deadline() const { return kill_deadline_ms_; }

  TaskProgress progress() const { return progress_; }
  // What to tell the server about the ended task: its result line, its
  // error line, or what the exit status says.
  // REQUIRES: poll_exit() returned a status.
  Completion completion() const;
  // True when the task ended on a stop signal (SIGTERM, SIGINT, SIGHUP)
  // that this worker did not send, or said it was CANCELLED without being
  // cancelled: someone outside stopped it (Slurm preempting or cancelling
  // the job signals every process of it, the sandbox's wrapper included).
  // REQUIRES: poll_exit() returned a status.
  bool stopped_from_outside() const;

 private:
  TaskProcess(LeasedTask task, const Clock* clock) : task_(std::move(task)), clock_(clock) {}
  void handle_line(const std::string& line);

  LeasedTask task_;
  const Clock* clock_;
  std::string spec_path_;
  sandbox::Network net_;    // stopped after child_: declared before it
  os::Child child_;         // killed and reaped with the TaskProcess if still running
  bool sandboxed_ = false;  // child_ is the sandbox's outer process
  os::Fd out_;
  std::string pending_;  // a partial line
  std::optional<os::ExitStatus> exit_;
  TaskProgress progress_;
  std::optional<nlohmann::json> result_;
  struct ErrorLine {
    std::string reason, message;
    bool permanent = false;
  };
  std::optional<ErrorLine> error_;  // the task's own report of why it failed
  StopCause cause_ = StopCause::kNone;
  std::optional<int64_t> kill_deadline_ms_;
  bool killed_ = false;
};

}  // namespace kiln::worker
